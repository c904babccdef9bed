// HOOK: the deeproots wasm engine in the speed comparison (web/bench/index.html).
//
// This module is imported by bench.js before any timing starts. Once the wasm package exists,
// install the timing function here:
//
//   window.deeprootsBench = async (modelUrl, { runs, warmup, input, shape }) => result
//
//   modelUrl  URL of a deeproots model file, e.g. "/generated/models/nin-root-8.safetensors"
//   input     Float32Array, NCHW, the same batch ORT-web gets; shape is [1, 3, 32, 32]
//   result    the median ms of `runs` timed runs after `warmup` untimed ones, as a number, or
//             { times: number[] (ms per timed run; the page takes the median) or median_ms: number,
//               output?: Float32Array (the logits: the page compares them with ORT-web's wasm
//               provider, rel_l2_vs_wasm), adapter?: string, load_ms?: number }
//
// Time it as the ORT rows are timed: one run = write the input, run, read the output back, and
// leave loading the model and building the plan out of the timed runs (report it as load_ms).
//
// Until then this module does nothing and the page reports the deeproots rows as skipped.
