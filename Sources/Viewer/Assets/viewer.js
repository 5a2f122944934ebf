// Nanosurveyor live view: draws what the viewer process passes on from a
// session's publish port (docs/viewer.md), and sends control requests.
"use strict";

const $ = (id) => document.getElementById(id);
// What the page has done, for people and for the browser tests.
window.nsViewer = { recsDrawn: 0, lastIteration: -1, lastLatency: NaN, scanID: null, logLines: 0, status: null };

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
const panels = {};
for (const el of document.querySelectorAll(".panel")) panels[el.id] = new Panel(el);

// ---------- error curve ----------
const errors = { scan: null, points: [] };
function addError(scan, iteration, value) {
  if (scan !== errors.scan) { errors.scan = scan; errors.points = []; }
  if (!(value > 0) || errors.points.some((p) => p[0] === iteration)) return;
  errors.points.push([iteration, value]);
  errors.points.sort((a, b) => a[0] - b[0]);
  drawErrors();
}
function drawErrors() {
  const c = $("errors"), ctx = c.getContext("2d"), W = c.width, H = c.height, L = 56, B = 30, T = 10, R = 10;
  ctx.fillStyle = "#0d1013"; ctx.fillRect(0, 0, W, H);
  ctx.strokeStyle = "#3a424c"; ctx.strokeRect(L, T, W - L - R, H - T - B);
  ctx.fillStyle = "#9aa3ab"; ctx.font = "11px sans-serif";
  ctx.fillText("iteration", W / 2 - 20, H - 4);
  ctx.save(); ctx.translate(12, H / 2 + 40); ctx.rotate(-Math.PI / 2); ctx.fillText("Fourier error (log)", 0, 0); ctx.restore();
  const p = errors.points;
  if (!p.length) return;
  const x0 = p[0][0], x1 = Math.max(p[p.length - 1][0], x0 + 1);
  let y0 = Math.log10(Math.min(...p.map((q) => q[1]))), y1 = Math.log10(Math.max(...p.map((q) => q[1])));
  if (y1 - y0 < 0.1) { y0 -= 0.05; y1 += 0.05; }
  const X = (x) => L + (x - x0) / (x1 - x0) * (W - L - R), Y = (y) => T + (y1 - Math.log10(y)) / (y1 - y0) * (H - T - B);
  ctx.fillText(x0, L, H - B + 12); ctx.fillText(x1, W - R - 24, H - B + 12);
  ctx.fillText((10 ** y1).toExponential(1), 2, T + 8); ctx.fillText((10 ** y0).toExponential(1), 2, H - B);
  ctx.strokeStyle = "#4fa3e0"; ctx.beginPath();
  p.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
  ctx.stroke();
  ctx.fillStyle = "#4fa3e0"; ctx.fillText(`${errors.scan}`, L + 6, T + 14);
}

// ---------- status ----------
// (time, iteration) over the last few seconds, for the iteration rate.
let iterations = [];
function text(id, v, digits) {
  $(id).textContent = v === undefined || v === null ? "-" : (typeof v === "number" && digits !== undefined ? v.toFixed(digits) : v);
}
function showStatus(s) {
  window.nsViewer.status = s;
  const st = $("state");
  st.textContent = s.stalled ? `${s.state}, stalled` : s.state;
  st.className = `pill ${s.state}`;
  $("scan").textContent = s.scan_id ? `scan ${s.scan_id}` : "no scan open";
  $("iteration").textContent = s.iteration ? `iteration ${s.iteration}` : "";
  text("count-expected", s.frames_expected); text("count-received", s.received); text("count-cleaned", s.cleaned);
  text("count-placed", s.placed); text("count-rejected", s.rejected); text("count-backlog", s.backlog);
  text("rate-hz", s.received_hz, 1); text("rate-mb", s.received_mb_s, 2);
  text("fourier", s.fourier_error ? s.fourier_error.toExponential(3) : null); text("status-age", s.status_age_s, 1);
  text("scans-finished", s.scans_finished); text("scans-done", s.scans_done);
  const now = performance.now() / 1000;
  if (iterations.length && (s.iteration || 0) < iterations[iterations.length - 1][1]) iterations = [];
  iterations.push([now, s.iteration || 0]);
  while (iterations.length > 2 && now - iterations[1][0] > 5) iterations.shift();
  const [t0, i0] = iterations[0];
  text("rate-it", now - t0 > 0.5 ? ((s.iteration || 0) - i0) / (now - t0) : null, 1);
  if (s.scan_id && s.fourier_error) addError(s.scan_id, s.iteration, s.fourier_error);
  const reasons = Object.entries(s.rejections || {});
  $("rejections").innerHTML = "";
  for (const [why, n] of reasons) { const li = document.createElement("li"); li.textContent = `${n} x ${why}`; $("rejections").append(li); }
  const late = s.late || [];
  $("late").textContent = late.length ? `late: ${late.map((r) => `rank ${r}`).join(", ")}` : "";
  const body = $("ranks").querySelector("tbody");
  body.innerHTML = "";
  for (const r of s.ranks || []) {
    const tr = document.createElement("tr");
    if (r.late) tr.className = "late";
    const age = typeof r.heartbeat_age_s === "number" && r.heartbeat_age_s >= 0 ? r.heartbeat_age_s.toFixed(1) : "-";
    for (const v of [r.rank, r.activity || "-", age, r.queued, r.cleaned, r.placed, r.rejected]) {
      const td = document.createElement("td"); td.textContent = v === undefined ? "-" : v; tr.append(td);
    }
    body.append(tr);
  }
}

