// Tailor assist panel: plain JavaScript, no build step. Text goes in with textContent only.
// The session is an HttpOnly cookie set by /api/agent/login; every API call may answer 401,
// which brings the sign-in form back.
(function () {
  "use strict";
  var POLL_MS = 2000;
  var $ = function (id) { return document.getElementById(id); };
  var state = { agent: null, selected: null, detail: null, listTimer: null, detailTimer: null,
                lastTranscript: "", csrf: null };

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function api(method, url, body) {
    var opts = { method: method, credentials: "same-origin", cache: "no-store", headers: {} };
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    // State-changing calls carry the session's CSRF token (from login or /api/agent/me).
    if (method !== "GET" && state.csrf) opts.headers["X-CSRF-Token"] = state.csrf;
    return fetch(url, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (b) {
        if (r.status === 401 && url !== "/api/agent/login") signedOut();
        if (!r.ok) {
          var d = b && b.detail;
          var msg = typeof d === "string" ? d : (Array.isArray(d) ? d.map(function (x) { return x.msg; }).join("; ") : "HTTP " + r.status);
          var e = new Error(msg); e.status = r.status; throw e;
        }
        return b;
      });
    });
  }

  function showError(box, text) { box.textContent = text || ""; box.hidden = !text; }

  // ---- sign-in ----

  function signedOut() {
    state.agent = null; state.selected = null; state.csrf = null;
    clearTimeout(state.listTimer); clearTimeout(state.detailTimer);
    $("panel").hidden = true; $("who").hidden = true; $("login").hidden = false;
    $("password").value = "";
  }

  function signedIn(name, role) {
    state.agent = name;
    $("dashboard-link").hidden = role !== "admin";  // the marketing dashboard is admin-only
    $("who-name").textContent = name;
    $("who").hidden = false; $("login").hidden = true; $("panel").hidden = false;
    refreshList();
  }

  $("login-form").addEventListener("submit", function (e) {
    e.preventDefault();
    showError($("login-error"), "");
    api("POST", "/api/agent/login", { username: $("username").value, password: $("password").value })
      .then(function (b) { $("password").value = ""; state.csrf = b.csrf_token; signedIn(b.username, b.role); })
      .catch(function (err) { showError($("login-error"), err.message); });
  });

  $("logout").addEventListener("click", function () {
    api("POST", "/api/agent/logout").catch(function () {}).then(signedOut);
  });

  // ---- conversation list ----

  function ago(iso) {
    var s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
    if (s < 60) return Math.round(s) + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    return Math.round(s / 3600) + " h ago";
  }

  function sentimentClass(label) {
    return label === "positive" ? "pos" : (label === "negative" ? "neg" : "neu");
  }

  function renderList(list) {
    var ul = $("convos");
    clear(ul);
    $("no-convos").hidden = list.length > 0;
    $("list-count").textContent = list.length ? "(" + list.length + ")" : "";
    list.forEach(function (c) {
      var li = el("li", "convo" + (c.flagged ? " flagged" : "") + (c.sender === state.selected ? " selected" : ""));
      li.setAttribute("data-sender", c.sender);
      var btn = el("button", "convo-btn");
      btn.type = "button";
      var top = el("div", "convo-top");
      top.appendChild(el("strong", null, c.customer || "Guest " + c.sender.slice(-6)));
      var tags = el("span", "tags");
      if (c.flagged) tags.appendChild(el("span", "tag flag", "asks for a person"));
      if (c.taken_over) tags.appendChild(el("span", "tag agent", "with " + (c.agent || "agent")));
      tags.appendChild(el("span", "tag " + (c.live ? "live" : "recent"), c.live ? "live" : "recent"));
      top.appendChild(tags);
      btn.appendChild(top);
      var last = el("div", "convo-last");
      last.appendChild(el("span", "dot " + sentimentClass(c.sentiment), ""));
      last.appendChild(el("span", "text", c.last_message || ""));
      btn.appendChild(last);
      btn.appendChild(el("div", "convo-time muted", ago(c.last_at) + " · " + c.messages + " messages"));
      btn.onclick = function () { select(c.sender); };
      li.appendChild(btn);
      ul.appendChild(li);
    });
  }

  function refreshList() {
    clearTimeout(state.listTimer);
    if (!state.agent) return;
    api("GET", "/api/agent/conversations")
      .then(function (b) { renderList(b.conversations || []); })
      .catch(function () { /* shown on the next successful refresh */ })
      .finally(function () { if (state.agent) state.listTimer = setTimeout(refreshList, POLL_MS); });
  }

  // ---- one conversation ----

  function select(sender) {
    state.selected = sender; state.lastTranscript = "";
    Array.prototype.forEach.call(document.querySelectorAll(".convo"), function (li) {
      li.classList.toggle("selected", li.getAttribute("data-sender") === sender);
    });
    $("empty").hidden = true; $("convo").hidden = false; $("side").hidden = false;
    clear($("transcript"));
    showError($("error"), "");
    refreshDetail();
  }

  function refreshDetail() {
    clearTimeout(state.detailTimer);
    var sender = state.selected;
    if (!sender || !state.agent) return;
    api("GET", "/api/agent/conversations/" + encodeURIComponent(sender))
      .then(function (d) { if (sender === state.selected) renderDetail(d); })
      .catch(function (err) { if (err.status !== 401) showError($("error"), err.message); })
      .finally(function () {
        if (state.agent && sender === state.selected) state.detailTimer = setTimeout(refreshDetail, POLL_MS);
      });
  }

  function renderDetail(d) {
    state.detail = d;
    var name = d.profile ? d.profile.name : "Guest";
    $("convo-title").textContent = name + " · " + d.sender;
    var st = d.paused ? "You are answering — the bot is paused." : "The bot is answering.";
    if (d.paused && d.agent && d.agent !== state.agent) st = d.agent + " is answering — the bot is paused.";
    if (d.flagged) st += " The customer asked for a person.";
    $("convo-state").textContent = st;
    $("takeover").hidden = d.paused; $("handback").hidden = !d.paused;
    $("reply").disabled = !d.paused; $("send").disabled = !d.paused;
    $("reply").placeholder = d.paused ? "Write to the customer…" : "Take over to write to the customer";
    renderTranscript(d.transcript || []);
    renderProfile(d.profile);
    renderSparkline(d.sentiment || []);
    renderCriteria(d.criteria || {});
    renderSuggestions(d.suggestions || {}, d.paused);
    renderContext((d.suggestions || {}).context);
  }

  // The shopper's situation and the context rules (context.toml) shaping the suggestions.
  function renderContext(c) {
    var dl = $("context"), ul = $("context-rules");
    clear(dl); clear(ul);
    if (!c) { ul.appendChild(el("li", "muted", "Not known yet.")); return; }
    kv(dl, "Season", c.season); kv(dl, "Climate", c.climate); kv(dl, "Where", c.region);
    kv(dl, "Device", c.device);
    kv(dl, "Local time", c.local_hour !== null && c.local_hour !== undefined ? (c.weekday ? c.weekday + " " : "") + c.local_hour + ":00" : c.weekday);
    var rules = c.rules || [];
    if (!rules.length) ul.appendChild(el("li", "muted", "No context rule applies."));
    rules.forEach(function (r) {
      var li = el("li", "context-rule");
      li.setAttribute("data-rule", r.name);
      li.appendChild(el("strong", null, r.name));
      li.appendChild(el("span", "muted", " — " + r.when + (r.reason ? " · " + r.reason : "")));
      ul.appendChild(li);
    });
  }

  function renderTranscript(lines) {
    var key = JSON.stringify(lines);
    if (key === state.lastTranscript) return;     // unchanged: keep the scroll position
    state.lastTranscript = key;
    var ol = $("transcript");
    clear(ol);
    lines.forEach(function (m) {
      var li = el("li", "line " + m.from);
      var head = el("div", "line-head");
      var who = m.from === "user" ? "Customer" : (m.from === "agent" ? (m.agent || "Agent") : (m.from === "bot" ? "Tailor" : ""));
      if (who) head.appendChild(el("span", "who", who));
      if (m.intent) head.appendChild(el("span", "intent", m.intent));
      if (m.at) head.appendChild(el("time", "muted", new Date(m.at).toLocaleTimeString()));
      li.appendChild(head);
      if (m.text) li.appendChild(el("p", "text", m.text));
      if (Array.isArray(m.products) && m.products.length) {
        var ul = el("ul", "mini-cards");
        m.products.forEach(function (p) { ul.appendChild(el("li", null, p.title + (p.price_text ? " — " + p.price_text : ""))); });
        li.appendChild(ul);
      }
      ol.appendChild(li);
    });
    ol.scrollTop = ol.scrollHeight;
  }

  function kv(dl, k, v) {
    if (v === null || v === undefined || v === "") return;
    dl.appendChild(el("dt", null, k));
    dl.appendChild(el("dd", null, Array.isArray(v) ? v.join(", ") : v));
  }

  function renderProfile(p) {
    var box = $("profile");
    clear(box);
    if (!p) { box.appendChild(el("p", "muted", "Not signed in — an anonymous shopper.")); return; }
    box.appendChild(el("p", "name", p.name + " (" + p.external_id + ")"));
    var dl = el("dl", "kv");
    kv(dl, "Age", p.age_band); kv(dl, "Where", [p.region, p.country].filter(Boolean).join(", "));
    kv(dl, "Climate", p.climate);
    kv(dl, "Spent", p.spent !== undefined ? Number(p.spent).toFixed(2) : null);
    kv(dl, "Last purchase", p.last_purchase ? p.last_purchase.slice(0, 10) : null);
    kv(dl, "Personalised", p.personalisation ? "yes" : "no (opted out)");
    var pr = p.predictions;
    if (pr) {
      if (typeof pr.churn_risk === "number") kv(dl, "Churn risk", Math.round(pr.churn_risk * 100) + "% (" + pr.churn_band + ", no purchase in " + pr.churn_horizon_days + " days)");
      kv(dl, "Restock due", (pr.restock || []).length ? pr.restock.map(function (d) { return d.reason + " (due " + d.due_at.slice(0, 10) + ")"; }) : "nothing this week");
    }
    box.appendChild(dl);
    var segs = el("div", "segments");
    Object.keys(p.segments || {}).sort().forEach(function (k) {
      segs.appendChild(el("span", "tag seg", k + ": " + p.segments[k]));
    });
    box.appendChild(segs);
    var prefs = (p.preferences || []).slice(-4);
    if (prefs.length) {
      var ul = el("ul", "prefs");
      prefs.forEach(function (x) { ul.appendChild(el("li", null, (x.positive === false ? "not " : "") + x.value + " (" + x.kind + ")")); });
      box.appendChild(ul);
    }
  }

  var SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    var n = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { n.setAttribute(k, String(attrs[k])); });
    return n;
  }

  function renderSparkline(points) {
    var box = $("sparkline");
    clear(box);
    var vals = points.filter(function (p) { return typeof p.value === "number"; });
    var last = vals.length ? vals[vals.length - 1] : null;
    $("sentiment-last").textContent = last ? "last: " + (last.label || "") + " (" + last.value.toFixed(2) + ")" : "";
    if (!vals.length) { box.appendChild(el("p", "muted", "No scored messages yet.")); return; }
    var W = 260, H = 64, pad = 6;
    var s = svg("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img",
                         "aria-label": "Sentiment of each message, from -1 (negative) to +1 (positive)" });
    s.appendChild(svg("line", { x1: pad, x2: W - pad, y1: H / 2, y2: H / 2, "class": "zero" }));
    var step = vals.length > 1 ? (W - 2 * pad) / (vals.length - 1) : 0;
    function y(v) { return H / 2 - Math.max(-1, Math.min(1, v)) * (H / 2 - pad); }
    var pts = vals.map(function (p, i) { return (pad + i * step).toFixed(1) + "," + y(p.value).toFixed(1); });
    if (vals.length > 1) s.appendChild(svg("polyline", { points: pts.join(" "), "class": "trend" }));
    vals.forEach(function (p, i) {
      var c = svg("circle", { cx: pad + i * step, cy: y(p.value), r: 3.5, "class": "pt " + sentimentClass(p.label) });
      var t = document.createElementNS(SVG, "title");
      t.textContent = (p.label || "") + " " + p.value.toFixed(2) + ": " + (p.text || "");
      c.appendChild(t);
      s.appendChild(c);
    });
    box.appendChild(s);
  }

  function renderCriteria(c) {
    $("criteria-text").textContent = c.describe || "Nothing asked for yet.";
    var dl = $("criteria");
    clear(dl);
    var f = c.fields || {};
    Object.keys(f).forEach(function (k) { kv(dl, k.replace(/_/g, " "), f[k]); });
  }

  function renderSuggestions(s, paused) {
    var status = $("suggest-status"), ul = $("suggestions");
    clear(ul);
    if (s.status === "loading") { status.textContent = "Loading the recommender…"; return; }
    if (s.status === "error") { status.textContent = "Suggestions unavailable: " + s.error; return; }
    var products = s.products || [];
    status.textContent = products.length ? (s.basis === "for you" ? "Picked from the customer's profile and session." : "For the current criteria" + (s.total_matches ? " (" + s.total_matches + " matches)" : "") + ".") : "Nothing to suggest yet.";
    products.forEach(function (p) {
      var li = el("li", "suggestion");
      li.setAttribute("data-product-id", p.id);
      li.appendChild(el("strong", "title", p.title));
      li.appendChild(el("div", "meta muted", [p.brand, p.price_text, p.rating ? "★ " + Number(p.rating).toFixed(1) : null].filter(Boolean).join(" · ")));
      li.appendChild(el("div", "reason", p.reason));
      var b = el("button", "send-card", "Send to customer");
      b.type = "button";
      b.disabled = !paused;
      b.title = paused ? "Send this product card to the customer" : "Take over first";
      b.onclick = function () { sendCard(p.id, b); };
      li.appendChild(b);
      ul.appendChild(li);
    });
  }

  // ---- actions ----

  // Actions run one after another (a card clicked while a message is on its way waits).
  var queue = Promise.resolve();
  function act(path, body) {
    var sender = state.selected;
    if (!sender) return Promise.resolve();
    var run = function () {
      showError($("error"), "");
      return api("POST", "/api/agent/conversations/" + encodeURIComponent(sender) + "/" + path, body)
        .then(function () { refreshDetail(); refreshList(); })
        .catch(function (err) { showError($("error"), err.message); throw err; });
    };
    var p = queue.then(run, run);
    queue = p.catch(function () {});
    return p;
  }

  function sendCard(id, button) {
    button.disabled = true;
    act("card", { product_id: id }).then(function () { button.textContent = "Sent ✓"; }, function () { button.disabled = false; });
  }

  $("takeover").onclick = function () { act("takeover").then(function () { $("reply").focus(); }, function () {}); };
  $("handback").onclick = function () { act("handback").catch(function () {}); };
  $("composer").addEventListener("submit", function (e) {
    e.preventDefault();
    var text = $("reply").value.trim();
    if (!text) return;
    act("message", { text: text }).then(function () { $("reply").value = ""; }, function () {});
  });

  // ---- start ----
  api("GET", "/api/agent/me").then(function (b) { state.csrf = b.csrf_token; signedIn(b.username, b.role); }, function () { signedOut(); });
})();
