//! Kernel choice by measurement: for every convolution of a model, time each kernel that can
//! run it ([`ConvParams::candidates`]) on the layer's own shape at the batch size that will
//! run, on the device that will run it, and keep the fastest. Choices are cached per adapter,
//! precision, layer shape and build of the kernels ([`TuneCache`], [`KERNELS`]): in memory,
//! and on native targets in a JSON file, so a model is tuned once per machine and again after
//! an update that changes its kernels.
//!
//! Without tuning each layer takes [`ConvParams::algorithm`]'s fixed rule; `DEEPROOTS_CONV`
//! forces one kernel for experiments and leaves nothing to tune.

use crate::error::{invalid, Result};
use crate::gpu::{Gpu, GpuBuffer, Timing};
use crate::graph::{Graph, Op};
use crate::ops::conv2d::{ConvAlgorithm, ConvParams};
use crate::Precision;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Timed runs per candidate after its first.
const RUNS: usize = 5;
/// A candidate whose first run after the warm-up is slower than this multiple of the best so far
/// is not run again (the direct kernel on a large layer would otherwise cost seconds on a CPU
/// adapter).
const GIVE_UP: f64 = 3.0;
/// The cache file format.
const VERSION: u32 = 1;

/// A fingerprint of this build's kernels: a hash of the WGSL sources and of the code that
/// assembles, chooses and launches the convolution kernels, and of the wgpu and naga versions
/// Cargo.lock pins (naga translates the WGSL), taken at build time (build.rs).
/// Part of every [`layer_key`]: a kernel twice as fast or slow after an update (it happens on
/// CPU adapters after changes that look harmless) makes earlier measurements wrong.
pub const KERNELS: &str = env!("DEEPROOTS_KERNELS");

/// Tuned kernel choices, keyed by [`layer_key`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TuneCache {
    version: u32,
    entries: BTreeMap<String, CachedChoice>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedChoice {
    algorithm: String,
    ms: f64,
}

impl Default for TuneCache {
    fn default() -> Self {
        Self::new()
    }
}

impl TuneCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self {
            version: VERSION,
            entries: BTreeMap::new(),
        }
    }

    /// Cached layers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cached choice for a key and its time in ms.
    pub fn get(&self, key: &str) -> Option<(ConvAlgorithm, f64)> {
        let c = self.entries.get(key)?;
        Some((ConvAlgorithm::parse(&c.algorithm)?, c.ms))
    }

    /// Records a choice.
    pub fn insert(&mut self, key: String, algorithm: ConvAlgorithm, ms: f64) {
        self.entries.insert(
            key,
            CachedChoice {
                algorithm: algorithm.name().to_string(),
                ms,
            },
        );
    }

    /// Adds `other`'s entries, replacing those with the same key.
    pub fn extend(&mut self, other: TuneCache) {
        self.entries.extend(other.entries);
    }

    /// Parses the JSON [`Self::to_json`] writes.
    pub fn from_json(text: &str) -> Result<Self> {
        let cache: Self = serde_json::from_str(text)
            .map_err(|e| invalid("tune cache", format!("not a tuning cache: {e}")))?;
        if cache.version != VERSION {
            return Err(invalid(
                "tune cache",
                format!(
                    "format version {} (this build reads {VERSION})",
                    cache.version
                ),
            ));
        }
        Ok(cache)
    }

    /// The cache as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a cache file; a missing file is an empty cache.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(path: &std::path::Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_json(&text).map_err(|e| {
                invalid(
                    "tune cache",
                    format!("{}: {e} (delete the file to start afresh)", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::new()),
            Err(e) => Err(invalid("tune cache", format!("{}: {e}", path.display()))),
        }
    }

    /// Writes the cache file (and its directory), replacing it whole.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let fail = |e: std::io::Error| invalid("tune cache", format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, self.to_json()).map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(fail)
    }

    /// Where the command-line tool keeps its cache: `DEEPROOTS_TUNE_CACHE`, else
    /// `$XDG_CACHE_HOME/deeproots/tune.json`, else `$HOME/.cache/deeproots/tune.json`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn default_path() -> Option<std::path::PathBuf> {
        use std::path::PathBuf;
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        if let Some(p) = var("DEEPROOTS_TUNE_CACHE") {
            return Some(PathBuf::from(p));
        }
        let base = var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("deeproots").join("tune.json"))
    }
}

