// Tailor chat page: plain JavaScript, no build step. All text is inserted with
// textContent, never innerHTML, so catalog and user text cannot inject markup.
(function () {
  "use strict";
  var KEY = "tailor.sender";
  var log = document.getElementById("log");
  var form = document.getElementById("composer");
  var input = document.getElementById("input");
  var typing = document.getElementById("typing");
  var errorBox = document.getElementById("error");

  function newSender() {
    var rnd = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2);
    return "web-" + rnd;
  }
  var sender = localStorage.getItem(KEY);
  if (!sender) { sender = newSender(); localStorage.setItem(KEY, sender); }

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

  function card(p, position) {
    var c = el("article", "card");
    c.setAttribute("data-product-id", p.id);
    var img = el("div", "thumb");
    if (p.image_url) {
      var i = document.createElement("img");
      i.alt = ""; i.loading = "lazy"; i.src = p.image_url;
      i.onerror = function () { img.textContent = (p.category || "").split(" > ").pop().slice(0, 1); };
      img.appendChild(i);
    } else {
      img.textContent = (p.category || "?").split(" > ").pop().slice(0, 1);
    }
    c.appendChild(img);
    var body = el("div", "card-body");
    body.appendChild(el("span", "pos", "#" + position));
    body.appendChild(el("h3", "title", p.title));
    var meta = el("p", "meta");
    meta.appendChild(el("span", "brand", p.brand || ""));
    meta.appendChild(el("span", "price", p.price_text));
    meta.appendChild(el("span", "rating", stars(p.rating) + (p.review_count ? " (" + p.review_count + ")" : "")));
    body.appendChild(meta);
    body.appendChild(el("p", "reason", p.reason));
    var actions = el("div", "card-actions");
    var more = el("button", "chip", "Details");
    more.type = "button";
    more.onclick = function () { send("tell me more about number " + position); };
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

  var busy = false;
  function send(text, shown) {
    text = String(text || "").trim();
    if (!text || busy) return;
    busy = true; showError("");
    addUser(shown || text);
    typing.hidden = false;
    fetch("/api/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sender: sender, message: text })
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error((body && body.detail && (body.detail.msg || body.detail)) || ("HTTP " + r.status));
        return body;
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

  document.getElementById("new-chat").onclick = function () {
    sender = newSender(); localStorage.setItem(KEY, sender);
    log.textContent = "";
    addBot({ text: "New conversation. What are you shopping for?" });
  };

  fetch("/api/history?sender=" + encodeURIComponent(sender))
    .then(function (r) { return r.ok ? r.json() : { messages: [] }; })
    .then(function (body) {
      var msgs = body.messages || [];
      if (!msgs.length) {
        addBot({ text: "Hi! I'm Tailor. What are you shopping for today?",
                 buttons: [{ title: "Running shoes under $80", payload: "I need running shoes under $80" },
                           { title: "A warm winter jacket", payload: "I'm looking for a warm winter jacket" },
                           { title: "Wireless headphones", payload: "show me wireless headphones" }] });
        return;
      }
      msgs.forEach(function (m) { if (m.from === "user") addUser(m.text); else render([m]); });
    })
    .catch(function () { showError("Couldn't load the conversation history."); });
})();
