// weave operator dashboard: polls api/series and draws every chart as SVG.
// No libraries: the page must work offline from the binary alone.
'use strict';

(function () {
  const NS = 'http://www.w3.org/2000/svg';
  const COLORS = ['#2f6fdb', '#e4572e', '#17a768', '#d69e00', '#8e44ad', '#0097a7', '#d6336c', '#5c6b80'];
  const W = 400, H = 150, PL = 44, PR = 8, PT = 8, PB = 18;

  // The token, if it came in the URL, is now in an HttpOnly cookie: keep
  // it out of the address bar, history and bookmarks.
  if (location.search.indexOf('token=') >= 0) {
    history.replaceState(null, '', location.pathname);
  }

  const cards = new Map(); // chart id -> {card, svg, legend}
  const sectionsEl = document.getElementById('sections');
  const tablesEl = document.getElementById('tables');
  const statusEl = document.getElementById('status');
  const nodesEl = document.getElementById('nodes-panel');
  let updates = 0;
  let interval = 2000;

  function h(tag, attrs, parent, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  function s(tag, attrs, parent, text) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  function num(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) return '–';
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + 'G';
    if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
    if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
    if (a >= 100 || v === Math.round(v)) return Math.round(v).toString();
    return v.toFixed(digits === undefined ? (a >= 10 ? 1 : 2) : digits);
  }

  function bytes(v) {
    if (v === null || !isFinite(v)) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? Math.round(v) : v.toFixed(1)) + ' ' + units[i];
  }

  function fmt(v, unit) {
    if (unit === 'bytes') return bytes(v);
    if (unit === 'B/s') return bytes(v) + '/s';
    if (unit === '%') return v === null || !isFinite(v) ? '–' : v.toFixed(1) + ' %';
    if (unit === 'ms') return num(v) + ' ms';
    return num(v);
  }

  // niceMax rounds up to 1, 2, 2.5 or 5 times a power of ten.
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function section(title) {
    const id = 'sec-' + title.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
    let sec = document.getElementById(id);
    if (!sec) {
      sec = h('section', { id: id, class: 'section' }, sectionsEl);
      h('h2', {}, sec, title);
      h('div', { class: 'charts' }, sec);
    }
    return sec;
  }

  function card(chart, sec) {
    let c = cards.get(chart.id);
    if (!c) {
      const el = h('div', { class: 'card', 'data-chart': chart.id }, sec.querySelector('.charts'));
      const title = h('h3', {}, el, chart.title);
      if (chart.unit) h('span', { class: 'unit' }, title, chart.unit);
      const svg = s('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': chart.title, 'data-points': '0' }, el);
      const legend = h('div', { class: 'legend' }, el);
      c = { el: el, svg: svg, legend: legend };
      cards.set(chart.id, c);
    }
    return c;
  }

  // axis formats a tick value compactly.
  function axis(v, unit) {
    if (unit === 'bytes' || unit === 'B/s') {
      const units = ['', 'K', 'M', 'G', 'T'];
      let i = 0;
      while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
      return (v >= 10 || v === Math.round(v) ? Math.round(v) : v.toFixed(1)) + units[i];
    }
    return num(v) + (unit === '%' ? '%' : '');
  }

  function ago(ms) {
    const sec = Math.round(ms / 1000);
    if (sec < 120) return '−' + sec + ' s';
    return '−' + Math.round(sec / 60) + ' min';
  }

  function draw(c, chart, t, window) {
    const svg = c.svg;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const end = t.length ? t[t.length - 1] : Date.now();
    // Until the window fills up, the history spans the whole width.
    const start = t.length > 1 ? Math.max(end - window * 1000, t[0]) : end - window * 1000;
    let top = 0;
    for (const l of chart.lines) for (const v of l.values) if (v !== null && v > top) top = v;
    const ymax = chart.unit === '%' ? 100 : niceMax(top);
    const x = ms => PL + (ms - start) / Math.max(1, end - start) * (W - PL - PR);
    const y = v => PT + (1 - v / ymax) * (H - PT - PB);

    for (const f of [0, 0.5, 1]) {
      const gy = y(f * ymax);
      s('line', { x1: PL, x2: W - PR, y1: gy, y2: gy, stroke: '#e6e8ec' }, svg);
      s('text', { x: PL - 4, y: gy + 3, 'text-anchor': 'end' }, svg, axis(f * ymax, chart.unit));
    }
    s('text', { x: PL, y: H - 4 }, svg, ago(end - start));
    s('text', { x: (PL + W - PR) / 2, y: H - 4, 'text-anchor': 'middle' }, svg, ago((end - start) / 2));
    s('text', { x: W - PR, y: H - 4, 'text-anchor': 'end' }, svg, 'now');

    let most = 0;
    c.legend.textContent = '';
    chart.lines.forEach((l, i) => {
      const color = COLORS[i % COLORS.length];
      let d = '', pen = false, n = 0, last = null, lx = 0, ly = 0;
      for (let k = 0; k < l.values.length && k < t.length; k++) {
        const v = l.values[k];
        if (v === null) { pen = false; continue; }
        lx = x(t[k]); ly = y(Math.min(v, ymax));
        d += (pen ? 'L' : 'M') + lx.toFixed(1) + ' ' + ly.toFixed(1);
        pen = true; n++; last = v;
      }
      if (n > 1) s('path', { d: d, fill: 'none', stroke: color, 'stroke-width': 1.6, 'stroke-linejoin': 'round' }, svg);
      if (n === 1) s('circle', { cx: lx, cy: ly, r: 2.5, fill: color }, svg);
      most = Math.max(most, n);
      const item = h('span', {}, c.legend);
      // Through the CSSOM: the page's CSP forbids style attributes.
      h('i', {}, item).style.background = color;
      item.appendChild(document.createTextNode(l.name + ' '));
      h('b', {}, item, fmt(last, chart.unit));
    });
    if (most === 0) s('text', { x: (PL + W) / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' }, svg, 'no data yet');
    // What the browser test reads: how many points the busiest line has.
    svg.setAttribute('data-points', String(most));
    c.el.setAttribute('data-points', String(most));
  }

  function badge(parent, text, cls) {
    h('span', { class: 'badge ' + cls }, parent, text);
  }

  function rows(id, items, cols, render) {
    const body = document.querySelector('#' + id + ' tbody');
    body.textContent = '';
    if (!items.length) {
      h('td', { colspan: cols, class: 'none' }, h('tr', {}, body), 'none');
      return;
    }
    for (const it of items) render(h('tr', {}, body), it);
  }

  function tables(d) {
    rows('endpoints', d.endpoints, 6, (tr, e) => {
      h('td', { title: e.endpoint }, tr, e.endpoint);
      h('td', {}, tr, num(e.rate));
      h('td', {}, tr, num(e.rate_4xx));
      h('td', {}, tr, num(e.rate_5xx));
      h('td', {}, tr, num(e.p50_ms));
      h('td', {}, tr, num(e.p95_ms));
    });
    rows('databases', d.databases, 6, (tr, db) => {
      h('td', {}, tr, db.db);
      h('td', {}, tr, db.kind || 'pool only');
      const health = h('td', {}, tr);
      if (db.up === null) badge(health, 'n/a', 'unknown');
      else badge(health, db.up ? 'up' : 'failing', db.up ? 'ok' : 'bad');
      h('td', {}, tr, num(db.in_use) + ' / ' + num(db.open) + ' / ' + (db.max ? num(db.max) : '∞'));
      h('td', {}, tr, num(db.waits_per_s));
      h('td', {}, tr, num(db.collector_errors));
    });
    rows('nodes', d.nodes, 5, (tr, n) => {
      h('td', { title: n.node }, tr, n.node.replace(/^https?:\/\//, ''));
      badge(h('td', {}, tr), n.state || 'unknown', n.state || 'unknown');
      h('td', {}, tr, num(n.users));
      h('td', {}, tr, num(n.load) + ' / ' + num(n.capacity));
      h('td', {}, tr, num(n.available));
    });
  }

  function render(d) {
    interval = Math.max(500, d.interval * 1000);
    let charts = 0, withData = 0;
    const seen = new Set();
    tablesEl.remove();
    for (const sec of d.sections) {
      const el = section(sec.title);
      sectionsEl.appendChild(el); // keep the server's order
      for (const chart of sec.charts) {
        const c = card(chart, el);
        draw(c, chart, d.t, d.window);
        seen.add(chart.id);
        charts++;
        if (c.svg.getAttribute('data-points') !== '0') withData++;
      }
    }
    // Charts of things that went away (a removed database) go too.
    for (const [id, c] of cards) {
      if (!seen.has(id)) { c.el.remove(); cards.delete(id); }
    }
    for (const el of Array.from(sectionsEl.children)) {
      if (!el.querySelector('.card')) el.remove();
    }
    // The tables sit right under the first section (traffic); the node
    // table next to the users chart, or with the others without it.
    const first = sectionsEl.firstChild;
    if (first) first.after(tablesEl); else sectionsEl.appendChild(tablesEl);
    const nodesSec = document.getElementById('sec-nodes');
    (nodesSec ? nodesSec.querySelector('.charts') : tablesEl).appendChild(nodesEl);
    nodesEl.hidden = !d.nodes.length;
    tables(d);
    updates++;
    document.body.setAttribute('data-updates', String(updates));
    document.body.setAttribute('data-charts', String(charts));
    document.body.setAttribute('data-charts-with-data', String(withData));
    statusEl.className = 'status';
    statusEl.textContent = 'live · ' + d.t.length + ' samples · ' + new Date(d.now).toLocaleTimeString();
  }

  async function tick() {
    try {
      const r = await fetch('api/series', { credentials: 'same-origin', cache: 'no-store' });
      if (r.status === 401) {
        statusEl.className = 'status error';
        statusEl.textContent = 'not authorised: open this page with ?token=<admin token>';
        return; // polling again would not help
      }
      if (!r.ok) throw new Error('HTTP ' + r.status);
      render(await r.json());
    } catch (e) {
      statusEl.className = 'status error';
      statusEl.textContent = 'update failed: ' + e.message;
    }
    setTimeout(tick, interval);
  }

  tick();
})();
