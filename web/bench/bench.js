// Times NIN-CIFAR at batch 1 with ONNX Runtime Web (WebGPU and wasm execution providers) and,
// when the page has it, the deeproots wasm engine, all on one fixed random input. The results go
// into <pre id="results"> as JSON (data-state="done" when finished) for web/bench/run.mjs.
//
// Files, as web/serve.mjs serves them: ONNX models at /onnx/<name>.onnx (python/export_onnx.py),
// deeproots model files at /generated/models/<name>.safetensors (`deeproots zoo export`).

const params = new URLSearchParams(location.search);
const list = (key, fallback) => (params.get(key) ?? fallback).split(",").filter(Boolean);
const config = {
  models: list("models", "nin,nin-root-8"),
  providers: list("providers", "webgpu,wasm,deeproots,deeproots-tuned"),
  runs: Number(params.get("runs") ?? 10),
  warmup: Number(params.get("warmup") ?? 3),
  threads: Number(params.get("threads") ?? 2),
  build: params.get("build") ?? "default",
};
const BUILDS = {
  default: "/node_modules/onnxruntime-web/dist/ort.min.mjs", // JSEP WebGPU provider + wasm
  webgpu: "/node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs", // C++ WebGPU provider (asyncify)
};
const onnxUrl = (model) => `/onnx/${model}.onnx`;
const deeprootsUrl = (model) => `/generated/models/${model}.safetensors`;
const INPUT_SHAPE = [1, 3, 32, 32];

const $ = (id) => document.getElementById(id);
const status = (text) => ($("status").textContent = text);
const results = {
  done: false,
  config,
  ort_version: null,
  user_agent: navigator.userAgent,
  cross_origin_isolated: globalThis.crossOriginIsolated === true,
  hardware_concurrency: navigator.hardwareConcurrency,
  adapter: null,
  rows: [],
  errors: [],
};
const publish = () => {
  $("results").textContent = JSON.stringify(results, null, 2);
  window.benchResults = results;
};

