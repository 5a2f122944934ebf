// Nanosurveyor pages: what the live page and the files page share (colour
// maps, image panels, plots, the binary message form of docs/viewer.md).
"use strict";

const $ = (id) => document.getElementById(id);

// ---------- colour maps ----------
function lerpMap(stops) {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = i / 255 * (stops.length - 1), k = Math.min(stops.length - 2, Math.floor(t)), f = t - k;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = stops[k][c] + (stops[k + 1][c] - stops[k][c]) * f;
  }
  return lut;
}
function hsv(h, s, v) {
  const i = Math.floor(h * 6), f = h * 6 - i, p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
  const m = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][((i % 6) + 6) % 6];
  return [m[0] * 255, m[1] * 255, m[2] * 255];
}
const MAPS = {
  grey: lerpMap([[0, 0, 0], [255, 255, 255]]),
  hot: lerpMap([[0, 0, 0], [120, 20, 10], [230, 100, 20], [255, 220, 80], [255, 255, 255]]),
  diverging: lerpMap([[40, 80, 200], [240, 240, 240], [200, 50, 40]]),
  phase: (() => { const l = new Uint8ClampedArray(768); for (let i = 0; i < 256; i++) l.set(hsv(i / 256, 0.85, 1), i * 3); return l; })(),
};

// ---------- image panels ----------
class Panel {
  constructor(el) {
    this.el = el;
    this.map = el.dataset.map;
    this.unit = el.dataset.unit || "";
    el.innerHTML = `<h2>${el.dataset.title}</h2><div class="view"><canvas class="image" width="1" height="1"></canvas></div>
      <div class="bar"><span class="lo">-</span><canvas class="scale" width="128" height="10"></canvas><span class="hi">-</span><span>${this.unit}</span></div>
      <div class="tools">zoom <select class="zoom"><option value="fit">fit</option><option>1</option><option>2</option><option>4</option><option>8</option></select>
        low <input class="low" type="range" min="0" max="50" value="1"> high <input class="high" type="range" min="50" max="100" value="99"></div>
      <div class="meta"></div>`;
    this.canvas = el.querySelector("canvas.image");
    this.data = null;
    for (const c of el.querySelectorAll("select, input")) c.addEventListener("input", () => this.render());
    el.querySelector(".view").addEventListener("wheel", (e) => {
      e.preventDefault();
      const z = el.querySelector(".zoom"), options = [...z.options].map((o) => o.value);
      const i = Math.max(0, Math.min(options.length - 1, options.indexOf(z.value) + (e.deltaY < 0 ? 1 : -1)));
      z.value = options[i];
      this.render();
    }, { passive: false });
    this.drawScale();
  }
  // values: Float32Array (real) or, for "complex", interleaved re/im; mask: Uint8Array (1 valid) or null
  set(width, height, values, meta, mask) {
    this.data = { width, height, values, mask };
    this.el.classList.remove("empty");
    this.el.querySelector(".meta").textContent = meta || "";
    this.render();
  }
  range(v) {
    const n = v.length, step = Math.max(1, Math.floor(n / 20000)), sample = [];
    for (let i = 0; i < n; i += step) if (Number.isFinite(v[i])) sample.push(v[i]);
    if (!sample.length) return [0, 1];
    sample.sort((a, b) => a - b);
    const q = (p) => sample[Math.min(sample.length - 1, Math.floor(p / 100 * sample.length))];
    let lo = q(+this.el.querySelector(".low").value), hi = q(+this.el.querySelector(".high").value);
    if (this.map === "diverging") { const m = Math.max(Math.abs(lo), Math.abs(hi)); lo = -m; hi = m; }
    if (this.map === "phase") { lo = -Math.PI; hi = Math.PI; }
    return hi > lo ? [lo, hi] : [lo, lo + 1];
  }
  render() {
    if (!this.data) return;
    const { width, height, values, mask } = this.data;
    const c = this.canvas, ctx = c.getContext("2d");
    c.width = width; c.height = height;
    const img = ctx.createImageData(width, height), px = img.data;
    if (this.map === "complex") {
      const amp = new Float32Array(width * height);
      for (let i = 0; i < amp.length; i++) amp[i] = Math.hypot(values[2 * i], values[2 * i + 1]);
      const [lo, hi] = this.range(amp);
      for (let i = 0; i < amp.length; i++) {
        const v = Math.max(0, Math.min(1, (amp[i] - lo) / (hi - lo)));
        const h = (Math.atan2(values[2 * i + 1], values[2 * i]) / (2 * Math.PI) + 1) % 1;
        const [r, g, b] = hsv(h, 0.9, v);
        px[4 * i] = r; px[4 * i + 1] = g; px[4 * i + 2] = b; px[4 * i + 3] = 255;
      }
      this.label(lo, hi);
    } else {
      const lut = MAPS[this.map] || MAPS.grey, [lo, hi] = this.range(values), s = 255 / (hi - lo);
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (!Number.isFinite(v)) { px[4 * i + 3] = 0; continue; }
        const k = Math.max(0, Math.min(255, Math.round((v - lo) * s))) * 3;
        px[4 * i] = lut[k]; px[4 * i + 1] = lut[k + 1]; px[4 * i + 2] = lut[k + 2]; px[4 * i + 3] = 255;
        if (mask && !mask[i]) { px[4 * i] = 200; px[4 * i + 1] = 30; px[4 * i + 2] = 30; }
      }
      this.label(lo, hi);
    }
    ctx.putImageData(img, 0, 0);
    // Drawn in the image's own pixels (positions, tiles), above it.
    if (this.overlay) this.overlay(ctx, width, height);
    const zoom = this.el.querySelector(".zoom").value;
    const f = zoom === "fit" ? Math.min(280 / width, 280 / height) : +zoom;
    c.style.width = `${width * f}px`; c.style.height = `${height * f}px`;
  }
  label(lo, hi) {
    const fmt = (x) => (Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-2 && x !== 0)) ? x.toExponential(2) : x.toFixed(2);
    this.el.querySelector(".lo").textContent = fmt(lo);
    this.el.querySelector(".hi").textContent = fmt(hi);
  }
  drawScale() {
    const c = this.el.querySelector("canvas.scale"), ctx = c.getContext("2d"), img = ctx.createImageData(128, 10);
    for (let x = 0; x < 128; x++) {
      const k = Math.floor(x * 2) * 3;
      const rgb = this.map === "complex" ? hsv(0, 0, x / 127) : [...(MAPS[this.map] || MAPS.grey).slice(k, k + 3)];
      for (let y = 0; y < 10; y++) img.data.set([rgb[0], rgb[1], rgb[2], 255], (y * 128 + x) * 4);
    }
    ctx.putImageData(img, 0, 0);
  }
}
function parts(buffer) {
  const n = new DataView(buffer).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, n)));
  const base = 4 + n, out = {};
  for (const p of header.parts) {
    const Type = p.dtype === "uint8" ? Uint8Array : Float32Array, size = p.dtype === "uint8" ? 1 : 4;
    out[p.name] = { shape: p.shape, values: new Type(buffer, base + p.offset, p.bytes / size) };
  }
  return [header, out];
}