// ---------- log ----------
function addLog(entry) {
  const div = document.createElement("div");
  div.className = entry.level || "info";
  const time = new Date((entry.time || 0) * 1000).toLocaleTimeString();
  div.innerHTML = `<span>${time}</span> <span class="rank">rank ${entry.rank}</span> `;
  div.append(document.createTextNode(entry.message || ""));
  const log = $("log"), atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  if ($("log-warnings").checked && entry.level === "info") div.style.display = "none";
  log.append(div);
  while (log.childNodes.length > 2000) log.firstChild.remove();
  if (atEnd) log.scrollTop = log.scrollHeight;
  window.nsViewer.logLines++;
}
$("log-warnings").addEventListener("change", () => {
  for (const d of $("log").children) d.style.display = $("log-warnings").checked && d.className === "info" ? "none" : "";
});

// ---------- images ----------
let aux = null;
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
function drawAux(header, p) {
  aux = { header, p };
  const [gh, gw] = p.dpc_x.shape;
  panels["dpc-x"].set(gw, gh, p.dpc_x.values, `${gh} x ${gw} positions grid`);
  panels["dpc-y"].set(gw, gh, p.dpc_y.values, `${gh} x ${gw} positions grid`);
}
function drawRec(h, p) {
  const [oh, ow] = h.object_shape, obj = p.object.values, n = oh * ow;
  const amp = new Float32Array(n), phase = new Float32Array(n);
  for (let i = 0; i < n; i++) { amp[i] = Math.hypot(obj[2 * i], obj[2 * i + 1]); phase[i] = Math.atan2(obj[2 * i + 1], obj[2 * i]); }
  const full = h.object_full_shape ? ` of ${h.object_full_shape[0]} x ${h.object_full_shape[1]}` : "";
  const px = h.pixel_size_m ? `, ${(h.pixel_size_m * 1e9 * (h.object_step || 1)).toFixed(1)} nm pixels` : "";
  const meta = `${oh} x ${ow}${full} (every ${h.object_step || 1}${px})`;
  panels["object-amp"].set(ow, oh, amp, meta);
  panels["object-phase"].set(ow, oh, phase, meta);
  const [ph, pw] = h.probe_shape;
  panels.probe.set(pw, ph, p.probe.values, `${ph} x ${pw}`);
  const [fh, fw] = h.frame_shape, f = p.frame.values, logf = new Float32Array(f.length);
  for (let i = 0; i < f.length; i++) logf[i] = Math.log10(1 + Math.max(0, f[i]));
  const mask = aux && aux.header.scan_id === h.scan_id && aux.p.mask.values.length === f.length ? aux.p.mask.values : null;
  panels.frame.set(fw, fh, logf, h.frame_index >= 0 ? `frame ${h.frame_index}, ${fh} x ${fw}` : "no frame placed yet", mask);
  const [sh, sw] = h.stxm_shape;
  panels.stxm.set(sw, sh, p.stxm.values, `${sh} x ${sw} grid, step ${(h.stxm_step_m * 1e9).toFixed(0)} nm`);
  addError(h.scan_id, h.iteration, h.fourier_error);
  $("iteration").textContent = `iteration ${h.iteration}${h.final ? " (final)" : ""}`;
  // Latency to the screen: measured once the browser has painted the frame.
  requestAnimationFrame(() => setTimeout(() => {
    const latency = Date.now() / 1000 - h.published_at;
    Object.assign(window.nsViewer, { recsDrawn: window.nsViewer.recsDrawn + 1, lastIteration: h.iteration, lastLatency: latency, scanID: h.scan_id });
    text("draw-latency", latency, 3);
    // The first picture after connecting is the viewer's stored latest, not a fresh one.
    if (socket && socket.readyState === 1 && !firstRec) socket.send(JSON.stringify({ draw_latency_s: latency, iteration: h.iteration }));
    firstRec = false;
  }, 0));
}