/** Same numbers on every run and page: a small LCG mapped to [-1, 1). */
function fixedInput(shape) {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let s = 12345;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  return data;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function relL2(a, b) {
  if (a.length !== b.length) return NaN;
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += a[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

async function adapterInfo() {
  if (!navigator.gpu) return { error: "navigator.gpu is undefined (no WebGPU in this browser)" };
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return { error: "navigator.gpu.requestAdapter() returned null" };
  const info = adapter.info ?? (await adapter.requestAdapterInfo?.()) ?? {};
  // GPUAdapterInfo's fields are prototype getters, which JSON.stringify skips: copy them.
  const out = {};
  for (const k of ["vendor", "architecture", "device", "description", "isFallbackAdapter"]) {
    if (info[k] !== undefined) out[k] = info[k];
  }
  out.features = [...adapter.features].sort();
  return out;
}

/** Warm-up runs, then `runs` timed ones; each `run()` must finish its work before resolving. */
async function time(run, warmup, runs) {
  let output;
  for (let i = 0; i < warmup; i++) output = await run();
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    output = await run();
    times.push(performance.now() - t0);
  }
  return { times, output };
}

async function benchOrt(ort, model, provider, input) {
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(onnxUrl(model), {
    executionProviders: [provider],
    graphOptimizationLevel: "all",
  });
  const sessionMs = performance.now() - t0;
  try {
    const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", input, INPUT_SHAPE) };
    const outName = session.outputNames[0];
    const t1 = performance.now();
    await session.run(feeds);
    const firstRunMs = performance.now() - t1;
    const { times, output } = await time(
      async () => (await session.run(feeds))[outName].data, // output on the CPU: read back
      Math.max(config.warmup - 1, 0),
      config.runs,
    );
    return { times, output: Float32Array.from(output), session_ms: sessionMs, first_run_ms: firstRunMs };
  } finally {
    await session.release();
  }
}

// ---------------------------------------------------------------------------------------------
// HOOK for the deeproots wasm engine (see ./deeproots.js, which is where it is installed):
//
//   window.deeprootsBench = async (modelUrl, { runs, warmup, input, shape, tune }) => result
//
//   modelUrl  URL of a deeproots model file, e.g. "/generated/models/nin-root-8.safetensors"
//   input     Float32Array, NCHW, the same batch ORT-web gets; shape = [1, 3, 32, 32]
//   tune      false: the engine's default kernels (provider "deeproots"); true: kernels measured
//             on this adapter when the model loads (provider "deeproots-tuned")
//   result    a number (the median ms of `runs` timed runs after `warmup` untimed ones), or
//             { times: number[] (ms per timed run) or median_ms: number, output?: Float32Array
//               (logits, compared with ORT-web's wasm output), adapter?: string, load_ms?: number }
//
// Time it as the ORT rows are timed: one run = upload the input, run, read the output back.
// ---------------------------------------------------------------------------------------------
async function benchDeeproots(model, input, tune) {
  if (typeof window.deeprootsBench !== "function") return null;
  const r = await window.deeprootsBench(deeprootsUrl(model), {
    runs: config.runs,
    warmup: config.warmup,
    input,
    shape: INPUT_SHAPE,
    tune,
  });
  if (typeof r === "number") return { median_ms: r };
  return r;
}

function addRow(row) {
  results.rows.push(row);
  const tr = document.createElement("tr");
  const f = (x) => (typeof x === "number" ? x.toFixed(2) : (x ?? ""));
  for (const v of [row.model, row.provider, f(row.median_ms) || row.error || row.skipped, f(row.min_ms), f(row.max_ms), f(row.session_ms)]) {
    const td = document.createElement("td");
    td.textContent = v;
    tr.append(td);
  }
  $("table").tBodies[0].append(tr);
  publish();
}

async function main() {
  publish();
  status("WebGPU adapter");
  results.adapter = await adapterInfo().catch((e) => ({ error: String(e) }));
  $("adapter").textContent = "WebGPU adapter: " + JSON.stringify(results.adapter);

  await import("./deeproots.js"); // installs window.deeprootsBench once the engine is built

  status(`loading ${BUILDS[config.build]}`);
  const ort = await import(BUILDS[config.build]);
  results.ort_version = ort.env.versions?.web ?? ort.env.versions?.common ?? null;
  ort.env.wasm.wasmPaths = "/node_modules/onnxruntime-web/dist/";
  ort.env.wasm.numThreads = config.threads; // read once, when the wasm runtime starts
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "warning";

  const input = fixedInput(INPUT_SHAPE);
  for (const model of config.models) {
    const outputs = {};
    for (const provider of config.providers) {
      status(`${model} / ${provider}`);
      const ours = provider.startsWith("deeproots");
      const row = { model, provider, build: ours ? null : config.build };
      if (provider === "wasm") row.threads = config.threads;
      try {
        const r = ours ? await benchDeeproots(model, input, provider === "deeproots-tuned") : await benchOrt(ort, model, provider, input);
        if (r === null) {
          row.skipped = "window.deeprootsBench is not defined";
        } else {
          const { times, output, ...rest } = r;
          if (times?.length) {
            const ms = (t) => Math.round(t * 1000) / 1000;
            Object.assign(row, { median_ms: ms(median(times)), min_ms: ms(Math.min(...times)), max_ms: ms(Math.max(...times)), runs_ms: times.map(ms) });
          }
          Object.assign(row, rest);
          if (output) outputs[provider] = output;
        }
      } catch (e) {
        row.error = String(e?.message ?? e);
        results.errors.push(`${model} / ${provider}: ${row.error}`);
      }
      addRow(row);
    }
    // Every provider ran the same weights on the same input: their logits must agree.
    const ref = outputs.wasm ?? Object.values(outputs)[0];
    for (const row of results.rows.filter((r) => r.model === model && outputs[r.provider])) {
      row.rel_l2_vs_wasm = outputs.wasm ? relL2(outputs[row.provider], ref) : null;
      row.logits = Array.from(outputs[row.provider].slice(0, 10), (v) => +v.toPrecision(6));
    }
    publish();
  }
}

main()
  .catch((e) => results.errors.push(String(e?.stack ?? e)))
  .finally(() => {
    results.done = true;
    status(results.errors.length ? `done, ${results.errors.length} error(s)` : "done");
    publish();
    $("results").dataset.state = "done";
  });
