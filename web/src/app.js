// The page: a photo, a video or the webcam in, the points drawn per region, the readout, the JSON download.
// Its latest result is window.facemarkLast (docs/web.md): {source, frame, fps, faces: [{box, score, points}]} in
// the source image's pixels, so a test or a person's own script can read what the page saw.

import { rollAngle } from "./crops.js";
import { fromRGBA } from "./imaging.js";
import { Landmarker } from "./landmarker.js";
import { openness } from "./measures.js";
import { FaceTracker } from "./tracking.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const MODELS = new URL("../models", location.href).href.replace(/\/$/, "");
const PALETTE = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
  "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8", "#800000", "#aaffc3"];

const state = {
  ort: null, landmarkers: {}, model: $("model").value, live: 0, source: null, name: null,
  running: false, last: null, image: null, frame: 0, stamps: [],
};
window.facemarkLast = null;
// one line per result (the last MAX_LOG): what a test reads to count the frames that had a face
window.facemarkLog = [];
const MAX_LOG = 5000;
// milliseconds since the page's navigation started: networks ready, first result
window.facemarkTimings = { start: 0 };

async function loadRuntime() {
  const webgpu = params.get("ep") === "webgpu" && "gpu" in navigator;
  const ort = await import(webgpu ? "../vendor/ort/ort.webgpu.min.mjs" : "../vendor/ort/ort.wasm.min.mjs");
  ort.env.wasm.wasmPaths = new URL("../vendor/ort/", import.meta.url).href;
  // one thread by default, as the Python runtime: the networks are small, and a second thread lost on a busy
  // two-core machine (tracker 12.8 ms a frame against 20.1 ms, `benchmarks/web_speed.py --threads 1` / `2`
  // at a load average of 8-10; docs/web.md); `?threads=N`
  // asks for more, which needs cross-origin isolation (the server's COOP/COEP headers)
  const threads = Number(params.get("threads")) || 1;
  ort.env.wasm.numThreads = self.crossOriginIsolated ? threads : 1;
  ort.env.logLevel = "error";
  state.ort = ort;
  state.sessionOptions = { executionProviders: webgpu ? ["webgpu", "wasm"] : ["wasm"], graphOptimizationLevel: "all" };
  $("backend").textContent = `${webgpu ? "WebGPU" : "WebAssembly"}, ${ort.env.wasm.numThreads} thread${ort.env.wasm.numThreads > 1 ? "s" : ""}`
    + (self.crossOriginIsolated ? "" : " (not isolated)");
}

async function landmarker(model) {
  if (!state.landmarkers[model]) state.landmarkers[model] = Landmarker.create(state.ort, MODELS, model, state.sessionOptions).then(warmedUp);
  return state.landmarkers[model];
}

/** Each network run once on a blank input: their first run (WebAssembly compilation, memory) happens while the
 * page loads, not on the first photo. */
async function warmedUp(lm) {
  if (!window.facemarkTimings.sessions) window.facemarkTimings.sessions = performance.now();
  const blank = { width: 64, height: 48, data: new Uint8Array(64 * 48 * 3) };
  await lm.detector.detectPadded(blank, 0);
  const crop = { width: lm.network.size, height: lm.network.size, data: new Uint8Array(lm.network.size ** 2 * 3) };
  await lm.network.predict([crop]); // tracking's batch
  await lm.network.predict([crop, crop]); // a face and its mirror
  if (lm.eyes) await lm.eyes.warmUp(); // the eye refiner (face88)
  return lm;
}

// ---------------------------------------------------------------------------------------- results

function faceRecord(f, width, height) {
  const r2 = (v) => Math.round(v * 100) / 100;
  const d = { box: f.box.map(r2), score: Math.round(f.score * 1e4) / 1e4, points: f.points.map(([x, y]) => [r2(x), r2(y)]) };
  if (f.trust !== undefined) d.trust = Math.round(f.trust * 1e4) / 1e4;
  const outside = f.points.flatMap(([x, y], i) => (x >= -0.5 && x <= width - 0.5 && y >= -0.5 && y <= height - 0.5 ? [] : [i]));
  if (outside.length) d.outside = outside;
  return d;
}

