// Nanosurveyor result files: lists the CXI files under the viewer's --files
// folder and shows one (docs/viewer.md). common.js comes first.
"use strict";

// What the page has done, for people and for the browser tests.
window.nsFiles = { listed: 0, opened: null, kind: null, objectDrawn: false, positionsDrawn: 0, tilesDrawn: 0,
                   errorPoints: 0, frameIndex: -1, framePixels: 0, photonPixels: 0, photonTotal: 0, error: null };

const panels = {};
for (const el of document.querySelectorAll(".panel")) panels[el.id] = new Panel(el);
let current = null;

function banner(message) {
  $("banner").textContent = message || "";
  $("banner").classList.toggle("hidden", !message);
  window.nsFiles.error = message || null;
}
// A reply from the viewer: the bytes, or the error it names, shown on the page.
async function request(url, what) {
  let r;
  try { r = await fetch(url); } catch (err) { banner(`${what}: the viewer did not answer (${err}); is ns-mpirun view still running?`); return null; }
  if (!r.ok) {
    let reason = `HTTP ${r.status}`;
    try { reason = (await r.json()).error || reason; } catch (_) { /* not JSON */ }
    banner(reason.startsWith(`${what}:`) ? reason : `${what}: ${reason}`);
    return null;
  }
  return r;
}
const sizeText = (b) => (b >= 1 << 30 ? `${(b / (1 << 30)).toFixed(1)} GiB` : b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : `${(b / 1024).toFixed(0)} KiB`);

// ---------- the list ----------
let listed = [];
async function loadList() {
  const r = await request("/api/files", "listing the files");
  if (!r) return;
  const o = await r.json();
  $("root").textContent = o.root;
  listed = o.files;
  $("list-note").textContent = o.truncated ? `only the newest ${o.limit} are listed` : `${o.files.length} files`;
  showList();
  window.nsFiles.listed = listed.length;
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted && !current) openFile(wanted);
}
function showList() {
  const body = $("file-list").querySelector("tbody"), filter = $("filter").value.toLowerCase();
  body.innerHTML = "";
  for (const f of listed) {
    if (filter && !f.name.toLowerCase().includes(filter)) continue;
    const tr = document.createElement("tr");
    tr.dataset.name = f.name;
    if (current && current.name === f.name) tr.className = "open";
    for (const v of [f.name, sizeText(f.bytes), new Date(f.modified * 1000).toLocaleString()]) {
      const td = document.createElement("td"); td.textContent = v; tr.append(td);
    }
    tr.addEventListener("click", () => openFile(f.name));
    body.append(tr);
  }
}
$("filter").addEventListener("input", showList);
$("btn-refresh").addEventListener("click", loadList);

