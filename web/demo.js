// The demo page: opens WebGPU through the deeproots wasm package (web/pkg, built by
// web/build.sh), loads a model file, and classifies a drawing, a test image or an image file.
//
// For tests the page exposes `window.demo` (see the end of this file).

import init, { Engine } from "./pkg/deeproots_web.js";
import { readSafetensors } from "./safetensors.js";

// The shipped Fashion-MNIST models (models/manifest.json, root-8 first), then EfficientNet-Lite0,
// present when scripts/fetch_imagenet_assets.sh and python/convert_efficientnet.py have run.
const MODELS = [];

async function listModels() {
  const manifest = await (await fetch("/models/manifest.json")).json();
  manifest.sort((a, b) => (b.name === "nin28-root-8") - (a.name === "nin28-root-8"));
  for (const m of manifest) {
    MODELS.push({ name: m.name, url: `/models/${m.file}`, ref: m.reference && `/models/${m.reference}` });
  }
  MODELS.push({ name: "efficientnet-lite0", url: "/data/efficientnet-lite0.safetensors", optional: true });
}

const $ = (id) => document.getElementById(id);
const state = { engine: null, model: null, entry: null, refs: null };

function status(text, err = false) {
  $("status").textContent = text;
  $("status").className = err ? "err" : "";
}

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

function softmax(logits) {
  const m = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** Runs one image's input and shows the top classes and the time. */
async function classify(input) {
  const t0 = performance.now();
  const logits = Array.from(await state.model.run(input, 1));
  const ms = performance.now() - t0;
  const probs = softmax(logits);
  const labels = state.model.labels();
  const order = probs.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]).slice(0, 5);
  const body = $("top").tBodies[0];
  body.innerHTML = "";
  for (const [p, i] of order) {
    const tr = body.insertRow();
    tr.insertCell().textContent = labels[i] ?? `class ${i}`;
    tr.insertCell().className = "p";
    tr.cells[1].textContent = (100 * p).toFixed(1) + "%";
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = `${Math.max(1, 120 * p)}px`;
    tr.insertCell().appendChild(bar);
  }
  $("time").textContent = `${ms.toFixed(1)} ms (batch 1, input upload to logits read back)`;
  preview(input);
  return { logits, top: order.map(([p, i]) => ({ index: i, label: labels[i], probability: p })), ms };
}

/** Draws a normalized [C, H, W] input, stretched to 0..255 per image. */
function drawInput(canvas, input, shape) {
  const [c, h, w] = shape;
  canvas.width = w;
  canvas.height = h;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of input) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    for (let k = 0; k < 3; k++) {
      img.data[4 * i + k] = (input[(c === 1 ? 0 : k) * h * w + i] - lo) * scale;
    }
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function preview(input) {
  drawInput($("preview"), input, Array.from(state.model.inputShape()));
}

// `tune`: measure each convolution's kernels on this adapter for batch 1 and keep the fastest.
async function loadModel(entry, tune = false) {
  status(`loading ${entry.name}${tune ? " (tuning its kernels)" : ""}`);
  const t0 = performance.now();
  const bytes = await fetchBytes(entry.url);
  state.model?.free();
  state.model = tune ? await state.engine.loadTuned(bytes, 1) : state.engine.load(bytes);
  state.entry = entry;
  $("model").value = entry.name;
  $("top").tBodies[0].innerHTML = "";
  $("time").textContent = "-";
  const shape = Array.from(state.model.inputShape());
  $("modelinfo").textContent =
    `${(bytes.length / 1e6).toFixed(2)} MB, input ${shape.join("x")}, ` +
    `${(state.model.multiplyAdds() / 1e6).toFixed(1)} M multiply-adds`;
  await showSamples(entry);
  status(`${entry.name} loaded in ${(performance.now() - t0).toFixed(0)} ms`);
}

/** Thumbnails of the reference batch shipped beside a Fashion-MNIST model. */
async function showSamples(entry) {
  const box = $("samples");
  box.innerHTML = "";
  state.refs = null;
  if (!entry.ref) return;
  const ref = readSafetensors(await fetchBytes(entry.ref));
  const [n, c, h, w] = ref.image.shape;
  const per = c * h * w;
  state.refs = { images: ref.image.data, n, per, pytorch: ref.logits.data };
  for (let i = 0; i < n; i++) {
    const cv = document.createElement("canvas");
    const input = ref.image.data.slice(i * per, (i + 1) * per);
    drawInput(cv, input, [c, h, w]);
    cv.title = `test image ${i}`;
    cv.onclick = async () => {
      for (const o of box.children) o.classList.remove("sel");
      cv.classList.add("sel");
      await guard(() => classify(input));
    };
    box.appendChild(cv);
  }
}