function publish(faces, img, ms, scheme, parts = null) {
  const now = performance.now();
  state.stamps.push(now);
  while (state.stamps.length > 2 && now - state.stamps[0] > 2000) state.stamps.shift();
  const n = state.stamps.length;
  const fps = n > 1 ? ((n - 1) * 1000) / (state.stamps[n - 1] - state.stamps[0]) : 0;
  state.last = { faces, width: img.width, height: img.height, scheme };
  window.facemarkLast = {
    source: state.source, frame: state.frame, fps: Math.round(fps * 10) / 10, ms: Math.round(ms * 10) / 10,
    model: state.model, width: img.width, height: img.height,
    faces: faces.map((f) => ({ box: f.box, score: f.score, points: f.points, ...(f.trust !== undefined ? { trust: f.trust } : {}) })),
  };
  window.facemarkLog.push({ frame: state.frame, faces: faces.length, points: faces.length ? faces[0].points.length : 0,
    ms: Math.round(ms * 10) / 10, t: Math.round(now), ...(parts ? { parts } : {}) });
  if (window.facemarkLog.length > MAX_LOG) window.facemarkLog.shift();
  if (!window.facemarkTimings.firstResult) window.facemarkTimings.firstResult = now - window.facemarkTimings.start;
  state.frame++;
  $("download").disabled = false;
  $("fps").textContent = state.running ? fps.toFixed(1) : "–";
  $("ms").textContent = `${ms.toFixed(1)} ms`;
  $("faces").textContent = String(faces.length);
  const f = faces[0];
  const o = f && openness(f.points, scheme);
  $("trust").textContent = f && f.trust !== undefined ? f.trust.toFixed(2) : "–";
  $("eyes").textContent = o ? `${o.eyes[0].toFixed(2)}, ${o.eyes[1].toFixed(2)}` : "–";
  $("mouth").textContent = o ? o.mouth.toFixed(2) : "–";
  $("roll").textContent = f ? `${((rollAngle(f.points, scheme) * 180) / Math.PI).toFixed(1)}°` : "–";
}

function draw(source, faces, scheme, width, height) {
  const view = $("view");
  if (view.width !== width || view.height !== height) [view.width, view.height] = [width, height];
  const g = view.getContext("2d");
  g.drawImage(source, 0, 0, width, height);
  const r = Math.max(1.5, Math.min(width, height) / 220);
  g.lineWidth = Math.max(1, r / 1.5);
  for (const f of faces) {
    g.strokeStyle = "#fff";
    g.strokeRect(f.box[0], f.box[1], f.box[2] - f.box[0], f.box[3] - f.box[1]);
    let start = 0;
    scheme.regions.forEach(([, count], k) => {
      g.fillStyle = PALETTE[k % PALETTE.length];
      for (let i = start; i < start + count; i++) {
        g.beginPath();
        g.arc(f.points[i][0], f.points[i][1], r, 0, 2 * Math.PI);
        g.fill();
      }
      start += count;
    });
  }
  $("hint").hidden = true;
}

function legend(scheme) {
  $("legend").replaceChildren(...scheme.regions.map(([name], k) => {
    const li = document.createElement("li");
    li.innerHTML = `<span style="background:${PALETTE[k % PALETTE.length]}"></span>${name.replaceAll("_", " ")}`;
    return li;
  }));
}

// ---------------------------------------------------------------------------------------- inputs

const work = document.createElement("canvas");
const workContext = work.getContext("2d", { willReadFrequently: true });

function pixels(source, width, height) {
  if (work.width !== width || work.height !== height) [work.width, work.height] = [width, height];
  workContext.drawImage(source, 0, 0, width, height);
  return fromRGBA(workContext.getImageData(0, 0, width, height).data, width, height);
}

async function runPhoto(bitmap) {
  stopLive();
  const lm = await landmarker(state.model);
  legend(lm.scheme);
  state.image = bitmap;
  state.frame = 0;
  state.stamps = [];
  const t0 = performance.now();
  const img = pixels(bitmap, bitmap.width, bitmap.height);
  const faces = await lm.detect(img);
  const ms = performance.now() - t0;
  draw(work, faces, lm.scheme, img.width, img.height);
  publish(faces, img, ms, lm.scheme);
  $("status").textContent = `${state.name}: ${faces.length} face${faces.length === 1 ? "" : "s"}`;
}