// ---------- plots ----------
const fmtTick = (x) => (x === 0 ? "0" : (Math.abs(x) >= 1e4 || Math.abs(x) < 1e-2) ? x.toExponential(1) : +x.toPrecision(3) + "");
// An empty plot with its title and axis labels; the plotting area's edges.
function plotFrame(canvas, title, xLabel, yLabel) {
  const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height, L = 62, B = 34, T = 22, R = 12;
  ctx.fillStyle = "#0d1013"; ctx.fillRect(0, 0, W, H);
  ctx.strokeStyle = "#3a424c"; ctx.strokeRect(L, T, W - L - R, H - T - B);
  ctx.fillStyle = "#e6e8ea"; ctx.font = "12px sans-serif"; ctx.fillText(title || "", L, 14);
  ctx.fillStyle = "#9aa3ab"; ctx.font = "11px sans-serif";
  ctx.fillText(xLabel, L + (W - L - R) / 2 - ctx.measureText(xLabel).width / 2, H - 4);
  ctx.save(); ctx.translate(12, T + (H - T - B) / 2 + ctx.measureText(yLabel).width / 2); ctx.rotate(-Math.PI / 2); ctx.fillText(yLabel, 0, 0); ctx.restore();
  return { ctx, W, H, L, B, T, R };
}
// series: [{name, colour, points: [[x, y], ...]}]; opts: {title, x, y, logY}. A legend names each series.
function plotLines(canvas, series, opts) {
  const { ctx, W, H, L, B, T, R } = plotFrame(canvas, opts.title, opts.x, opts.y);
  const tr = (y) => (opts.logY ? Math.log10(y) : y);
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!opts.logY || y > 0));
  if (!all.length) return 0;
  const x0 = Math.min(...all.map((p) => p[0])), x1 = Math.max(Math.max(...all.map((p) => p[0])), x0 + 1);
  let y0 = Math.min(...all.map((p) => tr(p[1]))), y1 = Math.max(...all.map((p) => tr(p[1])));
  if (y1 - y0 < 0.1) { y0 -= 0.05; y1 += 0.05; }
  const X = (x) => L + (x - x0) / (x1 - x0) * (W - L - R), Y = (y) => T + (y1 - tr(y)) / (y1 - y0) * (H - T - B);
  const yLabel = (v) => fmtTick(opts.logY ? 10 ** v : v);
  ctx.fillText(fmtTick(x0), L, H - B + 13); const xr = fmtTick(x1); ctx.fillText(xr, W - R - ctx.measureText(xr).width, H - B + 13);
  ctx.fillText(yLabel(y1), L - 4 - ctx.measureText(yLabel(y1)).width, T + 9); ctx.fillText(yLabel(y0), L - 4 - ctx.measureText(yLabel(y0)).width, H - B);
  let drawn = 0, ly = T + 14;
  for (const s of series) {
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!opts.logY || y > 0));
    if (!p.length) continue;
    ctx.strokeStyle = s.colour; ctx.beginPath();
    p.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
    if (p.length === 1) ctx.arc(X(p[0][0]), Y(p[0][1]), 2, 0, 2 * Math.PI);
    ctx.stroke();
    drawn += p.length;
    // Legend, top right inside the axes, on its own background so a curve under it does not hide it.
    const w = ctx.measureText(s.name).width;
    ctx.fillStyle = "rgba(13, 16, 19, 0.85)"; ctx.fillRect(W - R - w - 30, ly - 11, w + 28, 14);
    ctx.fillStyle = s.colour; ctx.fillRect(W - R - w - 26, ly - 6, 14, 3); ctx.fillText(s.name, W - R - w - 8, ly);
    ly += 14;
  }
  return drawn;
}
// A LogHistogram from the viewer (docs/viewer.md): bars on log-spaced bins, counts on a log scale.
function plotHistogram(canvas, h, opts) {
  const { ctx, W, H, L, B, T, R } = plotFrame(canvas, opts.title, `${opts.unit} per pixel (log scale)`, "pixels (log scale)");
  let first = h.counts.findIndex((c) => c > 0), last = h.counts.length - 1 - [...h.counts].reverse().findIndex((c) => c > 0);
  if (first < 0) { ctx.fillText("no positive values", L + 8, T + 20); return 0; }
  first = Math.max(0, first - 1); last = Math.min(h.counts.length - 1, last + 1);
  const lx0 = Math.log10(h.edges[first]), lx1 = Math.log10(h.edges[last + 1]), top = Math.log10(Math.max(...h.counts)) + 0.1;
  const X = (e) => L + (Math.log10(e) - lx0) / (lx1 - lx0) * (W - L - R), Y = (c) => H - B - (c > 0 ? (Math.log10(c) + 0.1) / (top + 0.1) : 0) * (H - T - B);
  ctx.fillStyle = "#4fa3e0";
  for (let k = first; k <= last; k++) if (h.counts[k] > 0) ctx.fillRect(X(h.edges[k]), Y(h.counts[k]), Math.max(1, X(h.edges[k + 1]) - X(h.edges[k]) - 1), H - B - Y(h.counts[k]));
  ctx.fillStyle = "#9aa3ab";
  for (let d = Math.ceil(lx0); d <= Math.floor(lx1); d++) ctx.fillText(fmtTick(10 ** d), X(10 ** d) - 8, H - B + 13);
  const c = fmtTick(10 ** Math.floor(top)); ctx.fillText(c, L - 4 - ctx.measureText(c).width, Y(10 ** Math.floor(top)) + 4);
  ctx.fillText("1", L - 10, H - B);
  const note = `${h.zero_or_below} at or below 0, ${h.under + h.over} outside, ${h.non_finite} not finite`;
  ctx.fillText(note, W - R - ctx.measureText(note).width, 14);
  return h.counts.reduce((a, b) => a + b, 0);
}

