/*! Tailor chat widget — embed on any page with one <script> tag, no build step.
 *
 *   <script src="https://tailor.example/static/widget/tailor-widget.js"
 *           data-server="https://tailor.example" data-customer-token="..."
 *           data-primary-color="#0a7" data-lang="en" defer></script>
 *
 * or, with data-auto-init="false", call window.Tailor.init({server, customerToken,
 * primaryColor, textColor, lang, title, open}) yourself.
 *
 * Everything lives in a shadow root, so the store's CSS cannot reach it. All text from the
 * shopper, the bot and the catalog is inserted with textContent, never as HTML.
 * Events for the store's page: window "tailor:add-to-cart" (detail: {product_id, sku,
 * title, price, currency}) and "tailor:ready".
 */
(function () {
  "use strict";
  if (window.Tailor && window.Tailor.version) return; // loaded twice: keep the first

  var VERSION = "1.0.0";
  var SCRIPT = document.currentScript ||
    document.querySelector('script[src*="tailor-widget.js"]');

  // ---- UI strings (add a language by adding a key here) ----
  var STRINGS = {
    en: {
      title: "Shopping assistant", open: "Chat with our shopping assistant", close: "Close chat",
      placeholder: "Ask for a product…", send: "Send", message: "Message",
      newChat: "New conversation", conversation: "Conversation", typing: "Assistant is typing",
      reconnecting: "Reconnecting…", offline: "Couldn't reach the assistant. Your message was kept — press Send to try again.",
      rejected: "The assistant couldn't take that message: ", history: "Couldn't load the earlier conversation.",
      hello: "Hi! What are you shopping for today?",
      moreLike: "More like this", like: "I like this", dislike: "Not for me", addToCart: "Add to cart",
      added: "Added", noRating: "No ratings yet", reviews: "reviews", details: "Ask about it",
      stale: "Reactions work on the latest suggestions",
      colour: "Colour", material: "Material", stock: "Stock", inStock: "in stock", outOfStock: "out of stock",
      suggestions: "Suggestions",
      // What the buttons say to the bot (the bot understands English).
      sayLike: "I like the {n} one", sayDislike: "I don't like the {n} one",
      sayMore: "more like the {n} one", sayDetails: "tell me more about the {n} one",
      starters: [["Running shoes under $80", "I need running shoes under $80"],
                 ["A warm winter jacket", "I'm looking for a warm winter jacket"]]
    },
    de: {
      title: "Einkaufsassistent", open: "Mit unserem Einkaufsassistenten chatten", close: "Chat schließen",
      placeholder: "Nach einem Produkt fragen…", send: "Senden", message: "Nachricht",
      newChat: "Neues Gespräch", conversation: "Gespräch", typing: "Der Assistent schreibt",
      reconnecting: "Verbindung wird wiederhergestellt…", offline: "Der Assistent ist nicht erreichbar. Ihre Nachricht ist noch da — „Senden“ versucht es erneut.",
      rejected: "Der Assistent konnte die Nachricht nicht annehmen: ", history: "Das bisherige Gespräch konnte nicht geladen werden.",
      hello: "Hallo! Wonach suchen Sie heute?",
      moreLike: "Mehr davon", like: "Gefällt mir", dislike: "Nichts für mich", addToCart: "In den Warenkorb",
      added: "Hinzugefügt", noRating: "Noch keine Bewertungen", reviews: "Bewertungen", details: "Mehr dazu",
      stale: "Reaktionen gelten für die neuesten Vorschläge",
      colour: "Farbe", material: "Material", stock: "Lager", inStock: "auf Lager", outOfStock: "ausverkauft",
      suggestions: "Vorschläge",
      sayLike: "I like the {n} one", sayDislike: "I don't like the {n} one",
      sayMore: "more like the {n} one", sayDetails: "tell me more about the {n} one",
      starters: [["Laufschuhe unter 80 $", "I need running shoes under $80"],
                 ["Eine warme Winterjacke", "I'm looking for a warm winter jacket"]]
    }
  };
  var ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"];

  var STYLE = [
    ":host{all:initial;--tw-primary:#0a7;--tw-on-primary:#fff;--tw-bg:#fff;--tw-fg:#1d2327;--tw-muted:#5f6b73;",
    "--tw-line:#dde3e7;--tw-soft:#f3f6f7;font:15px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--tw-fg)}",
    "*{box-sizing:border-box}",
    "[hidden]{display:none!important}",
    "button{font:inherit;cursor:pointer}",
    ":focus-visible{outline:3px solid var(--tw-primary);outline-offset:2px}",
    ".launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:60px;height:60px;border-radius:50%;border:0;",
    "background:var(--tw-primary);color:var(--tw-on-primary);box-shadow:0 4px 16px rgba(0,0,0,.25);display:grid;place-items:center}",
    ".launcher svg{width:28px;height:28px;fill:currentColor}",
    ".panel{position:fixed;right:20px;bottom:92px;z-index:2147483001;width:400px;max-width:calc(100vw - 40px);",
    "height:640px;max-height:calc(100vh - 112px);background:var(--tw-bg);border-radius:14px;",
    "box-shadow:0 8px 32px rgba(0,0,0,.28);display:flex;flex-direction:column;overflow:hidden}",
    ".head{display:flex;align-items:center;gap:8px;padding:12px 14px;background:var(--tw-primary);color:var(--tw-on-primary)}",
    ".head h2{flex:1;margin:0;font-size:16px;font-weight:600}",
    ".head button{background:transparent;border:0;color:inherit;padding:4px 8px;border-radius:6px;font-size:13px}",
    ".head .x{font-size:22px;line-height:1}",
    ".status{margin:0;padding:6px 14px;background:#fff4d6;color:#5c4400;font-size:13px}",
    ".status.error{background:#fde7e7;color:#8a1111}",
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:var(--tw-soft)}",
    ".msg{display:flex;flex-direction:column;gap:6px;max-width:100%}",
    ".msg.user{align-items:flex-end}",
    ".bubble{margin:0;padding:8px 12px;border-radius:14px;max-width:85%;white-space:pre-wrap;overflow-wrap:anywhere}",
    ".msg.bot .bubble{background:var(--tw-bg);border:1px solid var(--tw-line);border-top-left-radius:4px;align-self:flex-start}",
    ".msg.user .bubble{background:var(--tw-primary);color:var(--tw-on-primary);border-top-right-radius:4px}",
    ".msg.user.pending .bubble{opacity:.6}",
    ".cards{display:flex;gap:10px;overflow-x:auto;padding:2px 2px 8px;scroll-snap-type:x mandatory}",
    ".card{flex:0 0 230px;scroll-snap-align:start;background:var(--tw-bg);border:1px solid var(--tw-line);border-radius:12px;",
    "display:flex;flex-direction:column;overflow:hidden}",
    ".thumb{height:120px;background:#e8eef1;display:grid;place-items:center;color:var(--tw-muted);font-size:40px;font-weight:700;",
    "text-transform:uppercase;position:relative}",
    ".thumb img{width:100%;height:100%;object-fit:cover}",
    ".pos{position:absolute;left:8px;top:8px;background:rgba(0,0,0,.6);color:#fff;font-size:12px;padding:1px 7px;border-radius:10px}",
    ".cbody{padding:10px;display:flex;flex-direction:column;gap:4px;flex:1}",
    ".title{margin:0;font-size:14px;font-weight:600}",
    ".title button{all:unset;cursor:pointer;color:var(--tw-fg)}",
    ".title button:hover{text-decoration:underline}",
    ".title button:focus-visible{outline:3px solid var(--tw-primary)}",
    ".meta{margin:0;display:flex;flex-wrap:wrap;gap:4px 10px;font-size:13px;color:var(--tw-muted)}",
    ".price{color:var(--tw-fg);font-weight:700}",
    ".reason{margin:0;font-size:13px;color:var(--tw-fg);background:var(--tw-soft);border-radius:8px;padding:5px 8px}",
    ".facts{margin:0;font-size:12px;display:grid;grid-template-columns:auto 1fr;gap:2px 8px}",
    ".facts dt{color:var(--tw-muted)}.facts dd{margin:0}",
    ".actions{display:flex;flex-wrap:wrap;gap:6px;margin-top:auto;padding-top:6px}",
    ".chip{border:1px solid var(--tw-primary);color:var(--tw-primary);background:var(--tw-bg);border-radius:16px;padding:5px 10px;font-size:13px}",
    ".chip:disabled{opacity:.45;cursor:default}",
    ".chip[aria-pressed=true]{background:var(--tw-primary);color:var(--tw-on-primary)}",
    ".chip.icon{padding:4px 9px;line-height:0}.chip.icon svg{width:16px;height:16px;fill:currentColor}",
    ".chip.cart{background:var(--tw-primary);color:var(--tw-on-primary)}",
    ".quick{display:flex;flex-wrap:wrap;gap:6px}",
    ".typing{display:flex;gap:4px;padding:10px 12px;align-self:flex-start;background:var(--tw-bg);border:1px solid var(--tw-line);border-radius:14px}",
    ".typing span{width:7px;height:7px;border-radius:50%;background:var(--tw-muted);animation:tw-b 1s infinite}",
    ".typing span:nth-child(2){animation-delay:.15s}.typing span:nth-child(3){animation-delay:.3s}",
    "@keyframes tw-b{0%,80%,100%{opacity:.3}40%{opacity:1}}",
    "@media (prefers-reduced-motion:reduce){.typing span{animation:none}}",
    ".composer{display:flex;gap:8px;padding:10px;border-top:1px solid var(--tw-line);background:var(--tw-bg)}",
    ".composer input{flex:1;min-width:0;font:inherit;padding:9px 12px;border:1px solid var(--tw-line);border-radius:20px;color:var(--tw-fg);background:var(--tw-bg)}",
    ".composer button{border:0;border-radius:20px;padding:8px 16px;background:var(--tw-primary);color:var(--tw-on-primary)}",
    ".vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    "@media (max-width:520px){.panel{inset:0;width:100%;max-width:none;height:100%;max-height:none;border-radius:0}",
    ".launcher{right:14px;bottom:14px}.card{flex-basis:78%}}"
  ].join("");

  var ICON_CHAT = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';
  // Thumbs as SVG, not emoji: they look the same on every system, with or without an emoji font.
  var ICON_UP = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3a1.5 1.5 0 0 0-.5-1.1L13.2 1 6.6 7.6A2 2 0 0 0 6 9v10a2 2 0 0 0 2 2h9a2 2 0 0 0 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7v-2z"/></svg>';
  var ICON_DOWN = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M22 3h-4v12h4V3zM2 14a2 2 0 0 0 2 2h6.3l-1 4.6v.3c0 .4.2.8.5 1.1l1 1 6.6-6.6A2 2 0 0 0 18 15V5a2 2 0 0 0-2-2H7a2 2 0 0 0-1.8 1.2l-3 7.1c-.1.2-.2.5-.2.7v2z"/></svg>';
  var ICON_CLOSE = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12 19 17.6 17.6 19 12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z"/></svg>';

  // ---- small helpers ----
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function button(cls, text, label) {
    var b = el("button", cls, text);
    b.type = "button";
    if (label) b.setAttribute("aria-label", label);
    return b;
  }
  function store(kind) { try { return window[kind]; } catch (e) { return null; } }
  function getItem(kind, key) { var s = store(kind); try { return s ? s.getItem(key) : null; } catch (e) { return null; } }
  function setItem(kind, key, value) {
    var s = store(kind);
    try { if (!s) return; if (value === null) s.removeItem(key); else s.setItem(key, value); } catch (e) { /* private mode */ }
  }
  function safeColor(v) { return typeof v === "string" && v && window.CSS && CSS.supports("color", v) ? v : null; }
  function safeImage(url) { return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null; }
  function newSender() {
    var rnd = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2);
    return "web-" + rnd;
  }
  function fill(template, n) { return template.replace("{n}", ORDINALS[n - 1] || ("number " + n)); }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function optionsFromScript(script) {
    if (!script) return {};
    var d = script.dataset, o = {};
    if (d.server) o.server = d.server;
    if (d.customerToken) o.customerToken = d.customerToken;
    if (d.primaryColor) o.primaryColor = d.primaryColor;
    if (d.textColor) o.textColor = d.textColor;
    if (d.lang) o.lang = d.lang;
    if (d.title) o.title = d.title;
    if (d.open) o.open = d.open === "true";
    o.autoInit = d.autoInit !== "false";
    return o;
  }
  function defaultServer(script) {
    try { return new URL(script.src, location.href).origin; } catch (e) { return location.origin; }
  }

  // ---- the widget ----
  function Widget(opts) {
    this.opts = opts;
    this.server = String(opts.server || defaultServer(SCRIPT)).replace(/\/+$/, "");
    var lang = String(opts.lang || document.documentElement.lang || "en").toLowerCase().slice(0, 2);
    this.lang = STRINGS[lang] ? lang : "en";
    this.t = STRINGS[this.lang];
    this.token = opts.customerToken || null;
    this.keys = { sender: "tailor.widget.sender", open: "tailor.widget.open", draft: "tailor.widget.draft" };
    this.sender = getItem("localStorage", this.keys.sender);
    if (!this.sender) { this.sender = newSender(); setItem("localStorage", this.keys.sender, this.sender); }
    this.busy = false;
    this.latestCards = null; // the card list ordinals refer to
    this.agentCursor = null; // position in the agent's messages (GET /api/updates)
    this.build();
    this.pollAgent();
  }

  Widget.prototype.build = function () {
    var t = this.t, self = this;
    var host = this.host = el("div");
    host.id = "tailor-widget";
    host.setAttribute("data-tailor-widget", VERSION);
    var root = this.root = host.attachShadow({ mode: "open" });
    var style = el("style"); style.textContent = STYLE; root.appendChild(style);
    var primary = safeColor(this.opts.primaryColor), onPrimary = safeColor(this.opts.textColor);
    if (primary) host.style.setProperty("--tw-primary", primary);
    if (onPrimary) host.style.setProperty("--tw-on-primary", onPrimary);

    var launcher = this.launcher = button("launcher", null, t.open);
    launcher.innerHTML = ICON_CHAT; // constant markup, no data
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-controls", "tw-panel");
    launcher.onclick = function () { self.toggle(); };

    var panel = this.panel = el("section", "panel");
    panel.id = "tw-panel";
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", this.opts.title || t.title);
    panel.hidden = true;
    var head = el("header", "head");
    head.appendChild(el("h2", null, this.opts.title || t.title));
    var fresh = button("new", t.newChat);
    fresh.onclick = function () { self.newConversation(); };
    var x = button("x", "×", t.close);
    x.onclick = function () { self.close(true); };
    head.appendChild(fresh); head.appendChild(x);
    var status = this.status = el("p", "status");
    status.setAttribute("role", "status");
    status.hidden = true;
    var log = this.log = el("div", "log");
    log.setAttribute("role", "log");
    log.setAttribute("aria-live", "polite");
    log.setAttribute("aria-label", t.conversation);
    var typing = this.typing = el("div", "typing");
    typing.setAttribute("role", "status");
    typing.setAttribute("aria-label", t.typing);
    typing.appendChild(el("span")); typing.appendChild(el("span")); typing.appendChild(el("span"));
    typing.hidden = true;
    var form = el("form", "composer");
    form.setAttribute("autocomplete", "off");
    var label = el("label", "vh", t.message);
    label.htmlFor = "tw-input";
    var input = this.input = el("input");
    input.id = "tw-input"; input.name = "message"; input.maxLength = 2000; input.placeholder = t.placeholder;
    input.value = getItem("sessionStorage", this.keys.draft) || "";
    input.addEventListener("input", function () { setItem("sessionStorage", self.keys.draft, input.value || null); });
    var sendBtn = el("button", "send", t.send); sendBtn.type = "submit";
    form.appendChild(label); form.appendChild(input); form.appendChild(sendBtn);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var text = input.value;
      if (!text.trim() || self.busy) return;
      input.value = "";
      self.send(text);
    });
    panel.addEventListener("keydown", function (e) { if (e.key === "Escape") self.close(true); });
    panel.appendChild(head); panel.appendChild(status); panel.appendChild(log); panel.appendChild(form);
    root.appendChild(panel); root.appendChild(launcher);
    document.body.appendChild(host);

    this.loadHistory();
    if (this.opts.open || getItem("sessionStorage", this.keys.open) === "1") this.open(false);
  };

  Widget.prototype.open = function (focus) {
    this.panel.hidden = false;
    this.launcher.setAttribute("aria-expanded", "true");
    this.launcher.setAttribute("aria-label", this.t.close);
    this.launcher.innerHTML = ICON_CLOSE;
    setItem("sessionStorage", this.keys.open, "1");
    this.scroll();
    if (focus !== false) this.input.focus();
  };
  Widget.prototype.close = function (focusLauncher) {
    this.panel.hidden = true;
    this.launcher.setAttribute("aria-expanded", "false");
    this.launcher.setAttribute("aria-label", this.t.open);
    this.launcher.innerHTML = ICON_CHAT;
    setItem("sessionStorage", this.keys.open, null);
    if (focusLauncher) this.launcher.focus();
  };
  Widget.prototype.toggle = function () { if (this.panel.hidden) this.open(); else this.close(false); };

  Widget.prototype.scroll = function () { this.log.scrollTop = this.log.scrollHeight; };

  Widget.prototype.setStatus = function (text, isError) {
    this.status.textContent = text || "";
    this.status.className = "status" + (isError ? " error" : "");
    this.status.hidden = !text;
  };

  // ---- network ----
  Widget.prototype.api = function (path, body) {
    var init = body === undefined ? { method: "GET", headers: {} } :
      { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    // Reads of a signed-in customer's conversation (history, agent updates) need their token.
    if (body === undefined && this.token) init.headers["X-Customer-Token"] = this.token;
    init.credentials = "omit"; // the token travels in the body; no cookies cross origins
    return fetch(this.server + path, init).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (r.ok) return data;
        var d = data && data.detail, msg = typeof d === "string" ? d :
          (Array.isArray(d) ? d.map(function (x) { return x && x.msg; }).filter(Boolean).join("; ") : "HTTP " + r.status);
        var err = new Error(msg); err.status = r.status; throw err;
      });
    });
  };

  function retryable(err) {
    // No answer at all (server down, restarting, offline) or a gateway error: try again.
    return !err.status || err.status === 502 || err.status === 503 || err.status === 504;
  }

  Widget.prototype.context = function () {
    var w = window.innerWidth || document.documentElement.clientWidth || 1024;
    var ctx = { device: w < 600 ? "mobile" : "desktop", local_hour: new Date().getHours() };
    try {
      var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (tz && tz.length <= 64 && tz !== "Etc/Unknown") ctx.tz = tz;
    } catch (e) { /* no time zone */ }
    return ctx;
  };

  Widget.prototype.track = function (kind, productId) {
    var id = Number(productId);
    if (!(id > 0)) return Promise.resolve();
    var body = { sender: this.sender, kind: kind, product_id: id };
    if (this.token) body.customer_token = this.token;
    return this.api("/api/events", body).catch(function () { /* a lost click is not worth an error */ });
  };

  // Send a message; retry with backoff while the server is unreachable (it may be
  // restarting), keeping the message on screen and in the draft until it got through.
  Widget.prototype.send = function (text, shown) {
    var self = this, t = this.t;
    text = String(text || "").trim();
    if (!text || this.busy) return Promise.resolve();
    this.busy = true;
    this.interacted = true;
    this.setStatus("");
    var row = this.addUser(shown || text);
    row.classList.add("pending");
    setItem("sessionStorage", this.keys.draft, text);
    this.showTyping(true);
    var payload = { sender: this.sender, message: text, context: this.context() };
    if (this.token) payload.customer_token = this.token;
    var delays = [500, 1000, 2000, 4000, 8000, 8000, 8000, 8000, 8000, 8000];
    var attempt = 0;
    function go() {
      return self.api("/api/chat", payload).catch(function (err) {
        if (!retryable(err) || attempt >= delays.length) throw err;
        self.setStatus(t.reconnecting);
        return sleep(delays[attempt++]).then(go);
      });
    }
    return go().then(function (body) {
      row.classList.remove("pending");
      setItem("sessionStorage", self.keys.draft, self.input.value || null);
      self.setStatus("");
      self.showTyping(false);
      self.render(body.messages || []);
    }, function (err) {
      row.remove();
      self.showTyping(false);
      if (!self.input.value) self.input.value = text;
      self.setStatus(retryable(err) ? t.offline : t.rejected + err.message, true);
    }).then(function () { self.busy = false; });
  };

  Widget.prototype.loadHistory = function () {
    var self = this, sender = this.sender;
    var attempt = 0;
    function go() {
      return self.api("/api/history?sender=" + encodeURIComponent(sender)).catch(function (err) {
        if (err.status === 403) { // another customer's conversation (or a sign-in that ended)
          sender = self.sender = newSender();
          self.agentCursor = null;
          setItem("localStorage", self.keys.sender, sender);
          return { messages: [] };
        }
        if (!retryable(err) || attempt >= 5) throw err;
        self.setStatus(self.t.reconnecting);
        return sleep(1000 * Math.pow(2, attempt++)).then(go);
      });
    }
    return go().then(function (body) {
      // Too late: the shopper already started (or restarted) talking; keep what is shown.
      if (sender !== self.sender || self.interacted) return;
      self.setStatus("");
      var msgs = body.messages || [];
      if (!msgs.length) { self.greet(); return; }
      var batch = [];
      msgs.forEach(function (m) {
        if (m.from === "user") { self.render(batch); batch = []; self.addUser(m.text); }
        else batch.push(m);
      });
      self.render(batch);
    }).catch(function () {
      if (sender !== self.sender || self.interacted) return;
      self.setStatus(self.t.history, true); self.greet();
    });
  };

  // Messages and cards a support agent sends while they have taken the conversation over
  // arrive without a request from the shopper: poll for them (every 2 s, slower when hidden).
  Widget.prototype.pollAgent = function () {
    var self = this, convo = this.sender;
    if (this.destroyed) return;
    var url = "/api/updates?sender=" + encodeURIComponent(convo) +
      (this.agentCursor === null ? "" : "&after=" + this.agentCursor);
    this.api(url).then(function (b) {
      if (convo !== self.sender || self.destroyed) return; // a new conversation started
      if (self.agentCursor !== null) (b.messages || []).forEach(function (m) { self.addBot(m); });
      if (typeof b.next === "number") self.agentCursor = b.next;
    }).catch(function () { /* server restarting: the next tick retries */ }).then(function () {
      if (self.destroyed) return;
      self.agentTimer = setTimeout(function () { self.pollAgent(); }, document.hidden ? 6000 : 2000);
    });
  };

  Widget.prototype.greet = function () {
    this.addBot({ text: this.t.hello, buttons: this.t.starters.map(function (s) { return { title: s[0], payload: s[1] }; }) });
  };

  Widget.prototype.newConversation = function () {
    this.sender = newSender();
    this.agentCursor = null;
    setItem("localStorage", this.keys.sender, this.sender);
    this.log.textContent = "";
    this.latestCards = null;
    this.setStatus("");
    this.greet();
    this.input.focus();
  };

  Widget.prototype.showTyping = function (on) {
    if (on) { this.log.appendChild(this.typing); this.typing.hidden = false; this.scroll(); }
    else { this.typing.hidden = true; if (this.typing.parentNode) this.typing.parentNode.removeChild(this.typing); }
  };

  // ---- rendering ----
  Widget.prototype.addUser = function (text) {
    var row = el("div", "msg user");
    row.appendChild(el("p", "bubble", text));
    this.log.insertBefore(row, this.typing.parentNode === this.log ? this.typing : null);
    this.scroll();
    return row;
  };

  Widget.prototype.render = function (messages) {
    // Rasa sends the text (+ buttons) and the card payload as separate messages; merge them.
    var pending = null, self = this;
    messages.forEach(function (m) {
      if (m.custom && pending && !pending.custom) { pending.custom = m.custom; return; }
      if (pending) self.addBot(pending);
      pending = { text: m.text, buttons: m.buttons, custom: m.custom };
    });
    if (pending) this.addBot(pending);
  };

  Widget.prototype.addBot = function (m) {
    var self = this, row = el("div", "msg bot");
    if (m.text) row.appendChild(el("p", "bubble", m.text));
    var custom = m.custom;
    if (custom && custom.type === "product_cards" && Array.isArray(custom.products) && custom.products.length) {
      if (this.latestCards) this.latestCards.classList.add("stale");
      this.disableReactions(this.latestCards);
      var grid = el("div", "cards");
      grid.setAttribute("role", "list");
      grid.setAttribute("aria-label", this.t.suggestions);
      custom.products.forEach(function (p, i) { if (p && typeof p === "object") grid.appendChild(self.card(p, i + 1)); });
      row.appendChild(grid);
      this.latestCards = grid;
    }
    if (Array.isArray(m.buttons) && m.buttons.length) {
      var bar = el("div", "quick");
      m.buttons.forEach(function (b) {
        if (!b) return;
        var btn = button("chip", b.title);
        btn.onclick = function () { self.send(b.payload || b.title, b.title); };
        bar.appendChild(btn);
      });
      row.appendChild(bar);
    }
    this.log.insertBefore(row, this.typing.parentNode === this.log ? this.typing : null);
    this.scroll();
  };

  Widget.prototype.disableReactions = function (grid) {
    if (!grid) return;
    var t = this.t;
    Array.prototype.forEach.call(grid.querySelectorAll("[data-react]"), function (b) {
      b.disabled = true; b.title = t.stale;
    });
  };

  function stars(rating, count, t) {
    if (rating === null || rating === undefined || isNaN(Number(rating))) return t.noRating;
    return "★ " + Number(rating).toFixed(1) + (count ? " (" + count + " " + t.reviews + ")" : "");
  }

  Widget.prototype.card = function (p, n) {
    var self = this, t = this.t;
    var c = el("article", "card");
    c.setAttribute("role", "listitem");
    c.setAttribute("data-product-id", String(Number(p.id) || ""));
    var thumb = el("div", "thumb");
    var initial = String(p.title || p.category || "?").trim().slice(0, 1) || "?";
    var img = safeImage(p.image_url);
    if (img) {
      var i = document.createElement("img");
      i.alt = ""; i.loading = "lazy"; i.src = img;
      i.onerror = function () { thumb.textContent = initial; thumb.classList.add("placeholder"); thumb.appendChild(pos); };
      thumb.appendChild(i);
    } else {
      thumb.textContent = initial;
      thumb.classList.add("placeholder");
    }
    var pos = el("span", "pos", "#" + n);
    thumb.appendChild(pos);
    c.appendChild(thumb);

    var body = el("div", "cbody");
    var h = el("h3", "title");
    var titleBtn = button(null, p.title);
    titleBtn.setAttribute("aria-expanded", "false");
    h.appendChild(titleBtn);
    body.appendChild(h);
    var meta = el("p", "meta");
    if (p.brand) meta.appendChild(el("span", "brand", p.brand));
    meta.appendChild(el("span", "price", p.price_text || ""));
    meta.appendChild(el("span", "rating", stars(p.rating, p.review_count, t)));
    body.appendChild(meta);
    if (p.reason) body.appendChild(el("p", "reason", p.reason));

    var facts = el("dl", "facts");
    [[t.colour, p.colour], [t.material, p.material],
     [t.stock, p.in_stock === false ? t.outOfStock : (p.in_stock ? t.inStock : null)], ["SKU", p.sku]
    ].forEach(function (kv) {
      if (!kv[1]) return;
      facts.appendChild(el("dt", null, kv[0])); facts.appendChild(el("dd", null, kv[1]));
    });
    var ask = button("chip", t.details);
    ask.setAttribute("data-react", "details");
    ask.onclick = function () { self.track("view", p.id); self.send(fill(t.sayDetails, n)); };
    var more = el("div", "more");
    more.appendChild(facts); more.appendChild(ask);
    more.hidden = true;
    body.appendChild(more);
    titleBtn.onclick = function () {
      more.hidden = !more.hidden;
      titleBtn.setAttribute("aria-expanded", String(!more.hidden));
      if (!more.hidden) self.track("click", p.id);
    };

    var actions = el("div", "actions");
    var moreLike = button("chip", t.moreLike);
    moreLike.setAttribute("data-react", "more");
    moreLike.onclick = function () { self.send(fill(t.sayMore, n)); };
    var up = button("chip icon", null, t.like + ": " + (p.title || ""));
    up.innerHTML = ICON_UP; // constant markup, no data
    up.setAttribute("data-react", "like");
    up.setAttribute("aria-pressed", "false");
    var down = button("chip icon", null, t.dislike + ": " + (p.title || ""));
    down.innerHTML = ICON_DOWN; // constant markup, no data
    down.setAttribute("data-react", "dislike");
    down.setAttribute("aria-pressed", "false");
    up.onclick = function () { up.setAttribute("aria-pressed", "true"); self.send(fill(t.sayLike, n)); };
    down.onclick = function () { down.setAttribute("aria-pressed", "true"); self.send(fill(t.sayDislike, n)); };
    var cart = button("chip cart", t.addToCart, t.addToCart + ": " + (p.title || ""));
    cart.onclick = function () { self.addToCart(p, cart); };
    actions.appendChild(moreLike); actions.appendChild(up); actions.appendChild(down); actions.appendChild(cart);
    body.appendChild(actions);
    c.appendChild(body);
    return c;
  };

  Widget.prototype.addToCart = function (p, btn) {
    var detail = { product_id: Number(p.id), sku: p.sku || null, title: p.title || "",
                   price: typeof p.price === "number" ? p.price : null, currency: p.currency || null };
    window.dispatchEvent(new CustomEvent("tailor:add-to-cart", { detail: detail }));
    this.track("cart", p.id);
    btn.textContent = "✓ " + this.t.added;
  };

  Widget.prototype.destroy = function () {
    this.destroyed = true;
    clearTimeout(this.agentTimer);
    if (this.host.parentNode) this.host.parentNode.removeChild(this.host);
  };

  // ---- public API ----
  var current = null;
  var Tailor = {
    version: VERSION,
    languages: Object.keys(STRINGS),
    init: function (options) {
      var o = {}, k;
      var base = optionsFromScript(SCRIPT);
      for (k in base) o[k] = base[k];
      for (k in (options || {})) o[k] = options[k];
      if (current) current.destroy();
      var start = function () {
        current = new Widget(o);
        window.dispatchEvent(new CustomEvent("tailor:ready", { detail: { sender: current.sender } }));
      };
      if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
      return Tailor;
    },
    open: function () { if (current) current.open(); },
    close: function () { if (current) current.close(false); },
    send: function (text) { return current ? current.send(text) : Promise.resolve(); },
    setCustomerToken: function (token) { if (current) current.token = token || null; },
    destroy: function () { if (current) { current.destroy(); current = null; } }
  };
  window.Tailor = Tailor;
  if (optionsFromScript(SCRIPT).autoInit !== false) Tailor.init();
})();
