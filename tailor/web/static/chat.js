// Tailor chat page: plain JavaScript, no build step. All text is inserted with
// textContent, never innerHTML, so catalog and user text cannot inject markup.
//
// Besides chatting, the page sends with every message the store's signed customer token
// (demo sign-in: "Shop as") and its context (device, local hour, time zone), records what
// the shopper does with product cards (/api/events) and keeps the personalisation choice
// (/api/profile/consent).
(function () {
  "use strict";
  var KEY = "tailor.sender";              // localStorage: the conversation id
  var CUSTOMER_KEY = "tailor.customer";   // sessionStorage: {external_id, name, token, expires_at}
  var log = document.getElementById("log");
  var form = document.getElementById("composer");
  var input = document.getElementById("input");
  var typing = document.getElementById("typing");
  var errorBox = document.getElementById("error");
  var shopAs = document.getElementById("shop-as");
  var shopAsWrap = document.getElementById("shop-as-wrap");
  var personalise = document.getElementById("personalise");

  function newSender() {
    var rnd = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2);
    return "web-" + rnd;
  }
  var sender = localStorage.getItem(KEY);
  if (!sender) { sender = newSender(); localStorage.setItem(KEY, sender); }

  // ---- who is shopping (demo sign-in; a store's site would hand the token over) ----

  function loadCustomer() {
    try {
      var c = JSON.parse(sessionStorage.getItem(CUSTOMER_KEY) || "null");
      return (c && typeof c.token === "string" && typeof c.external_id === "string") ? c : null;
    } catch (e) { return null; }
  }
  var customer = loadCustomer();

  function saveCustomer(c) {
    customer = c;
    if (c) sessionStorage.setItem(CUSTOMER_KEY, JSON.stringify(c));
    else sessionStorage.removeItem(CUSTOMER_KEY);
  }

  function errorText(body, status) {
    var d = body && body.detail;
    if (typeof d === "string") return d;
    if (Array.isArray(d) && d.length) return d.map(function (x) { return x && x.msg; }).filter(Boolean).join("; ");
    return "HTTP " + status;
  }

  function postJSON(url, payload, headers) {
    var h = { "Content-Type": "application/json" };
    Object.keys(headers || {}).forEach(function (k) { h[k] = headers[k]; });
    return fetch(url, { method: "POST", headers: h, body: JSON.stringify(payload) }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) { var e = new Error(errorText(body, r.status)); e.status = r.status; e.body = body; throw e; }
        return body;
      });
    });
  }

  function signIn(externalId) {
    return postJSON("/api/demo/token", { external_id: externalId }).then(function (b) {
      var c = { external_id: externalId, name: b.name, token: b.token,
                expires_at: Date.now() + 1000 * Number(b.expires_in || 0) };
      saveCustomer(c);
      return c;
    });
  }

  // The current token, signed again shortly before it expires (the demo plays the store).
  function currentToken() {
    if (!customer) return Promise.resolve(null);
    if (customer.expires_at - 60000 > Date.now()) return Promise.resolve(customer.token);
    return signIn(customer.external_id).then(function (c) { return c.token; }, function () {
      saveCustomer(null);
      if (shopAs) shopAs.value = "";
      showError("Your demo sign-in expired; you are shopping as a guest.");
      return null;
    });
  }

  function context() {
    var w = window.innerWidth || document.documentElement.clientWidth || 1024;
    var coarse = !!(window.matchMedia && window.matchMedia("(pointer: coarse)").matches);
    var ctx = { device: w < 600 ? "mobile" : (coarse && w < 1100 ? "tablet" : "desktop"),
                local_hour: new Date().getHours() };
    try {
      var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (tz && tz.length <= 64 && tz !== "Etc/Unknown") ctx.tz = tz;
    } catch (e) { /* no Intl time zone: send none */ }
    return ctx;
  }

  // ---- rendering ----

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function scroll() { log.scrollTop = log.scrollHeight; }

  function addUser(text) {
    var row = el("div", "msg user");
    row.appendChild(el("p", "bubble", text));
    log.appendChild(row);
    scroll();
  }

  function stars(rating) {
    if (rating === null || rating === undefined) return "no rating yet";
    return "★ " + Number(rating).toFixed(1);
  }

  // Record what the shopper did with a product; best effort, never blocks the page.
  function track(kind, productId) {
    var id = Number(productId);
    if (!(id > 0)) return;
    var convo = sender;
    currentToken().then(function (token) {
      var body = { sender: convo, kind: kind, product_id: id };
      if (token) body.customer_token = token;
      return fetch("/api/events", { method: "POST", keepalive: true,
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    }).catch(function () { /* a lost click is not worth an error message */ });
  }

  function peek(p) {
    var box = el("dl", "peek");
    [["Category", (p.category || "").split(" > ").join(" › ")], ["Colour", p.colour],
     ["Material", p.material], ["Stock", p.in_stock === false ? "out of stock" : (p.in_stock ? "in stock" : null)],
     ["SKU", p.sku]].forEach(function (kv) {
      if (!kv[1]) return;
      box.appendChild(el("dt", null, kv[0]));
      box.appendChild(el("dd", null, kv[1]));
    });
    box.hidden = true;
    return box;
  }

  function card(p, position) {
    var c = el("article", "card");
    c.setAttribute("data-product-id", p.id);
    var facts = peek(p);
    function open() {
      facts.hidden = !facts.hidden;
      c.classList.toggle("opened", !facts.hidden);
      titleBtn.setAttribute("aria-expanded", String(!facts.hidden));
      if (!facts.hidden) track("click", p.id);
    }
    var img = el("div", "thumb");
    img.title = "Quick look";
    if (p.image_url) {
      var i = document.createElement("img");
      i.alt = ""; i.loading = "lazy"; i.src = p.image_url;
      i.onerror = function () { img.textContent = (p.category || "").split(" > ").pop().slice(0, 1); };
      img.appendChild(i);
    } else {
      img.textContent = (p.category || "?").split(" > ").pop().slice(0, 1);
    }
    img.onclick = open;
    c.appendChild(img);
    var body = el("div", "card-body");
    body.appendChild(el("span", "pos", "#" + position));
    var title = el("h3", "title");
    var titleBtn = el("button", "title-link", p.title);
    titleBtn.type = "button";
    titleBtn.setAttribute("aria-expanded", "false");
    titleBtn.onclick = open;
    title.appendChild(titleBtn);
    body.appendChild(title);
    var meta = el("p", "meta");
    meta.appendChild(el("span", "brand", p.brand || ""));
    meta.appendChild(el("span", "price", p.price_text));
    meta.appendChild(el("span", "rating", stars(p.rating) + (p.review_count ? " (" + p.review_count + ")" : "")));
    body.appendChild(meta);
    body.appendChild(facts);
    body.appendChild(el("p", "reason", p.reason));
    var actions = el("div", "card-actions");
    var more = el("button", "chip", "Details");
    more.type = "button";
    more.onclick = function () { track("view", p.id); send("tell me more about number " + position); };
    var like = el("button", "chip", "More like this");
    like.type = "button";
    like.onclick = function () { send("more like number " + position); };
    actions.appendChild(more); actions.appendChild(like);
    body.appendChild(actions);
    c.appendChild(body);
    return c;
  }

  function addBot(m) {
    var row = el("div", "msg bot");
    if (m.text) {
      m.text.split("\n").forEach(function (line) { row.appendChild(el("p", "bubble", line)); });
    }
    var custom = m.custom;
    if (custom && custom.type === "product_cards" && Array.isArray(custom.products)) {
      var grid = el("div", "cards");
      custom.products.forEach(function (p, i) { grid.appendChild(card(p, i + 1)); });
      row.appendChild(grid);
    }
    if (Array.isArray(m.buttons) && m.buttons.length) {
      var bar = el("div", "quick");
      m.buttons.forEach(function (b) {
        var btn = el("button", "chip", b.title);
        btn.type = "button";
        btn.onclick = function () { send(b.payload || b.title, b.title); };
        bar.appendChild(btn);
      });
      row.appendChild(bar);
    }
    log.appendChild(row);
    scroll();
  }

  function showError(text) {
    errorBox.textContent = text || "";
    errorBox.hidden = !text;
  }

  function render(messages) {
    // Rasa sends text (+buttons) and the card payload as separate messages; merge them.
    var pending = null;
    messages.forEach(function (m) {
      if (m.custom && pending && !pending.custom) { pending.custom = m.custom; return; }
      if (pending) addBot(pending);
      pending = { text: m.text, buttons: m.buttons, custom: m.custom };
    });
    if (pending) addBot(pending);
  }

  // ---- sending ----

  function contextRejected(err) {
    var d = err && err.status === 422 && err.body && err.body.detail;
    return Array.isArray(d) && d.some(function (x) { return x && Array.isArray(x.loc) && x.loc.indexOf("context") >= 0; });
  }

  var busy = false;
  function send(text, shown) {
    text = String(text || "").trim();
    if (!text || busy) return;
    busy = true; showError("");
    addUser(shown || text);
    typing.hidden = false;
    currentToken().then(function (token) {
      var payload = { sender: sender, message: text, context: context() };
      if (token) payload.customer_token = token;
      return postJSON("/api/chat", payload).catch(function (err) {
        // The message matters more than its context: resend without it if it was refused.
        if (!contextRejected(err)) throw err;
        delete payload.context;
        return postJSON("/api/chat", payload);
      });
    }).then(function (body) {
      render(body.messages || []);
    }).catch(function (e) {
      showError("Couldn't reach the assistant: " + (typeof e.message === "string" ? e.message : "error") + ". Your message was not lost — try again.");
      input.value = text;
    }).finally(function () { busy = false; typing.hidden = true; input.focus(); });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value;
    input.value = "";
    send(text);
  });

  // ---- conversation, consent, sign-in ----

  function tokenHeader(token) { return token ? { "X-Customer-Token": token } : {}; }

  function loadConsent() {
    var convo = sender;
    return currentToken().then(function (token) {
      return fetch("/api/profile/consent?sender=" + encodeURIComponent(convo), { headers: tokenHeader(token) });
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (b) {
      if (b && convo === sender) personalise.checked = b.personalisation !== false;
    }).catch(function () { /* keep the default */ });
  }

  personalise.addEventListener("change", function () {
    var wanted = personalise.checked;
    personalise.disabled = true;
    currentToken().then(function (token) {
      var body = { sender: sender, personalisation: wanted };
      if (token) body.customer_token = token;
      return postJSON("/api/profile/consent", body);
    }).then(function (b) {
      personalise.checked = b.personalisation !== false;
    }).catch(function (e) {
      personalise.checked = !wanted;
      showError("Couldn't save your choice: " + e.message);
    }).finally(function () { personalise.disabled = false; });
  });

  function greeting() {
    return customer ? "Hi " + customer.name + "! What are you shopping for?" : "New conversation. What are you shopping for?";
  }

  function newConversation() {
    sender = newSender(); localStorage.setItem(KEY, sender);
    log.textContent = "";
    showError("");
    addBot({ text: greeting() });
    loadConsent();
  }

  document.getElementById("new-chat").onclick = newConversation;

  function segmentLabel(c) {
    var s = c.segments || {};
    return s.rfm || s.demographic || "";
  }

  function fillShopAs(list) {
    list.forEach(function (c) {
      var label = segmentLabel(c);
      var opt = el("option", null, c.name + (label ? " · " + label : ""));
      opt.value = c.external_id;
      shopAs.appendChild(opt);
    });
    if (customer) {
      var known = list.some(function (c) { return c.external_id === customer.external_id; });
      if (!known) {
        var own = el("option", null, customer.name);
        own.value = customer.external_id;
        shopAs.appendChild(own);
      }
      shopAs.value = customer.external_id;
    }
    shopAsWrap.hidden = false;
  }

  var previous = customer ? customer.external_id : "";
  shopAs.addEventListener("change", function () {
    var chosen = shopAs.value;
    if (chosen === previous) return;
    shopAs.disabled = true;
    var done = chosen ? signIn(chosen) : Promise.resolve(saveCustomer(null));
    done.then(function () {
      previous = chosen;
      newConversation();
    }).catch(function (e) {
      shopAs.value = previous;
      showError("Couldn't sign in: " + e.message);
    }).finally(function () { shopAs.disabled = false; });
  });

  fetch("/api/demo/customers")
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (b) { if (b && Array.isArray(b.customers) && b.customers.length) fillShopAs(b.customers); })
    .catch(function () { /* no demo sign-in: the selector stays hidden */ });

  loadConsent();

  // A signed-in customer's conversation is readable only with their token; if it is not
  // ours any more (the sign-in ended with the tab), start a new one.
  currentToken()
    .then(function (token) {
      return fetch("/api/history?sender=" + encodeURIComponent(sender), { headers: tokenHeader(token) });
    })
    .then(function (r) {
      if (r.status === 403) { sender = newSender(); localStorage.setItem(KEY, sender); loadConsent(); }
      return r.ok ? r.json() : { messages: [] };
    })
    .then(function (body) {
      var msgs = body.messages || [];
      if (!msgs.length) {
        addBot({ text: customer ? greeting() : "Hi! I'm Tailor. What are you shopping for today?",
                 buttons: [{ title: "Running shoes under $80", payload: "I need running shoes under $80" },
                           { title: "A warm winter jacket", payload: "I'm looking for a warm winter jacket" },
                           { title: "Wireless headphones", payload: "show me wireless headphones" }] });
        return;
      }
      msgs.forEach(function (m) { if (m.from === "user") addUser(m.text); else render([m]); });
    })
    .catch(function () { showError("Couldn't load the conversation history."); });
})();