// ---------- one file ----------
// A panel the file has nothing for is hidden; the header says what is absent.
let absent = [];
function clearPanel(panel, what) {
  panel.data = null;
  panel.overlay = null;
  panel.el.classList.add("empty");
  absent.push(what);
}
async function openFile(name) {
  const r = await request(`/api/files/open?name=${encodeURIComponent(name)}`, name);
  if (!r) return;
  banner("");
  const [h, p] = parts(await r.arrayBuffer());
  current = h;
  location.hash = encodeURIComponent(name);
  Object.assign(window.nsFiles, { opened: name, kind: h.kind, objectDrawn: false, positionsDrawn: 0, tilesDrawn: 0,
                                  errorPoints: 0, frameIndex: -1, framePixels: 0, photonPixels: 0, photonTotal: 0 });
  $("file-title").textContent = `${name} (${h.kind})`;
  showList();
  absent = [];
  drawImages(h, p);
  window.nsFiles.errorPoints = drawFileErrors(h);
  showMetadata(h);
  for (const id of ["frame-card", "photon-card"]) $(id).classList.toggle("hidden", !h.frames);
  if (h.frames) {
    $("frame-index").max = h.frames - 1;
    $("frame-index").value = Math.min(+$("frame-index").value || 0, h.frames - 1);
    showFrame();
    showPhotons();
  } else {
    clearPanel(panels.frame, "frames");
  }
  const missing = [...new Set(absent)];
  $("absent").textContent = missing.length ? `not in this file: ${missing.join(", ")}` : "";
  // Parts the viewer refused to read (too large, malformed) are named; the rest is shown.
  if (h.problems) banner(`${name}: shown without what could not be read:\n${h.problems.join("\n")}`);
}
function drawImages(h, p) {
  if (p.object) {
    const [oh, ow] = p.object.shape, [amp, phase] = ampPhase(p.object.values), step = h.object_step || 1;
    const px = h.pixel_size_m ? `, ${(h.pixel_size_m * 1e9 * step).toFixed(1)} nm pixels` : "";
    const meta = `${oh} x ${ow} of ${h.object_full_shape[0]} x ${h.object_full_shape[1]} (every ${step}${px})`;
    // Scan positions (probe centres) and each rank's tile, in the shown object's pixels.
    panels["object-amp"].overlay = (ctx, width) => {
      let n = 0, t = 0;
      if ($("show-tiles").checked && h.tiles) {
        ctx.strokeStyle = "rgba(224, 176, 79, 0.8)"; ctx.lineWidth = 1;
        for (const [y0, x0, y1, x1] of h.tiles) { ctx.strokeRect(x0 / step + 0.5, y0 / step + 0.5, (x1 - x0) / step - 1, (y1 - y0) / step - 1); t++; }
      }
      if ($("show-positions").checked && p.positions_px) {
        const v = p.positions_px.values, count = v.length / 2;
        for (let i = 0; i < count; i++) {
          ctx.fillStyle = i === 0 ? "#3fd46a" : i === count - 1 ? "#e05a4f" : "#22d3ee";
          const s = (i === 0 || i === count - 1 ? 4 : 2.5) * Math.max(1, width / 300);
          ctx.fillRect(v[2 * i + 1] / step - s / 2, v[2 * i] / step - s / 2, s, s);
          n++;
        }
      }
      window.nsFiles.positionsDrawn = n; window.nsFiles.tilesDrawn = t;
    };
    const note = p.positions_px ? "" : p.positions_m ? "; positions not on this object's grid" : "";
    panels["object-amp"].set(ow, oh, amp, meta + note);
    panels["object-phase"].set(ow, oh, phase, meta);
    window.nsFiles.objectDrawn = true;
  } else {
    clearPanel(panels["object-amp"], "object");
    clearPanel(panels["object-phase"], "object");
  }
  if (p.probe) setProbe(panels.probe, p.probe.shape, p.probe.values);
  else clearPanel(panels.probe, "probe");
  const step = h.stxm_step_m ? `, step ${(h.stxm_step_m * 1e9).toFixed(0)} nm` : "";
  for (const [id, part] of [["stxm", "stxm"], ["dpc-x", "dpc_x"], ["dpc-y", "dpc_y"]]) {
    if (p[part]) { const [gh, gw] = p[part].shape; panels[id].set(gw, gh, p[part].values, `${gh} x ${gw} grid${step}`); }
    else clearPanel(panels[id], part.replace("_", " ").toUpperCase());
  }
}
function drawFileErrors(h) {
  const e = h.errors || {}, series = [];
  const points = (list) => list.map((v, i) => [i + 1, v === null ? NaN : v]);
  if (e.fourier) series.push({ name: "Fourier error", colour: "#4fa3e0", points: points(e.fourier) });
  if (e.truth_nrmse) series.push({ name: "NRMSE against truth", colour: "#e0b04f", points: points(e.truth_nrmse) });
  return plotLines($("file-errors"), series, { title: series.length ? `${e.fourier ? e.fourier.length : 0} iterations` : "no error history in this file",
                                               x: "iteration", y: "error (log scale)", logY: true });
}
function showMetadata(h) {
  const rows = [["kind", h.kind], ["size", sizeText(h.bytes)], ["modified", new Date(h.modified * 1000).toLocaleString()]];
  const i = h.instrument || {}, pr = h.process || {};
  if (i.energy_ev) rows.push(["photon energy", `${i.energy_ev.toFixed(1)} eV`]);
  if (i.distance_m) rows.push(["detector distance", `${(i.distance_m * 1e3).toFixed(2)} mm`]);
  if (i.x_pixel_size_m) rows.push(["detector pixel", `${(i.x_pixel_size_m * 1e6).toFixed(2)} x ${((i.y_pixel_size_m || i.x_pixel_size_m) * 1e6).toFixed(2)} µm`]);
  if (i.frames !== undefined) rows.push(["frames", `${i.frames} of ${i.frame_shape.join(" x ")} (${i.frame_type}, ${h.frame_unit})`]);
  if (h.pixel_size_m) rows.push(["object pixel", `${(h.pixel_size_m * 1e9).toFixed(2)} nm`]);
  if (i.start_time) rows.push(["start", i.start_time]);
  for (const k of ["program", "version", "date", "command"]) if (pr[k]) rows.push([k, pr[k]]);
  const t = $("metadata");
  t.innerHTML = "";
  for (const [k, v] of rows) {
    const tr = document.createElement("tr"), th = document.createElement("th"), td = document.createElement("td");
    th.textContent = k; td.textContent = v; tr.append(th, td); t.append(tr);
  }
  $("parameters-json").textContent = h.parameters === undefined ? "none recorded" : JSON.stringify(h.parameters, null, 1);
  $("stream-report").textContent = h.stream_report === undefined ? "not a live scan" : JSON.stringify(h.stream_report, null, 1);
}

