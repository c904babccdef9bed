// The deeproots wasm engine in the speed comparison (web/bench/index.html): installs
//
//   window.deeprootsBench = async (modelUrl, { runs, warmup, input, shape, tune }) =>
//       { times, output, adapter, load_ms, kernels }
//
// One timed run = write the input, run, read the logits back (as the ORT rows are timed); loading
// the model file and building the plan (with `tune`, also measuring each convolution's kernels on
// this adapter, engine.loadTuned) are left out and reported as load_ms; `kernels` names the
// kernel each convolution runs when tuned. Needs the wasm
// package (web/build.sh); without it the page reports the deeproots rows as skipped.

let engine = null;

async function open() {
  if (engine) return engine;
  const pkg = await import("../pkg/deeproots_web.js");
  await pkg.default();
  engine = await pkg.Engine.create();
  return engine;
}

try {
  await open();
  window.deeprootsBench = async (modelUrl, { runs, warmup, input, shape, tune }) => {
    const t0 = performance.now();
    const r = await fetch(modelUrl);
    if (!r.ok) throw new Error(`${modelUrl}: HTTP ${r.status}`);
    const bytes = new Uint8Array(await r.arrayBuffer());
    const batch = shape[0];
    const model = tune ? await engine.loadTuned(bytes, batch) : engine.load(bytes);
    const kernels = tune ? model.tuning().map((l) => `${l.node} ${l.chosen}`).join(", ") : undefined;
    let output = await model.run(input, batch); // builds the plan and the pipelines
    const load_ms = performance.now() - t0;
    for (let i = 0; i < warmup; i++) await model.run(input, batch);
    const times = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      output = await model.run(input, batch);
      times.push(performance.now() - t);
    }
    model.free();
    return { times, output, adapter: engine.adapter(), load_ms, kernels };
  };
} catch (e) {
  console.warn(`deeproots engine not available: ${e.message ?? e}`);
}