async function openFile(file) {
  if (!file) return;
  state.name = file.name;
  state.source = "file";
  try {
    if (file.type.startsWith("video/")) {
      stopLive();
      const video = $("video");
      video.srcObject = null;
      video.src = URL.createObjectURL(file);
      video.loop = true;
      await video.play();
      await runLive(video);
    } else {
      // the file's own pixels: no colour-profile conversion, as Pillow reads them; EXIF orientation applied
      const bitmap = await createImageBitmap(file, { imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none" });
      await runPhoto(bitmap);
    }
  } catch (e) {
    fail(e);
  }
}

async function startCamera() {
  try {
    stopLive();
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    const video = $("video");
    video.srcObject = stream;
    state.source = "camera";
    state.name = "camera";
    await video.play();
    $("camera").textContent = "Stop camera";
    await runLive(video);
  } catch (e) {
    fail(e);
  }
}

function stopLive() {
  state.live++;
  state.running = false;
  const video = $("video");
  if (video.srcObject) video.srcObject.getTracks().forEach((t) => t.stop());
  video.srcObject = null;
  if (!video.paused) video.pause();
  $("camera").textContent = "Start camera";
}

/** Counts the frames the video presents (requestVideoFrameCallback); `next(seen)` resolves once a frame newer
 * than the `seen`-th is there, at once when one already is: a slow frame never makes the loop skip a turn. */
function frameWatcher(video, token) {
  const w = { count: 0, time: null, waiters: [] };
  const tick = (now, meta) => {
    if (state.live !== token) return;
    w.count++;
    w.time = meta ? meta.mediaTime : video.currentTime;
    w.waiters.splice(0).forEach((resolve) => resolve());
    schedule();
  };
  let lastTime = -1;
  const poll = () => { // browsers without requestVideoFrameCallback: a new currentTime is a new frame
    if (video.currentTime !== lastTime) { lastTime = video.currentTime; tick(); } else schedule();
  };
  const schedule = () => ("requestVideoFrameCallback" in video ? video.requestVideoFrameCallback(tick) : requestAnimationFrame(poll));
  schedule();
  w.next = (seen) => (w.count > seen ? Promise.resolve() : new Promise((resolve) => w.waiters.push(resolve)));
  return w;
}

/** Frames of a playing video (a file or the camera) through the tracker, the newest frame as soon as the last
 * is done: the frame rate shown is what this browser sustains, at most the source's own. */
async function runLive(video) {
  const token = ++state.live;
  state.running = true;
  const lm = await landmarker(state.model);
  legend(lm.scheme);
  const tracker = new FaceTracker(lm);
  const frames = frameWatcher(video, token);
  state.frame = 0;
  state.stamps = [];
  $("status").textContent = `${state.name}: ${video.videoWidth}×${video.videoHeight}`;
  let seen = 0;
  while (state.live === token) {
    await frames.next(seen);
    if (state.live !== token) break;
    seen = frames.count;
    const t0 = performance.now();
    const img = pixels(video, video.videoWidth, video.videoHeight);
    const t1 = performance.now();
    const faces = await tracker.update(img, frames.time);
    if (state.live !== token) break;
    const t2 = performance.now();
    draw(work, faces, lm.scheme, img.width, img.height);
    const t3 = performance.now();
    publish(faces, img, t3 - t0, lm.scheme, { read: t1 - t0, track: t2 - t1, draw: t3 - t2 });
  }
}

function download() {
  if (!state.last) return;
  const { faces, width, height } = state.last;
  const record = { image: state.running ? `${state.name} frame ${window.facemarkLast.frame}` : state.name, width, height,
    faces: faces.map((f) => faceRecord(f, width, height)), error: null };
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([JSON.stringify(record) + "\n"], { type: "application/json" }));
  a.download = `${(state.name || "frame").replace(/\.[^.]+$/, "")}_points.json`;
  a.click();
  URL.revokeObjectURL(a.href);
}

function fail(e) {
  console.error(e);
  $("status").textContent = `error: ${e.message || e}`;
}

// ---------------------------------------------------------------------------------------- wiring

$("file").addEventListener("change", (e) => openFile(e.target.files[0]));
$("camera").addEventListener("click", () => (state.source === "camera" && $("video").srcObject ? stopLive() : startCamera()));
$("download").addEventListener("click", download);
$("model").addEventListener("change", async (e) => {
  state.model = e.target.value;
  try {
    await landmarker(state.model);
    if (state.source === "camera" && $("video").srcObject) await runLive($("video"));
    else if (state.source === "file" && state.running) await runLive($("video"));
    else if (state.source === "file" && state.image) await runPhoto(state.image);
  } catch (err) {
    fail(err);
  }
});
const stage = $("stage");
stage.addEventListener("dragover", (e) => { e.preventDefault(); stage.classList.add("over"); });
stage.addEventListener("dragleave", () => stage.classList.remove("over"));
stage.addEventListener("drop", (e) => {
  e.preventDefault();
  stage.classList.remove("over");
  openFile(e.dataTransfer.files[0]);
});

try {
  await loadRuntime();
  window.facemarkTimings.runtime = performance.now();
  await landmarker(state.model);
  window.facemarkTimings.ready = performance.now() - window.facemarkTimings.start;
  $("status").textContent = `ready (${(window.facemarkTimings.ready / 1000).toFixed(1)} s)`;
  // for a person's own script: the faces in an ImageData (or {width, height, data} RGBA), as the page finds them
  window.facemarkDetect = async (imageData, model = "face88") =>
    (await landmarker(model)).detect(fromRGBA(imageData.data, imageData.width, imageData.height));
  window.facemarkReady = true;
} catch (e) {
  fail(e);
}