// ---------- frames and photons ----------
async function showFrame() {
  if (!current) return;
  const name = current.name, index = Math.floor(+$("frame-index").value || 0);
  const r = await request(`/api/files/frame?name=${encodeURIComponent(name)}&index=${index}`, `${name}, frame ${index}`);
  if (!r || !current || current.name !== name) return;
  const [h, p] = parts(await r.arrayBuffer());
  const [fh, fw] = p.frame.shape;
  panels.frame.set(fw, fh, log10Frame(p.frame.values), `frame ${h.index} of ${h.frames}, ${fh} x ${fw}`, p.mask ? p.mask.values : null);
  const counted = plotHistogram($("frame-histogram"), h.histogram, { title: `frame ${h.index}`, unit: h.unit });
  $("frame-note").textContent = `${h.histogram.pixels} pixels, ${h.histogram.total.toExponential(3)} ${h.unit} in all, brightest ${h.histogram.max.toExponential(3)}`;
  Object.assign(window.nsFiles, { frameIndex: h.index, framePixels: h.histogram.pixels, frameCounted: counted, frameTotal: h.histogram.total });
}
$("btn-frame").addEventListener("click", showFrame);
$("frame-index").addEventListener("change", showFrame);
async function showPhotons() {
  const name = current.name;
  $("photon-note").textContent = "reading every frame...";
  const r = await request(`/api/files/photons?name=${encodeURIComponent(name)}`, `${name}, all photons`);
  if (!r || !current || current.name !== name) return;
  const o = await r.json(), h = o.histogram;
  plotHistogram($("photon-histogram"), h, { title: o.frames_used === o.frames ? `all ${o.frames} frames` : `${o.frames_used} of ${o.frames} frames, evenly spaced`, unit: o.unit });
  const s = o.frame_sums;
  $("photon-note").textContent = `${h.total.toExponential(3)} ${o.unit} in ${h.pixels} pixels; per frame ${s.min.toExponential(2)} to ${s.max.toExponential(2)}, mean ${s.mean.toExponential(2)}`;
  Object.assign(window.nsFiles, { photonPixels: h.pixels, photonTotal: h.total, photonFrames: o.frames_used });
}

for (const id of ["show-positions", "show-tiles"]) $(id).addEventListener("change", () => panels["object-amp"].render());
fetch("/api/session").then((r) => r.json()).then((s) => $("live-link").classList.toggle("hidden", !s.publish));
loadList();
