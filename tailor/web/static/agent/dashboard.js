/* Tailor marketing dashboard: fetches /api/admin/dashboard and draws inline SVG charts.
   No libraries. Every chart is an <svg role="img"> with a <title>/<desc>, a legend, and a
   data table under "Show the numbers" for screen readers and for copying. Text from the
   data (queries, segment names) only ever goes through textContent. */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var NS = "http://www.w3.org/2000/svg";
  var COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#edc948", "#9c755f"];
  var state = { data: null, uid: 0 };

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }
  function svg(tag, attrs, text) {
    var n = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) n.textContent = String(text);
    return n;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // ---- formatting ----
  function pct(v) { return v === null || v === undefined ? "–" : (v * 100).toFixed(v < 0.1 ? 1 : 0) + "%"; }
  function num(v) { return v === null || v === undefined ? "–" : Math.round(v).toLocaleString("en"); }
  function signed(v) {
    if (v === null || v === undefined) return "–";
    var r = Math.round(v * 100) / 100;
    return (r > 0 ? "+" : r < 0 ? "−" : "") + Math.abs(r).toFixed(2);
  }
  function shortDate(iso) {
    var d = new Date(iso + "T00:00:00Z");
    return d.toLocaleDateString("en", { month: "short", day: "numeric", timeZone: "UTC" });
  }
  function label(s) { return String(s).replace(/_/g, " "); }
  var METRICS = {
    ctr: { name: "Click-through rate", fmt: pct, base: "impressions" },
    conversion: { name: "Conversion", fmt: pct, base: "shoppers" },
    cart_rate: { name: "Add-to-cart rate", fmt: pct, base: "impressions" },
    impressions: { name: "Impressions", fmt: num, base: null }
  };
  /* A rate over fewer than this many impressions (or shoppers) is noise: not drawn. */
  var MIN_BASE = 5;
  function rateOf(p, key, base) { return base && (p[base] || 0) < MIN_BASE ? null : p[key]; }

  // ---- scales ----
  function niceStep(v) {
    var p = Math.pow(10, Math.floor(Math.log10(v))), m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
  }
  /* An axis from lo to a round top above max, in 3 to 5 round steps. */
  function axis(lo, max, hi) {
    if (hi !== undefined) return { lo: lo, hi: hi, step: niceStep((hi - lo) / 4) };
    if (!(max > lo)) max = lo + 1;
    var step = niceStep((max - lo) / 4);
    return { lo: lo, hi: lo + step * Math.ceil((max - lo) / step - 1e-9), step: step };
  }
  function ticks(a) {
    var out = [];
    for (var v = a.lo; v <= a.hi + a.step / 1000; v += a.step) out.push(Math.abs(v) < 1e-12 ? 0 : v);
    return out;
  }

  function figure(host, title, desc) {
    var id = "c" + (++state.uid);
    var s = svg("svg", { role: "img", "aria-labelledby": id + "-t " + id + "-d", class: "plot" });
    s.appendChild(svg("title", { id: id + "-t" }, title));
    s.appendChild(svg("desc", { id: id + "-d" }, desc));
    var fig = el("figure", "fig");
    var cap = el("figcaption", "fig-title", title);
    fig.appendChild(cap);
    fig.appendChild(s);
    host.appendChild(fig);
    return { svg: s, fig: fig };
  }

  function legend(fig, names) {
    var ul = el("ul", "legend");
    names.forEach(function (n, i) {
      var li = el("li");
      var sw = el("span", "swatch");
      sw.style.background = COLOURS[i % COLOURS.length];
      li.appendChild(sw);
      li.appendChild(document.createTextNode(label(n)));
      ul.appendChild(li);
    });
    fig.appendChild(ul);
  }

  function dataTable(fig, head, rows) {
    var det = el("details", "numbers");
    det.appendChild(el("summary", null, "Show the numbers"));
    var t = el("table", "data");
    var tr = el("tr");
    head.forEach(function (h, i) { var th = el("th", i ? "num" : null, h); th.scope = "col"; tr.appendChild(th); });
    var thead = el("thead"); thead.appendChild(tr); t.appendChild(thead);
    var tb = el("tbody");
    rows.forEach(function (r) {
      var row = el("tr");
      r.forEach(function (c, i) { row.appendChild(el(i ? "td" : "th", i ? "num" : null, c)); });
      tb.appendChild(row);
    });
    t.appendChild(tb);
    det.appendChild(t);
    fig.appendChild(det);
  }

  function empty(host, text) { host.appendChild(el("p", "empty muted", text)); }

  /* Lines over time. opts: title, desc, labels (ISO days), series [{name, values}], fmt,
     min/max (fixed axis, else 0..nice max), zero (draw a zero line). */
  function widthOf(host) { return Math.max(360, Math.round(host.getBoundingClientRect().width) || 640); }

  function lineChart(host, opts) {
    var W = widthOf(host), H = opts.height || 220, L = 52, R = 14, T = 12, B = 30;
    var f = figure(host, opts.title, opts.desc);
    f.svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    var all = [];
    opts.series.forEach(function (s) { s.values.forEach(function (v) { if (v !== null && v !== undefined) all.push(v); }); });
    var ax = axis(opts.min !== undefined ? opts.min : 0, Math.max.apply(null, all.concat([0])), opts.max);
    var lo = ax.lo, hi = ax.hi;
    var n = opts.labels.length;
    var x = function (i) { return L + (n <= 1 ? (W - L - R) / 2 : i * (W - L - R) / (n - 1)); };
    var y = function (v) { return T + (H - T - B) * (1 - (v - lo) / (hi - lo || 1)); };
    var g = svg("g", { class: "axis" });
    ticks(ax).forEach(function (v) {
      var yy = y(v);
      g.appendChild(svg("line", { x1: L, x2: W - R, y1: yy, y2: yy, class: "grid" }));
      g.appendChild(svg("text", { x: L - 6, y: yy + 4, "text-anchor": "end" }, opts.fmt(v)));
    });
    if (opts.zero && lo < 0 && hi > 0) g.appendChild(svg("line", { x1: L, x2: W - R, y1: y(0), y2: y(0), class: "zero" }));
    var every = Math.max(1, Math.ceil(n / Math.max(4, Math.floor((W - L - R) / 70))));
    opts.labels.forEach(function (d, i) {
      if (i % every === 0 || i === n - 1 && n < 4)
        g.appendChild(svg("text", { x: x(i), y: H - 10, "text-anchor": "middle" }, shortDate(d)));
    });
    f.svg.appendChild(g);
    opts.series.forEach(function (s, si) {
      var colour = COLOURS[si % COLOURS.length], d = "", pen = false;
      var line = svg("g", { class: "series", "data-series": s.name });
      s.values.forEach(function (v, i) {
        if (v === null || v === undefined) { pen = false; return; }
        d += (pen ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1);
        pen = true;
      });
      if (d) line.appendChild(svg("path", { d: d, fill: "none", stroke: colour, "stroke-width": 2.2, "stroke-linejoin": "round" }));
      s.values.forEach(function (v, i) {
        if (v === null || v === undefined) return;
        var dot = svg("circle", { cx: x(i), cy: y(v), r: n > 45 ? 1.6 : 3, fill: colour, class: "dot" });
        dot.appendChild(svg("title", {}, label(s.name) + ", " + shortDate(opts.labels[i]) + ": " + opts.fmt(v)));
        line.appendChild(dot);
      });
      f.svg.appendChild(line);
    });
    legend(f.fig, opts.series.map(function (s) { return s.name; }));
    dataTable(f.fig, ["Day"].concat(opts.series.map(function (s) { return label(s.name); })),
      opts.labels.map(function (d, i) { return [d].concat(opts.series.map(function (s) { return opts.fmt(s.values[i]); })); }));
    return f;
  }

  /* Grouped bars. opts: title, desc, groups (x labels), series [{name, values}], fmt. */
  function barChart(host, opts) {
    var W = widthOf(host), H = opts.height || 240, L = 52, R = 14, T = 18, B = 34;
    var f = figure(host, opts.title, opts.desc);
    f.svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    var all = [];
    opts.series.forEach(function (s) { all = all.concat(s.values); });
    var ax = axis(0, Math.max.apply(null, all.concat([0])));
    var hi = ax.hi;
    var y = function (v) { return T + (H - T - B) * (1 - v / hi); };
    var g = svg("g", { class: "axis" });
    ticks(ax).forEach(function (v) {
      g.appendChild(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
      g.appendChild(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, opts.fmt(v)));
    });
    f.svg.appendChild(g);
    var slot = (W - L - R) / Math.max(1, opts.groups.length);
    var bw = Math.min(26, (slot * 0.8) / opts.series.length);
    opts.groups.forEach(function (name, gi) {
      var x0 = L + gi * slot + (slot - bw * opts.series.length) / 2;
      g.appendChild(svg("text", { x: L + gi * slot + slot / 2, y: H - 12, "text-anchor": "middle", class: "group" }, label(name)));
      opts.series.forEach(function (s, si) {
        var v = s.values[gi] || 0, top = y(v);
        var bar = svg("rect", { x: x0 + si * bw, y: top, width: Math.max(1, bw - 2), height: Math.max(0, y(0) - top),
          fill: COLOURS[si % COLOURS.length], class: "bar", "data-series": s.name, "data-group": name, rx: 2 });
        bar.appendChild(svg("title", {}, label(name) + ", " + label(s.name) + ": " + opts.fmt(v)));
        f.svg.appendChild(bar);
        if (v > 0) f.svg.appendChild(svg("text", { x: x0 + si * bw + (bw - 2) / 2, y: top - 3, "text-anchor": "middle", class: "bar-value" }, opts.fmt(v)));
      });
    });
    legend(f.fig, opts.series.map(function (s) { return s.name; }));
    dataTable(f.fig, ["Rule"].concat(opts.series.map(function (s) { return label(s.name); })),
      opts.groups.map(function (name, gi) { return [label(name)].concat(opts.series.map(function (s) { return opts.fmt(s.values[gi]); })); }));
    return f;
  }

  // ---- the page ----
  function sum(points, key) { return points.reduce(function (a, p) { return a + (p[key] || 0); }, 0); }

  function kpi(host, name, value, note) {
    var box = el("div", "kpi");
    box.appendChild(el("div", "kpi-name", name));
    box.appendChild(el("div", "kpi-value", value));
    if (note) box.appendChild(el("div", "kpi-note muted", note));
    host.appendChild(box);
  }

  function renderKpis(d) {
    var host = $("kpis"); clear(host);
    var pts = [];
    d.segments.series.forEach(function (s) { pts = pts.concat(s.points); });
    var imp = sum(pts, "impressions"), clicks = sum(pts, "clicks"), shoppers = sum(pts, "shoppers"), conv = sum(pts, "converted");
    var msgs = sum(d.sentiment, "messages");
    var mean = msgs ? d.sentiment.reduce(function (a, p) { return a + (p.mean || 0) * p.messages; }, 0) / msgs : null;
    kpi(host, "Suggestions shown", num(imp), "product cards");
    kpi(host, "Click-through", pct(imp ? clicks / imp : null), num(clicks) + " clicks");
    kpi(host, "Add to cart", num(sum(pts, "carts")));
    kpi(host, "Purchases", num(sum(pts, "purchases")), "conversion " + pct(shoppers ? conv / shoppers : null));
    kpi(host, "Mean sentiment", signed(mean), num(msgs) + " messages");
  }

  function renderSegments(d) {
    var host = $("chart-segments"); clear(host);
    var metric = $("segment-metric").value, m = METRICS[metric];
    var seg = d.segments;
    $("seg-sub").textContent = m.name + " per " + d.bucket + ", by " + label(seg.kind) + " segment" +
      (seg.omitted ? " (the " + seg.series.length + " segments with the most impressions; " + seg.omitted + " more not drawn)" : "") + "." +
      (m.base ? " A " + d.bucket + " with fewer than " + MIN_BASE + " " + m.base + " in a segment is left out." : "");
    if (!seg.series.length) { empty(host, "No suggestions were shown in this period."); return; }
    lineChart(host, {
      title: m.name + " by " + label(seg.kind) + " segment",
      desc: m.name + " per " + d.bucket + " from " + d.buckets[0] + " for " + seg.series.length + " segments.",
      labels: d.buckets, fmt: m.fmt, height: 260,
      series: seg.series.map(function (s) { return { name: s.segment, values: s.points.map(function (p) { return rateOf(p, metric, m.base); }) }; })
    });
  }

  function renderArms(d) {
    var a = d.experiments, h1 = $("chart-arms-ctr"), h2 = $("chart-arms-conv");
    clear(h1); clear(h2);
    if (!a.selected) {
      $("arm-sub").textContent = "";
      empty(h1, "No experiment showed suggestions in this period.");
      return;
    }
    $("arm-sub").textContent = "“" + a.selected + "”: clicks and purchases within " + a.window_hours +
      " h after a suggestion count for the arm that showed it; a " + d.bucket + " with fewer than " + MIN_BASE +
      " impressions (or shoppers) in an arm is left out.";
    var series = function (key, base) {
      return a.series.map(function (s) { return { name: s.arm, values: s.points.map(function (p) { return rateOf(p, key, base); }) }; });
    };
    lineChart(h1, { title: "Click-through by arm", desc: "Clicks per suggestion shown, per " + d.bucket + ", for each arm of " + a.selected + ".",
      labels: d.buckets, fmt: pct, series: series("ctr", "impressions") });
    lineChart(h2, { title: "Conversion by arm", desc: "Share of shoppers shown the arm's suggestions who bought within the window, per " + d.bucket + ".",
      labels: d.buckets, fmt: pct, series: series("conversion", "shoppers") });
  }

  function renderSentiment(d) {
    var h1 = $("chart-sentiment"), h2 = $("chart-negative");
    clear(h1); clear(h2);
    if (!d.sentiment.some(function (p) { return p.messages; })) { empty(h1, "No scored messages in this period."); return; }
    lineChart(h1, { title: "Mean sentiment", desc: "Mean signed sentiment of shoppers' messages per " + d.bucket + ", from −1 (negative) to +1 (positive).",
      labels: d.buckets, fmt: signed, min: -1, max: 1, zero: true,
      series: [{ name: "mean sentiment", values: d.sentiment.map(function (p) { return p.mean; }) }] });
    lineChart(h2, { title: "Share of negative messages", desc: "Share of messages per " + d.bucket + " the sentiment model labelled negative.",
      labels: d.buckets, fmt: pct, max: 1,
      series: [{ name: "negative share", values: d.sentiment.map(function (p) { return p.negative_share; }) }] });
  }

  function renderTriggers(d) {
    var host = $("chart-triggers"); clear(host);
    var t = d.triggers;
    $("trig-sub").textContent = "Per rule: how often it fired, the products it showed, and how many of those (shopper, product) pairs were then clicked, added to cart or bought within " +
      d.experiments.window_hours + " h.";
    if (!t.length) { empty(host, "No trigger fired in this period."); return; }
    var keys = [["fired", "fired"], ["shown", "products shown"], ["clicked", "clicked"], ["carted", "added to cart"], ["purchased", "bought"]];
    barChart(host, { title: "Trigger performance by rule", desc: "Firings, products shown and the actions that followed, for " + t.length + " rules.",
      groups: t.map(function (r) { return r.rule; }), fmt: num,
      series: keys.map(function (k) { return { name: k[1], values: t.map(function (r) { return r[k[0]]; }) }; }) });
  }

  function criteriaText(c) {
    return Object.keys(c || {}).filter(function (k) { return c[k] !== null && c[k] !== "" && !(Array.isArray(c[k]) && !c[k].length); })
      .map(function (k) { return label(k) + ": " + (Array.isArray(c[k]) ? c[k].join(", ") : c[k]); }).join(" · ");
  }

  function renderQueries(d) {
    var tb = $("queries").querySelector("tbody"); clear(tb);
    var rows = d.queries.rows;
    $("q-sub").textContent = "Searches that found nothing, or whose best match scored under " + d.queries.threshold +
      " relevance; spellings grouped. Most frequent first.";
    $("no-queries").hidden = rows.length > 0;
    $("queries").hidden = !rows.length;
    var top = rows.length ? rows[0].total : 1;
    rows.forEach(function (q) {
      var tr = el("tr");
      var th = el("th", "query"); th.scope = "row";
      var bar = el("span", "qbar"); bar.style.width = Math.max(4, 100 * q.total / top) + "%";
      th.appendChild(bar); th.appendChild(el("span", "qtext", q.query));
      tr.appendChild(th);
      tr.appendChild(el("td", "num", num(q.no_results)));
      tr.appendChild(el("td", "num", num(q.weak)));
      tr.appendChild(el("td", null, new Date(q.last_seen).toLocaleString("en", { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false })));
      tr.appendChild(el("td", "muted", criteriaText(q.criteria)));
      tb.appendChild(tr);
    });
  }

  function fillSelect(sel, values, current, none) {
    clear(sel);
    if (!values.length) { var o = el("option", null, none); o.value = ""; sel.appendChild(o); sel.disabled = true; return; }
    sel.disabled = false;
    values.forEach(function (v) { var o = el("option", null, label(v)); o.value = v; o.selected = v === current; sel.appendChild(o); });
  }

  function render(d) {
    state.data = d;
    fillSelect($("segment-kind"), d.segments.kinds, d.segments.kind, "no segments yet");
    fillSelect($("experiment"), d.experiments.names, d.experiments.selected, "none in this period");
    renderKpis(d); renderSegments(d); renderArms(d); renderSentiment(d); renderTriggers(d); renderQueries(d);
    $("status").textContent = shortDate(d.buckets[0]) + " – " + shortDate(d.buckets[d.buckets.length - 1]) + " (UTC), per " + d.bucket + ".";
    document.body.setAttribute("data-loaded", "true");
  }

  function load(changed) {
    var days = Number($("range").value);
    var until = new Date(), since = new Date(until.getTime() - days * 86400000);
    var q = new URLSearchParams({ since: since.toISOString(), until: until.toISOString() });
    if (changed !== "range" && $("segment-kind").value) q.set("segment_kind", $("segment-kind").value);
    if (changed !== "range" && $("experiment").value) q.set("experiment", $("experiment").value);
    $("status").textContent = "Loading…";
    document.body.removeAttribute("data-loaded");
    fetch("/api/admin/dashboard?" + q.toString(), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { location.href = "/agent"; throw new Error("Signed out."); }
        return r.json().then(function (b) {
          if (!r.ok) throw new Error(typeof b.detail === "string" ? b.detail : "HTTP " + r.status);
          return b;
        });
      })
      .then(render)
      .catch(function (err) { $("status").textContent = "Could not load the dashboard: " + err.message; });
  }

  $("range").addEventListener("change", function () { load("range"); });
  $("segment-kind").addEventListener("change", function () { load("segment-kind"); });
  $("experiment").addEventListener("change", function () { load("experiment"); });
  $("segment-metric").addEventListener("change", function () { if (state.data) renderSegments(state.data); });
  $("filters").addEventListener("submit", function (e) { e.preventDefault(); });
  var resizing = null, lastWidth = window.innerWidth;
  window.addEventListener("resize", function () {  // charts are drawn at their box's width
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      if (state.data && window.innerWidth !== lastWidth) { lastWidth = window.innerWidth; render(state.data); }
    }, 200);
  });
  load();
})();
