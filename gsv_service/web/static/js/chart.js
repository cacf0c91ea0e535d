// A line chart of loss series drawn in SVG: hover (or arrow keys) shows the values at a point;
// zoom with the wheel, a dragged range, the +/− buttons or keys; double-click or 0 resets.

import { clear, fmtNumber, h, newId } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const M = { l: 52, r: 12, t: 10, b: 26 };
const HEIGHT = 230;
const COLORS = 8;

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

function ticks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export class LossChart {
  constructor(title) {
    this.title = title;
    this.points = [];
    this.xs = [];
    this.keys = [];
    this.hiddenKeys = new Set();
    this.view = null;   // [x0, x1] when zoomed, else null (everything)
    this.hover = null;  // index of the highlighted point
    this.drag = null;
    this.logY = false;
    const id = newId("chart");
    this.svg = svg("svg", { class: "chart-svg", role: "img", tabindex: "0", "aria-labelledby": `${id}-desc`,
      height: HEIGHT });
    this.desc = h("p", { id: `${id}-desc`, class: "sr-only" });
    this.tip = h("div", { class: "chart-tip", hidden: true, role: "status" });
    this.legend = h("div", { class: "legend row wrap", role: "group", "aria-label": `${title}: series` });
    this.logBox = h("input", { type: "checkbox", onchange: () => { this.logY = this.logBox.checked; this.draw(); } });
    const tools = h("div", { class: "row wrap chart-tools" },
      h("button", { type: "button", class: "small secondary", "aria-label": "Zoom in", onclick: () => this.zoom(0.5) }, "+"),
      h("button", { type: "button", class: "small secondary", "aria-label": "Zoom out", onclick: () => this.zoom(2) }, "−"),
      h("button", { type: "button", class: "small secondary", onclick: () => this.reset() }, "Reset zoom"),
      h("label", { class: "small" }, this.logBox, " log scale"));
    this.box = h("div", { class: "chart-box" }, this.svg, this.tip);
    this.el = h("div", { class: "chart" }, this.desc, this.box, this.legend, tools);
    this.bind();
    this.resizer = new ResizeObserver(() => this.draw());
    this.resizer.observe(this.box);
  }

  destroy() { this.resizer.disconnect(); }

  setPoints(points) {
    this.points = points || [];
    const steps = this.points.map((p) => p.step);
    const monotone = steps.every((s, i) => typeof s === "number" && (i === 0 || s > steps[i - 1]));
    this.xLabel = monotone ? "step" : "point";
    this.xs = monotone ? steps : this.points.map((_, i) => i + 1);
    const keys = [];
    for (const p of this.points) for (const k of Object.keys(p.losses || {})) if (!keys.includes(k)) keys.push(k);
    if (keys.join() !== this.keys.join()) { this.keys = keys; this.renderLegend(); }
    if (this.hover !== null && this.hover >= this.points.length) this.hover = null;
    this.el.dataset.points = String(this.points.length);
    this.desc.textContent = `${this.title}: ${this.points.length} points of ${keys.join(", ") || "no losses yet"}. ` +
      "Arrow keys move through the points, + and − zoom, 0 resets.";
    this.draw();
  }

  renderLegend() {
    clear(this.legend, this.keys.map((k, i) => h("label", { class: `small series c${i % COLORS}` },
      h("input", { type: "checkbox", checked: !this.hiddenKeys.has(k), onchange: (e) => {
        if (e.target.checked) this.hiddenKeys.delete(k); else this.hiddenKeys.add(k);
        this.draw();
      } }), ` ${k}`)));
  }

  domain() {
    if (!this.xs.length) return [0, 1];
    const lo = this.xs[0]; const hi = this.xs[this.xs.length - 1];
    return hi > lo ? [lo, hi] : [Math.max(0, lo - 1), hi + 1];
  }

  visible() {
    const [x0, x1] = this.view || this.domain();
    let a = 0; let b = this.xs.length - 1;
    while (a < this.xs.length && this.xs[a] < x0) a++;
    while (b >= 0 && this.xs[b] > x1) b--;
    return [Math.max(0, a - 1), Math.min(this.xs.length - 1, b + 1)];
  }

  draw() {
    const width = Math.max(240, this.box.clientWidth || 600);
    this.width = width;
    this.svg.setAttribute("width", width);
    this.svg.setAttribute("viewBox", `0 0 ${width} ${HEIGHT}`);
    const [x0, x1] = this.view || this.domain();
    this.el.dataset.x0 = String(x0);
    this.el.dataset.x1 = String(x1);
    this.el.dataset.zoomed = this.view ? "true" : "false";
    const [a, b] = this.visible();
    const keys = this.keys.filter((k) => !this.hiddenKeys.has(k));
    const ty = (v) => (this.logY ? Math.log10(Math.max(v, 1e-12)) : v);
    let lo = Infinity; let hi = -Infinity;
    for (let i = a; i <= b && this.points.length; i++) {
      for (const k of keys) {
        const v = this.points[i].losses[k];
        if (typeof v === "number" && Number.isFinite(v) && (!this.logY || v > 0)) { lo = Math.min(lo, ty(v)); hi = Math.max(hi, ty(v)); }
      }
    }
    if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
    if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
    const pad = (hi - lo) * 0.06; lo -= pad; hi += pad;
    const pw = width - M.l - M.r; const ph = HEIGHT - M.t - M.b;
    this.sx = (x) => M.l + ((x - x0) / (x1 - x0)) * pw;
    this.sy = (v) => M.t + (1 - (ty(v) - lo) / (hi - lo)) * ph;
    this.invx = (px) => x0 + ((px - M.l) / pw) * (x1 - x0);
    const grid = svg("g", { class: "grid" });
    for (const v of ticks(lo, hi)) {
      const y = M.t + (1 - (v - lo) / (hi - lo)) * ph;
      grid.append(svg("line", { x1: M.l, x2: width - M.r, y1: y, y2: y }),
        svg("text", { x: M.l - 6, y: y + 4, "text-anchor": "end" }, document.createTextNode(fmtNumber(this.logY ? 10 ** v : v, 2))));
    }
    for (const v of ticks(x0, x1, Math.max(2, Math.floor(pw / 90)))) {
      const x = this.sx(v);
      grid.append(svg("line", { x1: x, x2: x, y1: M.t, y2: M.t + ph, class: "v" }),
        svg("text", { x, y: HEIGHT - 8, "text-anchor": "middle" }, document.createTextNode(fmtNumber(v, 2))));
    }
    const clipId = `${this.desc.id}-clip`;
    const lines = svg("g", { "clip-path": `url(#${clipId})` });
    keys.forEach((k) => {
      const ci = this.keys.indexOf(k) % COLORS;
      let d = "";
      for (let i = a; i <= b && this.points.length; i++) {
        const v = this.points[i].losses[k];
        if (typeof v !== "number" || (this.logY && v <= 0)) continue;
        d += `${d ? "L" : "M"}${this.sx(this.xs[i]).toFixed(1)} ${this.sy(v).toFixed(1)}`;
      }
      if (d) lines.append(svg("path", { d, class: `line c${ci}`, "data-key": k }));
      if (b - a < 60) {
        for (let i = a; i <= b && this.points.length; i++) {
          const v = this.points[i].losses[k];
          if (typeof v === "number" && (!this.logY || v > 0)) lines.append(svg("circle", { cx: this.sx(this.xs[i]), cy: this.sy(v), r: 2.5, class: `dot c${ci}` }));
        }
      }
    });
    const overlay = svg("g", { class: "overlay" });
    if (this.hover !== null && this.points[this.hover]) {
      const x = this.sx(this.xs[this.hover]);
      overlay.append(svg("line", { x1: x, x2: x, y1: M.t, y2: M.t + ph, class: "guide" }));
    }
    if (this.drag && Math.abs(this.drag.to - this.drag.from) > 2) {
      const x = Math.min(this.drag.from, this.drag.to);
      overlay.append(svg("rect", { x, y: M.t, width: Math.abs(this.drag.to - this.drag.from), height: ph, class: "sel" }));
    }
    const empty = !this.points.length
      ? svg("text", { x: width / 2, y: HEIGHT / 2, "text-anchor": "middle", class: "empty" }, document.createTextNode("no loss values yet"))
      : null;
    this.svg.replaceChildren(svg("defs", {}, svg("clipPath", { id: clipId }, svg("rect", { x: M.l, y: M.t, width: pw, height: ph }))),
      grid, lines, overlay, empty || svg("g"));
    this.renderTip();
  }

  renderTip() {
    const p = this.hover !== null ? this.points[this.hover] : null;
    if (!p) { this.tip.hidden = true; return; }
    const keys = this.keys.filter((k) => !this.hiddenKeys.has(k));
    clear(this.tip, h("div", { class: "small" }, `epoch ${p.epoch ?? "?"} · step ${p.step ?? "?"}`),
      keys.map((k) => h("div", { class: `small series c${this.keys.indexOf(k) % COLORS}` }, `${k}: ${fmtNumber(p.losses[k], 4)}`)));
    this.tip.hidden = false;
    const x = this.sx(this.xs[this.hover]);
    const left = x > this.width / 2;
    this.tip.style.left = left ? "" : `${x + 12}px`;
    this.tip.style.right = left ? `${this.width - x + 12}px` : "";
  }

  nearest(px) {
    if (!this.xs.length) return null;
    const x = this.invx(px);
    let lo = 0; let hi = this.xs.length - 1;
    while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (this.xs[mid] < x) lo = mid; else hi = mid; }
    return Math.abs(this.xs[lo] - x) <= Math.abs(this.xs[hi] - x) ? lo : hi;
  }

  zoom(factor, centre) {
    const [d0, d1] = this.domain();
    const [x0, x1] = this.view || [d0, d1];
    const c = centre ?? (this.hover !== null ? this.xs[this.hover] : (x0 + x1) / 2);
    let n0 = c - (c - x0) * factor; let n1 = c + (x1 - c) * factor;
    if (n1 - n0 >= d1 - d0) { this.view = null; this.draw(); return; }
    if (n1 - n0 < 1e-6) return;
    if (n0 < d0) { n1 += d0 - n0; n0 = d0; }
    if (n1 > d1) { n0 -= n1 - d1; n1 = d1; }
    this.view = [n0, n1];
    this.draw();
  }

  reset() { this.view = null; this.draw(); }

  bind() {
    const pos = (e) => e.clientX - this.svg.getBoundingClientRect().left;
    this.svg.addEventListener("pointermove", (e) => {
      if (this.drag) { this.drag.to = pos(e); this.draw(); return; }
      const i = this.nearest(pos(e));
      if (i !== this.hover) { this.hover = i; this.draw(); }
    });
    this.svg.addEventListener("pointerleave", () => { if (!this.drag) { this.hover = null; this.draw(); } });
    this.svg.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      this.drag = { from: pos(e), to: pos(e) };
      this.svg.setPointerCapture(e.pointerId);
    });
    this.svg.addEventListener("pointerup", () => {
      const d = this.drag; this.drag = null;
      if (d && Math.abs(d.to - d.from) > 8) {
        const a = this.invx(Math.min(d.from, d.to)); const b = this.invx(Math.max(d.from, d.to));
        const [d0, d1] = this.domain();
        this.view = [Math.max(d0, a), Math.min(d1, b)];
      }
      this.draw();
    });
    this.svg.addEventListener("dblclick", () => this.reset());
    this.svg.addEventListener("wheel", (e) => {
      if (!this.xs.length) return;
      e.preventDefault();
      this.zoom(e.deltaY < 0 ? 0.8 : 1.25, this.invx(pos(e)));
    }, { passive: false });
    this.svg.addEventListener("keydown", (e) => {
      const n = this.xs.length;
      if (!n) return;
      const keys = { ArrowRight: 1, ArrowLeft: -1 };
      if (e.key in keys) {
        const [a, b] = this.visible();
        this.hover = Math.min(b, Math.max(a, (this.hover ?? (keys[e.key] > 0 ? a - 1 : b + 1)) + keys[e.key]));
        this.draw();
      } else if (e.key === "Home" || e.key === "End") {
        const [a, b] = this.visible();
        this.hover = e.key === "Home" ? a : b; this.draw();
      } else if (e.key === "+" || e.key === "=") this.zoom(0.5);
      else if (e.key === "-" || e.key === "_") this.zoom(2);
      else if (e.key === "0" || e.key === "Escape") { this.hover = null; this.reset(); }
      else return;
      e.preventDefault();
    });
    this.svg.addEventListener("blur", () => { this.hover = null; this.draw(); });
  }
}