/// The cache key of a convolution on this device: adapter, backend, driver, precision, the
/// layer's parameters (activation aside: it costs nothing), its input shape and [`KERNELS`].
pub fn layer_key(gpu: &Gpu, precision: Precision, p: &ConvParams, input: &[usize]) -> String {
    let a = gpu.adapter();
    let j = |v: &[usize]| {
        v.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("x")
    };
    format!(
        "{} ({}, {} {}) {:?} | conv c_in {} c_out {} groups {} kernel {} stride {} dilation {} pad {} | input {} | kernels {}",
        a.name,
        a.backend,
        a.driver,
        a.driver_info,
        precision,
        p.c_in,
        p.c_out,
        p.groups,
        j(&p.kernel),
        j(&p.stride),
        j(&p.dilation),
        j(&p.padding),
        j(input),
        KERNELS
    )
}

/// One candidate's time.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateTime {
    /// The kernel.
    pub algorithm: ConvAlgorithm,
    /// Best of its runs in ms (`None`: it could not run on this device, e.g. a grid too large).
    pub ms: Option<f64>,
    /// Runs timed (1 where it was given up after its first).
    pub runs: usize,
}

/// What tuning found for one convolution.
#[derive(Debug, Clone, Serialize)]
pub struct LayerTuning {
    /// The node.
    pub node: String,
    /// Its input shape at the tuned batch.
    pub input: Vec<usize>,
    /// Its multiply-adds at the tuned batch.
    pub multiply_adds: u64,
    /// The fixed rule's choice ([`ConvParams::algorithm`]).
    pub rule: ConvAlgorithm,
    /// The fastest.
    pub chosen: ConvAlgorithm,
    /// The chosen kernel's time in ms.
    pub ms: f64,
    /// Each candidate's time (empty when the choice came from the cache).
    pub candidates: Vec<CandidateTime>,
    /// The choice came from the cache.
    pub cached: bool,
}

/// The outcome of tuning a model.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tuning {
    /// Batch size tuned for.
    pub batch: usize,
    /// How runs were timed: `gpu-timestamps` or `wall-clock`; `none` where the device has
    /// neither (a browser adapter without timestamp queries): then every layer keeps the rule.
    pub timer: String,
    /// One entry per convolution, in graph order.
    pub layers: Vec<LayerTuning>,
}

impl Tuning {
    /// The chosen kernel per convolution node.
    pub fn choices(&self) -> HashMap<String, ConvAlgorithm> {
        self.layers
            .iter()
            .map(|l| (l.node.clone(), l.chosen))
            .collect()
    }
}

/// Tunes every convolution of `graph` for `batch` images on `gpu`, reading and filling
/// `cache`. `progress(done, total)` is called after each layer.
pub async fn tune_async(
    gpu: &Gpu,
    graph: &Graph,
    precision: Precision,
    batch: usize,
    cache: &mut TuneCache,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<Tuning> {
    if batch == 0 {
        return Err(invalid("tune", "batch size must be at least 1"));
    }
    let timer = if gpu.adapter().timestamp_query {
        "gpu-timestamps"
    } else if cfg!(target_arch = "wasm32") {
        "none"
    } else {
        "wall-clock"
    };
    let target = crate::ops::target(gpu);
    let convs: Vec<_> = graph
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Conv2d { params, .. } => Some((n, params)),
            _ => None,
        })
        .collect();
    let mut layers = Vec::with_capacity(convs.len());
    for (i, (node, p)) in convs.iter().enumerate() {
        let input = graph
            .shape(&node.inputs[0], batch)
            .ok_or_else(|| invalid(&node.name, "input has no shape"))?;
        let out = p.out_dims(&input)?;
        let rule = p.algorithm(target);
        let key = layer_key(gpu, precision, p, &input);
        let mut layer = LayerTuning {
            node: node.name.clone(),
            multiply_adds: p.multiply_adds(out) * batch as u64,
            input: input.clone(),
            rule,
            chosen: rule,
            ms: f64::NAN,
            candidates: Vec::new(),
            cached: false,
        };
        let candidates = p.candidates(target);
        match cache.get(&key) {
            Some((a, ms)) if candidates.contains(&a) => {
                layer.chosen = a;
                layer.ms = ms;
                layer.cached = true;
            }
            _ if timer == "none" || candidates.len() < 2 => {}
            _ => {
                let mut best: Option<(ConvAlgorithm, f64)> = None;
                // Output, input and bias are the same for every kernel: made and filled once.
                let shared = layer_buffers(gpu, precision, p, &input)?;
                for a in candidates {
                    let t = match &shared {
                        Some(s) => {
                            time_candidate(gpu, precision, p, &input, s, a, best.map(|b| b.1))
                                .await?
                        }
                        None => (None, 0),
                    };
                    if let (Some(ms), _) = t {
                        if best.is_none_or(|(_, b)| ms < b) {
                            best = Some((a, ms));
                        }
                    }
                    layer.candidates.push(CandidateTime {
                        algorithm: a,
                        ms: t.0,
                        runs: t.1,
                    });
                }
                if let Some((a, ms)) = best {
                    layer.chosen = a;
                    layer.ms = ms;
                    cache.insert(key, a, ms);
                }
            }
        }
        layers.push(layer);
        progress(i + 1, convs.len());
    }
    Ok(Tuning {
        batch,
        timer: timer.to_string(),
        layers,
    })
}

