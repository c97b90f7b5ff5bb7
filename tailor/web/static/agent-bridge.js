// Agent bridge for the shopper's page: shows messages and product cards a support agent
// sends while they have taken the conversation over (GET /api/updates, every 2 s).
// Include after chat.js:  <script src="/static/agent-bridge.js" defer></script>
// Renders into #log with the chat page's own classes; textContent only, never innerHTML.
// If the page exposes window.TailorChat.renderBot(message), that renderer is used instead.
(function () {
  "use strict";
  var KEY = "tailor.sender";
  var POLL_MS = 2000;
  var log = document.getElementById("log");
  if (!log) return;
  var sender = null;
  var cursor = null;
  var timer = null;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function card(p, position) {
    var c = el("article", "card agent-card");
    c.setAttribute("data-product-id", p.id);
    var thumb = el("div", "thumb");
    if (p.image_url) {
      var i = document.createElement("img");
      i.alt = ""; i.loading = "lazy"; i.src = p.image_url;
      i.onerror = function () { thumb.textContent = (p.category || "?").split(" > ").pop().slice(0, 1); };
      thumb.appendChild(i);
    } else {
      thumb.textContent = (p.category || "?").split(" > ").pop().slice(0, 1);
    }
    c.appendChild(thumb);
    var body = el("div", "card-body");
    body.appendChild(el("span", "pos", "#" + position));
    var title = el("h3", "title");
    title.appendChild(el("span", "title-link", p.title));
    body.appendChild(title);
    var meta = el("p", "meta");
    meta.appendChild(el("span", "brand", p.brand || ""));
    meta.appendChild(el("span", "price", p.price_text || ""));
    if (p.rating !== null && p.rating !== undefined) {
      meta.appendChild(el("span", "rating", "★ " + Number(p.rating).toFixed(1) + (p.review_count ? " (" + p.review_count + ")" : "")));
    }
    body.appendChild(meta);
    if (p.reason) body.appendChild(el("p", "reason", p.reason));
    c.appendChild(body);
    return c;
  }

  function show(m) {
    if (window.TailorChat && typeof window.TailorChat.renderBot === "function") {
      window.TailorChat.renderBot(m);
      return;
    }
    var row = el("div", "msg bot from-agent");
    if (m.text) String(m.text).split("\n").forEach(function (line) { row.appendChild(el("p", "bubble", line)); });
    var custom = m.custom;
    if (custom && custom.type === "product_cards" && Array.isArray(custom.products)) {
      var grid = el("div", "cards");
      custom.products.forEach(function (p, i) { grid.appendChild(card(p, i + 1)); });
      row.appendChild(grid);
    }
    log.appendChild(row);
    log.scrollTop = log.scrollHeight;
  }

  function poll() {
    var current = localStorage.getItem(KEY);
    if (current !== sender) { sender = current; cursor = null; }   // a new conversation
    if (!sender) return schedule();
    var convo = sender;
    var url = "/api/updates?sender=" + encodeURIComponent(convo) + (cursor === null ? "" : "&after=" + cursor);
    var headers = {};  // a signed-in customer's conversation needs their token (chat.js keeps it)
    try {
      var c = JSON.parse(sessionStorage.getItem("tailor.customer") || "null");
      if (c && c.token) headers["X-Customer-Token"] = c.token;
    } catch (e) { /* no storage: anonymous */ }
    fetch(url, { cache: "no-store", headers: headers })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (b) {
        if (!b || convo !== sender) return;
        if (cursor !== null) (b.messages || []).forEach(show);
        if (typeof b.next === "number") cursor = b.next;
      })
      .catch(function () { /* offline for a moment: try again on the next tick */ })
      .finally(schedule);
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(poll, document.hidden ? POLL_MS * 3 : POLL_MS);
  }

  poll();
})();
