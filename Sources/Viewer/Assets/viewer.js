// Nanosurveyor live view: draws what the viewer process passes on from a
// session's publish port (docs/viewer.md), and sends control requests.
// common.js comes first.
"use strict";

// What the page has done, for people and for the browser tests.
window.nsViewer = { recsDrawn: 0, lastIteration: -1, lastLatency: NaN, scanID: null, logLines: 0, status: null };

const panels = {};
for (const el of document.querySelectorAll(".panel")) panels[el.id] = new Panel(el);

// ---------- error curve ----------
const errors = { scan: null, fourier: [], nrmse: [] };
function addError(scan, iteration, value, nrmse) {
  if (scan !== errors.scan) { errors.scan = scan; errors.fourier = []; errors.nrmse = []; }
  if (!(value > 0) || errors.fourier.some((p) => p[0] === iteration)) return;
  errors.fourier.push([iteration, value]);
  errors.fourier.sort((a, b) => a[0] - b[0]);
  if (nrmse > 0) { errors.nrmse.push([iteration, nrmse]); errors.nrmse.sort((a, b) => a[0] - b[0]); }
  drawErrors();
}
function drawErrors() {
  const series = [{ name: "Fourier error", colour: "#4fa3e0", points: errors.fourier }];
  if (errors.nrmse.length) series.push({ name: "NRMSE against truth", colour: "#e0b04f", points: errors.nrmse });
  plotLines($("errors"), series, { title: errors.scan ? `scan ${errors.scan}` : "no scan yet", x: "iteration", y: "error (log scale)", logY: true });
}

// ---------- status ----------
// (time, iteration) over the last few seconds, for the iteration rate.
let iterations = [];
// (time, placed) for the placement rate, and (time, bytes) of what the socket brought, for the page's own rate in.
let placedSeen = [], placedScan = null, received = [];
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
  text("placement-latency", s.placement_latency_s, 3);
  const now = performance.now() / 1000;
  if (iterations.length && (s.iteration || 0) < iterations[iterations.length - 1][1]) iterations = [];
  iterations.push([now, s.iteration || 0]);
  while (iterations.length > 2 && now - iterations[1][0] > 5) iterations.shift();
  const [t0, i0] = iterations[0];
  text("rate-it", now - t0 > 0.5 ? ((s.iteration || 0) - i0) / (now - t0) : null, 1);
  // Frames placed per second over the last few seconds (a new scan starts the count again).
  if (placedSeen.length && ((s.placed || 0) < placedSeen[placedSeen.length - 1][1] || s.scan_id !== placedScan)) placedSeen = [];
  placedScan = s.scan_id;
  placedSeen.push([now, s.placed || 0]);
  while (placedSeen.length > 2 && now - placedSeen[1][0] > 5) placedSeen.shift();
  const [p0, n0] = placedSeen[0];
  text("rate-out-hz", now - p0 > 0.5 ? ((s.placed || 0) - n0) / (now - p0) : null, 1);
  while (received.length && now - received[0][0] > 5) received.shift();
  const bytes = received.reduce((a, r) => a + r[1], 0);
  text("rate-out-mb", received.length ? bytes / Math.max(1, now - received[0][0]) / 1e6 : null, 3);
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
    const latency = typeof r.latency_s === "number" && r.latency_s > 0 ? r.latency_s.toFixed(3) : "-";
    for (const v of [r.rank, r.activity || "-", age, r.queued, r.cleaned, r.placed, r.rejected, latency]) {
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
function drawAux(header, p) {
  aux = { header, p };
  const [gh, gw] = p.dpc_x.shape;
  panels["dpc-x"].set(gw, gh, p.dpc_x.values, `${gh} x ${gw} positions grid`);
  panels["dpc-y"].set(gw, gh, p.dpc_y.values, `${gh} x ${gw} positions grid`);
}
function drawRec(h, p) {
  const [oh, ow] = h.object_shape, [amp, phase] = ampPhase(p.object.values);
  const full = h.object_full_shape ? ` of ${h.object_full_shape[0]} x ${h.object_full_shape[1]}` : "";
  const px = h.pixel_size_m ? `, ${(h.pixel_size_m * 1e9 * (h.object_step || 1)).toFixed(1)} nm pixels` : "";
  const meta = `${oh} x ${ow}${full} (every ${h.object_step || 1}${px})`;
  panels["object-amp"].set(ow, oh, amp, meta);
  panels["object-phase"].set(ow, oh, phase, meta);
  setProbe(panels.probe, h.probe_shape, p.probe.values);
  const [fh, fw] = h.frame_shape, f = p.frame.values, logf = log10Frame(f);
  const mask = aux && aux.header.scan_id === h.scan_id && aux.p.mask.values.length === f.length ? aux.p.mask.values : null;
  panels.frame.set(fw, fh, logf, h.frame_index >= 0 ? `frame ${h.frame_index}, ${fh} x ${fw}` : "no frame placed yet", mask);
  const [sh, sw] = h.stxm_shape;
  panels.stxm.set(sw, sh, p.stxm.values, `${sh} x ${sw} grid, step ${(h.stxm_step_m * 1e9).toFixed(0)} nm`);
  addError(h.scan_id, h.iteration, h.fourier_error, h.truth_nrmse);
  if (h.truth_nrmse > 0) text("truth-nrmse", h.truth_nrmse, 4);
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
    received.push([performance.now() / 1000, typeof e.data === "string" ? e.data.length : e.data.byteLength]);
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

fetch("/api/session").then((r) => r.json()).then((s) => {
  $("session").textContent = `session ${s.publish}`;
  $("files-link").classList.toggle("hidden", !s.files);
});
drawErrors();
connect();
buildParameters();