/// A layer's output, input and bias buffers, the input and bias filled with [`noise`] (the input
/// with its positive part, as after a ReLU); `None` where the device refuses them.
fn layer_buffers(
    gpu: &Gpu,
    precision: Precision,
    p: &ConvParams,
    input: &[usize],
) -> Result<Option<[GpuBuffer; 3]>> {
    let storage = gpu.storage(precision);
    let out = p.out_dims(input)?;
    let mut made = Vec::with_capacity(3);
    for (name, len, fill) in [
        ("y", out.iter().product(), None),
        ("x", input.iter().product(), Some((1, true))),
        ("b", p.c_out, Some((3, false))),
    ] {
        let Ok(b) = gpu.create_buffer(&format!("tune {name}"), len, storage) else {
            return Ok(None);
        };
        if let Some((seed, relu)) = fill {
            let mut values = noise(len, seed);
            if relu {
                values.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            gpu.write(&b, &values)?;
        }
        made.push(b);
    }
    Ok(made.try_into().ok())
}

/// Times one kernel on one layer shape, on [`noise`] for weights and bias and its positive part
/// for the input (as after a ReLU; `shared`: [`layer_buffers`]): times depend on the data (an
/// H200 ran NIN's conv2a at batch 32 in 0.69 ms on zeros, 1.15 ms inside the model, 2.0 ms on
/// dense noise), and a kernel is chosen for the data models see. The best of [`RUNS`] runs
/// after a warm-up, or the first of them alone where it is already [`GIVE_UP`] times slower
/// than `best`. `None` where the device refuses the dispatch.
async fn time_candidate(
    gpu: &Gpu,
    precision: Precision,
    p: &ConvParams,
    input: &[usize],
    shared: &[GpuBuffer; 3],
    algorithm: ConvAlgorithm,
    best: Option<f64>,
) -> Result<(Option<f64>, usize)> {
    let storage = gpu.storage(precision);
    let label = format!("tune {}", algorithm.name());
    let dispatches = match p.dispatches(
        algorithm,
        &label,
        input,
        [0, 1, 2, 3],
        crate::ops::target(gpu),
    ) {
        Ok(d) => d,
        Err(_) => return Ok((None, 0)),
    };
    // The weight's length depends on the kernel's layout.
    let len = p.device_weight_len(algorithm);
    let Ok(weight) = gpu.create_buffer(&format!("{label}/w"), len, storage) else {
        return Ok((None, 0));
    };
    gpu.write(&weight, &noise(len, 2))?;
    let [y, x, b] = shared;
    let refs = [y, x, &weight, b];
    let program = match gpu.program(&label, &dispatches, &refs, &[], Timing::Total) {
        Ok(p) => p,
        Err(_) => return Ok((None, 0)),
    };
    let mut times = Vec::new();
    for run in 0..=RUNS {
        let ms = match time_run(gpu, &program).await {
            Ok(Some(ms)) => ms,
            Err(e @ crate::Error::DeviceLost(_)) => return Err(e),
            Ok(None) | Err(_) => return Ok((None, 0)),
        };
        times.push(ms);
        // Judged on the first run after the warm-up, which can carry one-time costs (some
        // drivers compile a pipeline at its first dispatch).
        if run == 1 && best.is_some_and(|b| ms > GIVE_UP * b) {
            break;
        }
    }
    // The first run is a warm-up.
    let timed = if times.len() > 1 {
        &times[1..]
    } else {
        &times[..]
    };
    let min = timed.iter().copied().fold(f64::INFINITY, f64::min);
    Ok((Some(min), timed.len()))
}

/// `len` values in [-1, 1) from a xorshift generator seeded with `seed`: data to time kernels
/// on that, unlike zeros, makes the arithmetic units toggle as real activations do.
fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ seed.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// One run's time in ms: GPU timestamps where the device has them, else the wall clock
/// (native targets only).
async fn time_run(gpu: &Gpu, program: &crate::gpu::Program) -> Result<Option<f64>> {
    #[cfg(not(target_arch = "wasm32"))]
    let start = std::time::Instant::now();
    let run = gpu.run_async(program, &[]).await?;
    if let Some(ns) = run.gpu_ns.first() {
        return Ok(Some(ns / 1e6));
    }
    #[cfg(not(target_arch = "wasm32"))]
    return Ok(Some(start.elapsed().as_secs_f64() * 1e3));
    #[cfg(target_arch = "wasm32")]
    Ok(None)
}