async function guard(f) {
  try {
    return await f();
  } catch (e) {
    status(String(e.message ?? e), true);
    throw e;
  }
}

// Drawing: white on black, as Fashion-MNIST's items are light on a dark background.
function setupDrawing() {
  const cv = $("draw");
  const ctx = cv.getContext("2d");
  const clear = () => {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, cv.width, cv.height);
  };
  clear();
  let down = false;
  const at = (e) => {
    const r = cv.getBoundingClientRect();
    return [(e.clientX - r.left) * (cv.width / r.width), (e.clientY - r.top) * (cv.height / r.height)];
  };
  cv.onpointerdown = (e) => {
    down = true;
    cv.setPointerCapture(e.pointerId);
    ctx.beginPath();
    ctx.moveTo(...at(e));
  };
  cv.onpointermove = (e) => {
    if (!down) return;
    ctx.lineWidth = 22;
    ctx.lineCap = "round";
    ctx.strokeStyle = "#fff";
    ctx.lineTo(...at(e));
    ctx.stroke();
  };
  cv.onpointerup = async () => {
    down = false;
    await guard(() => classifyDrawing());
  };
  $("clear").onclick = clear;
}

/** The drawing scaled to the model's input, as gray pixels. */
function drawingPixels() {
  const [, h, w] = Array.from(state.model.inputShape());
  const small = document.createElement("canvas");
  small.width = w;
  small.height = h;
  const ctx = small.getContext("2d");
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage($("draw"), 0, 0, w, h);
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const c = state.model.inputShape()[0];
  const px = new Uint8Array(w * h * c);
  for (let i = 0; i < w * h; i++) {
    for (let k = 0; k < c; k++) px[i * c + k] = rgba[4 * i + k];
  }
  return px;
}

async function classifyDrawing() {
  return classify(state.model.pixelsInput(drawingPixels()));
}

/** The engine's adapter, with what the browser says of it (WebGPU hides most names). */
async function adapterLine() {
  const info = (await navigator.gpu.requestAdapter())?.info;
  const extra = info ? [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") : "";
  return extra ? `${state.engine.adapter()}: ${extra}` : state.engine.adapter();
}

async function main() {
  await init();
  if (!navigator.gpu) throw new Error("this browser has no WebGPU (navigator.gpu is missing)");
  state.engine = await Engine.create();
  $("adapter").textContent = await adapterLine();
  const select = $("model");
  await listModels();
  for (const m of MODELS) {
    if (m.optional && !(await fetch(m.url, { method: "HEAD" })).ok) continue;
    select.add(new Option(m.name, m.name));
  }
  select.onchange = () => guard(() => loadModel(MODELS.find((m) => m.name === select.value)));
  $("file").onchange = async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    await guard(async () => classify(state.model.imageInput(new Uint8Array(await f.arrayBuffer()))));
  };
  setupDrawing();
  await loadModel(MODELS[0]);
}

const ready = main().catch((e) => {
  status(`error: ${e.message ?? e}`, true);
  throw e;
});

// For tests and the console: everything the page does, callable.
window.demo = {
  ready,
  adapter: () => state.engine.adapter(),
  model: () => state.entry?.name,
  load: (name, tune = false) => loadModel(MODELS.find((m) => m.name === name), tune),
  /** What loading with tuning chose: [{node, rule, chosen, ms, cached, candidates}]. */
  tuning: () => state.model.tuning(),
  /** Logits of `batch` images (a Float32Array of batch x C x H x W normalized values). */
  logits: async (input, batch) => Array.from(await state.model.run(new Float32Array(input), batch)),
  pixelsInput: (pixels) => Array.from(state.model.pixelsInput(new Uint8Array(pixels))),
  classifyPixels: (pixels) => classify(state.model.pixelsInput(new Uint8Array(pixels))),
  classifySample: (i) => $("samples").children[i].onclick(),
  references: () => state.refs,
};