// ---------- the WebSocket ----------
let socket = null, firstRec = true;
function banner(message) {
  $("banner").textContent = message || "";
  $("banner").classList.toggle("hidden", !message);
}
function connect() {
  socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  socket.binaryType = "arraybuffer";
  firstRec = true;
  socket.onmessage = (e) => {
    if (typeof e.data === "string") {
      const m = JSON.parse(e.data);
      if (m.type === "status") showStatus(m);
      else if (m.type === "log") addLog(m);
      else if (m.type === "viewer") banner(m.ok ? "" : m.message);
      return;
    }
    const [header, p] = parts(e.data);
    if (header.type === "aux") drawAux(header, p);
    else if (header.type === "rec") drawRec(header, p);
  };
  socket.onclose = () => {
    banner("The viewer process does not answer (it stopped, or the network dropped). Retrying every 2 s; restart it with `ns-mpirun view --session PUB,CONTROL`.");
    setTimeout(connect, 2000);
  };
}

// ---------- control ----------
async function control(request) {
  const reply = $("control-reply");
  try {
    const r = await fetch("/api/control", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request) });
    const o = await r.json();
    reply.className = o.ok ? "" : "bad";
    const error = String(o.error || "");
    reply.textContent = o.ok ? `${request.command}: done` : (error.startsWith(`${request.command}:`) ? error : `${request.command}: ${error}`);
    return o;
  } catch (err) {
    reply.className = "bad";
    reply.textContent = `${request.command}: the viewer did not answer (${err})`;
    return { ok: false };
  }
}
$("btn-abort").addEventListener("click", () => control({ command: "abort" }));
$("btn-shutdown").addEventListener("click", () => {
  if (confirm("Shut the session down? The open scan is written with what arrived.")) control({ command: "shutdown" });
});
async function buildParameters() {
  const o = await control({ command: "parameters" });
  if (!o.ok) { setTimeout(buildParameters, 3000); return; }
  $("control-reply").textContent = "";
  const form = $("parameters");
  form.innerHTML = "";
  for (const p of o.parameters) {
    const row = document.createElement("div");
    row.className = "row";
    const label = document.createElement("label");
    label.textContent = p.name + (p.unit ? ` (${p.unit})` : "");
    let input;
    if (p.type === "choice") {
      input = document.createElement("select");
      input.append(new Option("-", ""));
      for (const c of p.choices) input.append(new Option(c, c));
    } else {
      input = document.createElement("input");
      input.type = p.type === "integer" || p.type === "number" ? "number" : "text";
      if (p.min !== undefined) input.min = p.min;
      if (p.max !== undefined) input.max = p.max;
      input.step = p.type === "integer" ? "1" : "any";
      input.placeholder = p.min !== undefined ? `${p.min} ... ${p.max}` : "";
    }
    input.name = p.name;
    input.id = `param-${p.name}`;
    const doc = document.createElement("div");
    doc.className = "doc";
    doc.textContent = p.doc;
    row.append(label, input, doc);
    form.append(row);
  }
  const set = document.createElement("button");
  set.type = "submit"; set.id = "btn-set"; set.textContent = "Set";
  form.append(set);
  form.onsubmit = (e) => {
    e.preventDefault();
    const request = { command: "set" };
    for (const p of o.parameters) {
      const v = form.elements[p.name].value;
      if (v === "") continue;
      request[p.name] = p.type === "integer" || p.type === "number" ? Number(v) : v;
    }
    control(request);
  };
}

// ---------- simulated scan ----------
async function simulationState() {
  const s = await (await fetch("/api/simulate")).json();
  const reply = $("simulate-reply");
  if (s.running) {
    reply.className = "";
    reply.textContent = `sending ${s.scan_id} (${s.scan} at ${s.rate} frames/s)`;
    setTimeout(simulationState, 2000);
  } else if (s.exit_status !== undefined) {
    reply.className = s.exit_status === 0 ? "" : "bad";
    reply.textContent = s.exit_status === 0 ? `${s.scan_id}: sent` : `${s.scan_id}: the simulator failed (${s.exit_status}): ${s.output}`;
  }
}
$("simulate").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target.elements, request = { scan: f.scan.value };
  for (const k of ["rate", "drop", "duplicate", "reorder", "corrupt"]) request[k] = Number(f[k].value);
  const reply = $("simulate-reply");
  try {
    const r = await fetch("/api/simulate", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request) });
    const o = await r.json();
    reply.className = o.ok ? "" : "bad";
    reply.textContent = o.ok ? `started: ${o.command}` : o.error;
    if (o.ok) setTimeout(simulationState, 1000);
  } catch (err) {
    reply.className = "bad";
    reply.textContent = `simulate: the viewer did not answer (${err})`;
  }
});

fetch("/api/session").then((r) => r.json()).then((s) => { $("session").textContent = `session ${s.publish}`; });
drawErrors();
connect();
buildParameters();