// A probe of one mode (h, w) or several (modes, h, w): a selector picks the mode shown.
function setProbe(panel, shape, values) {
  const modes = shape.length === 3 ? shape[0] : 1, [h, w] = shape.slice(-2);
  let select = panel.el.querySelector("select.mode");
  if (modes > 1 && !select) {
    select = document.createElement("select");
    select.className = "mode";
    panel.el.querySelector(".tools").prepend(select);
    select.addEventListener("input", () => panel.showMode());
  }
  if (select) {
    const keep = Math.min(+select.value || 0, modes - 1);
    select.innerHTML = "";
    for (let m = 0; m < modes; m++) select.append(new Option(`mode ${m}`, m));
    select.value = keep;
    select.style.display = modes > 1 ? "" : "none";
  }
  panel.showMode = () => {
    const m = select && modes > 1 ? +select.value : 0;
    panel.set(w, h, values.subarray(m * h * w * 2, (m + 1) * h * w * 2), modes > 1 ? `mode ${m} of ${modes}, ${h} x ${w}` : `${h} x ${w}`);
  };
  panel.showMode();
}

// Interleaved complex values as amplitude and phase.
function ampPhase(values) {
  const n = values.length / 2, amp = new Float32Array(n), phase = new Float32Array(n);
  for (let i = 0; i < n; i++) { amp[i] = Math.hypot(values[2 * i], values[2 * i + 1]); phase[i] = Math.atan2(values[2 * i + 1], values[2 * i]); }
  return [amp, phase];
}
function log10Frame(values) {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.log10(1 + Math.max(0, values[i]));
  return out;
}
