// Glue for the ganlab report: the run table (sort, filter, pages), the sample gallery, the plotly figures.
// Everything is built with textContent from the embedded JSON: run names are never parsed as HTML.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const cols = data.columns, rows = data.rows, PAGE = 100, CARDS = 24;
  const state = { sort: -1, dir: 1, filters: cols.map(() => ""), page: 0, gpage: 0 };
  let gallery = {};  // run id -> its grids; parsed once the table is shown (it is most of the page's bytes)
  let view = rows;
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  };
  const fmt = (v, kind) => {
    if (v === null || v === undefined) return "";
    if (kind === "dur") {
      if (v < 60) return Math.round(v) + "s";
      const m = Math.floor(v / 60), s = Math.round(v % 60);
      return m < 60 ? m + "m" + String(s).padStart(2, "0") + "s" : Math.floor(m / 60) + "h" + String(m % 60).padStart(2, "0") + "m";
    }
    if (typeof v === "number" && !Number.isInteger(v)) return Number(v.toPrecision(4)).toString();
    return String(v);
  };
  // Filters: text matches anywhere; on numbers "<0.5", ">=3", "=2" or "1..4" as well.
  const matcher = (text, kind) => {
    const t = text.trim().toLowerCase();
    if (!t) return null;
    const num = kind !== "text";
    let m = num && t.match(/^(<=|>=|<|>|=)\s*(-?[\d.e+-]+)$/);
    if (m) {
      const x = parseFloat(m[2]), op = m[1];
      return (v) => { const y = parseFloat(v); if (isNaN(y)) return false;
        return op === "<" ? y < x : op === ">" ? y > x : op === "<=" ? y <= x : op === ">=" ? y >= x : y === x; };
    }
    m = num && t.match(/^(-?[\d.e+-]+)\s*\.\.\s*(-?[\d.e+-]+)$/);
    if (m) { const a = parseFloat(m[1]), b = parseFloat(m[2]); return (v) => parseFloat(v) >= a && parseFloat(v) <= b; }
    return (v) => v !== null && String(v).toLowerCase().includes(t);
  };
  function update() {
    const tests = state.filters.map((f, i) => [i, matcher(f, cols[i].kind)]).filter((p) => p[1]);
    view = tests.length ? rows.filter((r) => tests.every(([i, f]) => f(r[i]))) : rows.slice();
    if (state.sort >= 0) {
      const i = state.sort, num = cols[i].kind !== "text", d = state.dir;
      view.sort((a, b) => {
        let x = a[i], y = b[i];
        if (num) { x = parseFloat(x); y = parseFloat(y); }
        const xm = x === null || x === undefined || (num && isNaN(x)), ym = y === null || y === undefined || (num && isNaN(y));
        if (xm || ym) return xm - ym;  // missing values last either way
        return (x < y ? -1 : x > y ? 1 : 0) * d;
      });
    }
    state.page = Math.min(state.page, Math.max(0, Math.ceil(view.length / PAGE) - 1));
    drawTable();
    drawGallery();
  }
  function drawTable() {
    const body = document.getElementById("rows");
    body.replaceChildren();
    const start = state.page * PAGE;
    for (const r of view.slice(start, start + PAGE)) {
      const tr = el("tr");
      cols.forEach((c, i) => {
        const td = el("td", c.kind === "text" ? "" : "num", fmt(r[i], c.kind));
        if (c.key === "name") { td.classList.add("name"); td.title = r[i]; }
        if (c.key === "status") td.classList.add("status-" + r[i]);
        // One best per metric card group when the runs' cards differ (then c.best is a list).
        const best = Array.isArray(c.best) ? c.best.includes(r[i]) : c.best !== undefined && c.best !== null && r[i] === c.best;
        if (best) td.classList.add("best");
        tr.appendChild(td);
      });
      body.appendChild(tr);
    }
    const pages = Math.max(1, Math.ceil(view.length / PAGE));
    document.getElementById("count").textContent = view.length ?
      `rows ${start + 1}–${Math.min(start + PAGE, view.length)} of ${view.length} (${rows.length} runs)` : `no rows match (${rows.length} runs)`;
    document.getElementById("page").textContent = `page ${state.page + 1} of ${pages}`;
  }
  function drawGallery() {
    const box = document.getElementById("gallery");
    if (!box) return;
    const byId = gallery;
    const ids = view.map((r) => r[0]).filter((id) => byId[id]);
    const pages = Math.max(1, Math.ceil(ids.length / CARDS));
    state.gpage = Math.min(state.gpage, pages - 1);
    box.replaceChildren();
    for (const id of ids.slice(state.gpage * CARDS, (state.gpage + 1) * CARDS)) {
      const g = byId[id], card = el("div", "card"), imgs = el("div", "imgs");
      card.appendChild(el("div", "title", `#${g.id} ${g.name}`)).title = g.name;
      for (const [src, label] of [[g.latest, `step ${g.latest_step}`], [g.best, `best, step ${g.best_step}`]]) {
        if (!src) continue;
        const fig = el("figure"), img = el("img");
        img.src = src; img.alt = `samples of #${g.id} at ${label}`;
        fig.appendChild(img); fig.appendChild(el("figcaption", "", label)); imgs.appendChild(fig);
      }
      card.appendChild(imgs);
      card.appendChild(el("div", "cap", g.caption));
      box.appendChild(card);
    }
    document.getElementById("gcount").textContent =
      `${ids.length} run(s) with samples, in the table's order and filter; page ${state.gpage + 1} of ${pages}`;
  }
  function buildHead() {
    const names = document.getElementById("heads"), inputs = document.getElementById("filters");
    cols.forEach((c, i) => {
      const th = el("th", c.kind === "text" ? "" : "num", c.label);
      th.title = c.key + " (click to sort)";
      th.addEventListener("click", () => {
        state.dir = state.sort === i ? -state.dir : (c.lower === false ? -1 : 1);
        state.sort = i;
        names.querySelectorAll("th").forEach((h, j) => { h.textContent = cols[j].label + (j === i ? (state.dir > 0 ? " ▲" : " ▼") : ""); });
        update();
      });
      names.appendChild(th);
      const cell = el("th"), input = el("input");
      input.placeholder = c.kind === "text" ? "filter" : "<, >, a..b";
      input.addEventListener("input", () => { state.filters[i] = input.value; state.page = 0; state.gpage = 0; update(); });
      cell.appendChild(input);
      inputs.appendChild(cell);
    });
  }
  const pager = (id, delta, key, size) => document.getElementById(id).addEventListener("click", () => {
    const n = key === "page" ? view.length : view.filter((r) => gallery[r[0]]).length;
    state[key] = Math.max(0, Math.min(state[key] + delta, Math.ceil(n / size) - 1));
    key === "page" ? drawTable() : drawGallery();
  });
  buildHead();
  pager("prev", -1, "page", PAGE); pager("next", 1, "page", PAGE);
  if (document.getElementById("gallery")) { pager("gprev", -1, "gpage", CARDS); pager("gnext", 1, "gpage", CARDS); }
  update();
  document.body.setAttribute("data-table", "1");
  setTimeout(() => {
    const source = document.getElementById("gallery-data");
    if (source) { gallery = JSON.parse(source.textContent); drawGallery(); }
  }, 0);
  // Milliseconds since the page was opened, for benchmarks/bench_report.py.
  document.body.setAttribute("data-table-ms", Math.round(performance.now()));
  // plotly.js is 5 MB of script (0.6 s to start): it is started once a figure is within a screen of the
  // window, so the table shows and answers at once. Each figure is drawn when it comes near the window
  // (drawing all of 1,000 runs' curves takes seconds), one per task, so the page answers while they come;
  // "#draw-all" in the URL draws them all at once (for DOM dumps and screenshots of the whole page).
  // Curves of many runs carry each point's row number (customdata); hover shows the run's name.
  const withNames = (traces, names) => traces.map((t) => t.customdata && !t.text ?
    Object.assign({}, t, { text: t.customdata.map((i) => (i >= 0 ? names[i] : "")) }) : t);
  const stamp = (name) => {
    document.body.setAttribute(name, "1");
    document.body.setAttribute(name + "-ms", Math.round(performance.now()));
  };
  function drawPlots(figs, startPlotly) {
    const config = { displaylogo: false, responsive: true };
    const byId = new Map(figs.figures.map((f) => [f.id, f]));
    const queue = [];
    let left = byId.size, busy = false, firstScreen = true;
    const draw = () => {
      const f = queue.shift();
      if (!f) {
        busy = false;
        // The figures in view when the page opened are drawn: the page is open (bench_report.py times this).
        if (firstScreen) { firstScreen = false; stamp("data-shown"); }
        if (!left) stamp("data-ready");
        return;
      }
      const div = document.getElementById(f.id);
      if (div) {
        startPlotly();
        Plotly.newPlot(div, withNames(f.figure.data, figs.names), f.figure.layout, config);
        div.setAttribute("data-drawn", "1");
      }
      left -= 1;
      setTimeout(draw, 0);
    };
    const want = (id) => {
      const f = byId.get(id);
      if (!f) return;
      byId.delete(id);
      queue.push(f);
      if (!busy) { busy = true; setTimeout(draw, 0); }
    };
    const ids = figs.figures.map((f) => f.id);
    if (location.hash === "#draw-all" || !("IntersectionObserver" in window)) { ids.forEach(want); return; }
    // The margins start the next figure (and plotly.js) before it scrolls in.
    const seen = new IntersectionObserver((entries) => {
      for (const e of entries) if (e.isIntersecting) { seen.unobserve(e.target); want(e.target.id); }
    }, { rootMargin: "300px 0px" });
    const near = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) { near.disconnect(); setTimeout(startPlotly, 0); }
    }, { rootMargin: "100% 0px" });
    // The first screen is measured here, not left to the observers' first report, which comes with a
    // rendering frame: the figures in view at load are queued now and the page knows when it is open.
    const within = (div, margin) => {
      const r = div.getBoundingClientRect();
      return r.bottom > -margin && r.top < window.innerHeight + margin;
    };
    ids.forEach((id) => {
      const div = document.getElementById(id);
      if (!div) { want(id); return; }
      if (within(div, 300)) want(id); else seen.observe(div);
      near.observe(div);
    });
    if (!busy) { firstScreen = false; stamp("data-shown"); }  // no figure in the first screen
  }
  window.addEventListener("load", () => setTimeout(() => {
    const src = document.getElementById("plotly-src");
    const figs = JSON.parse(document.getElementById("figure-data").textContent);
    if (!src || !figs.figures.length) { stamp("data-shown"); stamp("data-ready"); return; }
    let started = false;
    drawPlots(figs, () => {
      if (started) return;
      started = true;
      // Global (indirect) eval: a blob: script would stall Chromium's virtual time, which screenshots rely on.
      (0, eval)(src.textContent);
      document.body.setAttribute("data-plotly-ms", Math.round(performance.now()));
    });
  }, 0));
})();
