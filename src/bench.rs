//! The benchmark behind `deeproots bench` and `deeproots profile`: the paper's table (MA,
//! params, time per image, ratios to the baseline) for zoo variants on the user's adapter, or
//! for one layer at several group counts beside its dense form, and per-layer GPU times.
//! Variants are run in interleaved rounds so machine drift hits all alike.

use crate::error::{invalid, Result};
use crate::executor::{Engine, Executor};
use crate::graph::Graph;
use crate::tune::TuneCache;
use crate::zoo::{self, Arch, LayerSpec, Variant};
use crate::{Precision, Tensor};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use serde::Serialize;
use std::time::{Duration, Instant};

/// Which clock times a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Timer {
    /// GPU timestamp queries around the run's compute work.
    GpuTimestamps,
    /// Wall clock around a whole run (input upload, compute, readback), queue drained.
    WallClock,
}

/// What a benchmark compares.
#[derive(Debug, Clone)]
pub enum Subject {
    /// Variants of a zoo architecture, baseline (`orig`) first when present.
    Zoo {
        /// Architecture.
        arch: Arch,
        /// Its variants.
        variants: Vec<Variant>,
    },
    /// One layer ([`LayerSpec`], its own group count ignored) with each of these group
    /// counts: 1 is the baseline (`orig`), g > 1 the variant `g<g>`.
    Layer {
        /// The layer.
        spec: LayerSpec,
        /// Group counts.
        groups: Vec<usize>,
    },
}

impl Subject {
    /// The name the report gives it: the architecture's, or the dense layer's.
    pub fn name(&self) -> String {
        match self {
            Subject::Zoo { arch, .. } => arch.name().to_string(),
            Subject::Layer { spec, .. } => LayerSpec { groups: 1, ..*spec }.name(),
        }
    }

    /// (model name, variant label) of each variant; a zoo variant the architecture lacks is
    /// refused here.
    fn models(&self) -> Result<Vec<(String, String)>> {
        match self {
            Subject::Zoo { arch, variants } => variants
                .iter()
                .map(|v| {
                    if !arch.variants().contains(v) {
                        return Err(invalid(
                            "bench",
                            format!("{} has no variant {}", arch.name(), v.name()),
                        ));
                    }
                    Ok((zoo::model_name(*arch, *v), v.name()))
                })
                .collect(),
            // A group count the layer cannot take is refused when the model is built.
            Subject::Layer { spec, groups } => Ok(groups
                .iter()
                .map(|&g| {
                    let label = if g == 1 {
                        "orig".to_string()
                    } else {
                        format!("g{g}")
                    };
                    (LayerSpec { groups: g, ..*spec }.name(), label)
                })
                .collect()),
        }
    }
}

/// What to benchmark.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The architecture's variants, or the layer's group counts.
    pub subject: Subject,
    /// Batch sizes.
    pub batches: Vec<usize>,
    /// Precision.
    pub precision: Precision,
    /// Force the wall clock even where timestamps exist.
    pub wall_clock: bool,
    /// Timed rounds at least.
    pub min_rounds: usize,
    /// Timed rounds at most.
    pub max_rounds: usize,
    /// Stop adding rounds after this long (once `min_rounds` are done).
    pub budget: Duration,
    /// Tune each variant's kernels for each batch size first ([`crate::tune`]).
    pub tune: bool,
}

/// One (variant, batch) row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct BenchEntry {
    /// Zoo name.
    pub name: String,
    /// Variant (`orig`, `root-8`).
    pub variant: String,
    /// Batch size.
    pub batch: usize,
    /// Multiply-adds per image.
    pub multiply_adds: u64,
    /// Parameters.
    pub params: u64,
    /// Median time per image, ms.
    pub median_ms_per_image: f64,
    /// Fastest round per image, ms.
    pub min_ms_per_image: f64,
    /// Slowest round per image, ms.
    pub max_ms_per_image: f64,
    /// Timed rounds.
    pub rounds: usize,
    /// Images per second at the median.
    pub images_per_s: f64,
    /// Achieved GFLOP/s (2 flops per multiply-add) at the median.
    pub gflops: f64,
    /// Median time over the baseline's at the same batch (when the baseline ran).
    pub time_ratio: Option<f64>,
    /// Multiply-adds over the baseline's.
    pub ma_ratio: Option<f64>,
    /// GFLOP/s over the baseline's (`ma_ratio / time_ratio`): how well the variant's fewer
    /// multiply-adds run.
    pub gflops_ratio: Option<f64>,
    /// The time over the baseline's round by round (each round runs every variant once, one
    /// after another): least, median and largest. Drift slower than a round cancels out of
    /// each; their spread shows how far one run's `time_ratio` can be trusted.
    pub time_ratio_rounds: Option<[f64; 3]>,
}

/// The whole benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Adapter name.
    pub adapter: String,
    /// Backend.
    pub backend: String,
    /// Driver and version.
    pub driver: String,
    /// Architecture, or the dense layer's name.
    pub arch: String,
    /// f32 or f16.
    pub precision: String,
    /// Which clock timed the runs.
    pub timer: Timer,
    /// One entry per (variant, batch).
    pub entries: Vec<BenchEntry>,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A random input batch for `graph` (fixed seed: every variant sees the same images).
pub fn random_input(graph: &Graph, batch: usize) -> Result<Tensor> {
    let spec = graph
        .inputs
        .first()
        .ok_or_else(|| invalid(&graph.name, "no inputs"))?;
    let shape = [&[batch][..], &spec.shape].concat();
    let mut rng = SmallRng::seed_from_u64(batch as u64);
    let n = shape.iter().product();
    Tensor::new(
        shape,
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
    )
}

/// One timed run in ms: GPU timestamps where available (and not overridden), else the wall
/// clock around a whole run.
fn time_once(exec: &Executor, x: &Tensor, wall: bool) -> Result<(f64, Timer)> {
    if !wall {
        let (_, gpu_ms) = exec.run_timed(&[x])?;
        if let Some(ms) = gpu_ms {
            return Ok((ms, Timer::GpuTimestamps));
        }
    }
    let t = Instant::now();
    exec.run(&[x])?;
    Ok((t.elapsed().as_secs_f64() * 1e3, Timer::WallClock))
}

/// Runs the benchmark; `progress(done, total)` is called after every run.
pub fn run(
    engine: &Engine,
    cfg: &BenchConfig,
    cache: &mut TuneCache,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<BenchReport> {
    let models = cfg.subject.models()?;
    if models.is_empty() || cfg.batches.is_empty() || cfg.batches.contains(&0) {
        return Err(invalid(
            "bench",
            "needs at least one variant and one batch size >= 1",
        ));
    }
    // One executor per variant (per variant and batch when tuned); a case is (model, variant,
    // batch, cost, executor index, input).
    let mut execs = Vec::new();
    let mut cases = Vec::new();
    for (name, v) in &models {
        let model = zoo::build(name, 0)?.fold_batch_norms()?;
        let cost = model.graph.total_cost();
        if !cfg.tune {
            execs.push(engine.load(&model, cfg.precision)?);
        }
        for &b in &cfg.batches {
            if cfg.tune {
                let (exec, _) =
                    engine.load_tuned(&model, cfg.precision, b, cache, &mut |_, _| {})?;
                execs.push(exec);
            }
            let x = random_input(&model.graph, b)?;
            cases.push((name.clone(), v.clone(), b, cost.clone(), execs.len() - 1, x));
        }
    }
    let warmups = 2;
    let total = cases.len() * (warmups + cfg.max_rounds);
    let mut done = 0;
    for (_, _, _, _, e, x) in &cases {
        for _ in 0..warmups {
            time_once(&execs[*e], x, cfg.wall_clock)?;
            done += 1;
            progress(done, total);
        }
    }
    let start = Instant::now();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut timer = Timer::WallClock;
    for round in 0..cfg.max_rounds {
        if round >= cfg.min_rounds && start.elapsed() > cfg.budget {
            break;
        }
        for (i, (_, _, _, _, e, x)) in cases.iter().enumerate() {
            let (ms, t) = time_once(&execs[*e], x, cfg.wall_clock)?;
            timer = t;
            times[i].push(ms);
            done += 1;
            progress(done, total);
        }
    }
    progress(total, total);
    // Each case's times in round order (the medians below sort them).
    let by_round = times.clone();
    let mut entries: Vec<BenchEntry> = Vec::new();
    for ((name, v, b, cost, _, _), mut t) in cases.into_iter().zip(times) {
        let per = |ms: f64| ms / b as f64;
        let med = per(median(&mut t));
        entries.push(BenchEntry {
            name,
            variant: v,
            batch: b,
            multiply_adds: cost.multiply_adds,
            params: cost.params,
            median_ms_per_image: med,
            min_ms_per_image: per(t.first().copied().unwrap_or(f64::NAN)),
            max_ms_per_image: per(t.last().copied().unwrap_or(f64::NAN)),
            rounds: t.len(),
            images_per_s: 1e3 / med,
            gflops: 2.0 * cost.multiply_adds as f64 / (med * 1e6),
            time_ratio: None,
            ma_ratio: None,
            gflops_ratio: None,
            time_ratio_rounds: None,
        });
    }
    for i in 0..entries.len() {
        let Some(j) = entries
            .iter()
            .position(|e| e.variant == "orig" && e.batch == entries[i].batch)
        else {
            continue;
        };
        let time = entries[i].median_ms_per_image / entries[j].median_ms_per_image;
        let mas = entries[i].multiply_adds as f64 / entries[j].multiply_adds as f64;
        entries[i].time_ratio = Some(time);
        entries[i].ma_ratio = Some(mas);
        entries[i].gflops_ratio = Some(mas / time);
        let mut r: Vec<f64> = by_round[i]
            .iter()
            .zip(&by_round[j])
            .map(|(t, base)| t / base)
            .collect();
        if let (Some(&least), Some(&most)) = (
            r.iter().min_by(|a, b| a.total_cmp(b)),
            r.iter().max_by(|a, b| a.total_cmp(b)),
        ) {
            entries[i].time_ratio_rounds = Some([least, median(&mut r), most]);
        }
    }
    let a = engine.gpu().adapter();
    Ok(BenchReport {
        adapter: a.name.clone(),
        backend: a.backend.clone(),
        driver: format!("{} {}", a.driver, a.driver_info).trim().to_string(),
        arch: cfg.subject.name(),
        precision: format!("{:?}", cfg.precision).to_lowercase(),
        timer,
        entries,
    })
}

/// The benchmark as an SVG scatter plot: time per image against multiply-adds per image, one
/// series per batch size, each point named by its variant, the baseline drawn as a square.
pub fn plot_svg(report: &BenchReport) -> String {
    let (w, h, l, r, t, b) = (720.0, 480.0, 80.0, 30.0, 50.0, 60.0);
    let max_ma = report
        .entries
        .iter()
        .map(|e| e.multiply_adds as f64)
        .fold(0.0, f64::max)
        * 1.08;
    let max_ms = report
        .entries
        .iter()
        .map(|e| e.median_ms_per_image)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
        * 1.12;
    let x = |ma: f64| l + (w - l - r) * ma / max_ma.max(1.0);
    let y = |ms: f64| h - b - (h - t - b) * ms / max_ms.max(1e-9);
    let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{} ({}) on {} ({}), {} timer</text>\n\
         <line x1=\"{l}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{}\" stroke=\"black\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">multiply-adds per image (millions)</text>\n\
         <text x=\"18\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {})\">ms per image (median)</text>\n",
        w / 2.0,
        xml(&report.arch),
        report.precision,
        xml(&report.adapter),
        report.backend,
        match report.timer {
            Timer::GpuTimestamps => "GPU timestamp",
            Timer::WallClock => "wall-clock",
        },
        h - b,
        w - r,
        h - b,
        h - b,
        (l + w - r) / 2.0,
        h - 20.0,
        (t + h - b) / 2.0,
        (t + h - b) / 2.0,
    );
    for i in 0..=4 {
        let ma = max_ma * i as f64 / 4.0;
        let ms = max_ms * i as f64 / 4.0;
        s += &format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{:.0}</text>\n",
            x(ma),
            h - b + 18.0,
            ma / 1e6
        );
        s += &format!(
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{:.3}</text>\n",
            l - 6.0,
            y(ms) + 4.0,
            ms
        );
    }
    let mut batches: Vec<usize> = report.entries.iter().map(|e| e.batch).collect();
    batches.dedup();
    batches.sort();
    batches.dedup();
    for (k, batch) in batches.iter().enumerate() {
        let c = colors[k % colors.len()];
        s += &format!(
            "<text x=\"{}\" y=\"{}\" fill=\"{c}\">batch {batch}</text>\n",
            w - r - 90.0,
            t + 16.0 * k as f64
        );
        for e in report.entries.iter().filter(|e| e.batch == *batch) {
            let (px, py) = (x(e.multiply_adds as f64), y(e.median_ms_per_image));
            if !py.is_finite() {
                continue;
            }
            if e.variant == "orig" {
                s += &format!(
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"9\" height=\"9\" fill=\"{c}\"/>\n",
                    px - 4.5,
                    py - 4.5
                );
            } else {
                s += &format!("<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"4\" fill=\"{c}\"/>\n");
            }
            s += &format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{c}\">{}</text>\n",
                px + 6.0,
                py - 6.0,
                xml(&e.variant)
            );
        }
    }
    s + "</svg>\n"
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One layer of a profile.
#[derive(Debug, Clone, Serialize)]
pub struct LayerProfile {
    /// Node name.
    pub name: String,
    /// Op.
    pub op: String,
    /// GPU time, ms (all of the node's dispatches).
    pub ms: f64,
    /// Share of the total GPU time.
    pub share: f64,
    /// Multiply-adds per image.
    pub multiply_adds: u64,
    /// Achieved GFLOP/s (2 flops per multiply-add).
    pub gflops: f64,
    /// Bytes the layer must move for the batch: inputs and output read/written once, weights
    /// read once.
    pub bytes: u64,
}

/// Per-layer GPU times of one run.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileReport {
    /// Model name.
    pub model: String,
    /// Adapter name.
    pub adapter: String,
    /// Backend.
    pub backend: String,
    /// Batch size.
    pub batch: usize,
    /// Sum of the layers' GPU time, ms.
    pub total_ms: f64,
    /// Multiply-adds per image of the whole model.
    pub multiply_adds: u64,
    /// Layers in execution order.
    pub layers: Vec<LayerProfile>,
}

/// Profiles `exec` on a random batch: a warm-up run, then the median of `runs` profiled runs
/// per dispatch. Needs timestamp queries.
pub fn profile(exec: &Executor, batch: usize, runs: usize) -> Result<ProfileReport> {
    let gpu = exec.gpu();
    if !gpu.adapter().timestamp_query {
        return Err(invalid(
            "profile",
            format!(
                "the adapter '{}' has no timestamp queries, which per-layer times need",
                gpu.adapter().name
            ),
        ));
    }
    let g = exec.graph();
    let x = random_input(g, batch)?;
    exec.profile(&[&x])?;
    let mut per_run: Vec<Vec<crate::DispatchTime>> = Vec::new();
    for _ in 0..runs.max(1) {
        per_run.push(exec.profile(&[&x])?.1);
    }
    let bpe = gpu.storage(exec.precision()).bytes_per_element();
    let mut layers = Vec::new();
    for n in &g.nodes {
        let mut samples: Vec<f64> = per_run
            .iter()
            .map(|r| {
                r.iter()
                    .filter(|d| d.node == n.name)
                    .map(|d| d.ns)
                    .sum::<f64>()
            })
            .collect();
        let ms = median(&mut samples) / 1e6 + 0.0;
        let cost = g.cost(n);
        let io: usize = n
            .inputs
            .iter()
            .map(|i| g.elements_per_image(i))
            .sum::<usize>()
            + g.elements_per_image(&n.name);
        // A node with no dispatch (a flatten, a concat whose inputs were written in place)
        // moves nothing.
        let runs_any = per_run
            .first()
            .is_some_and(|r| r.iter().any(|d| d.node == n.name));
        let bytes = if runs_any {
            (io * batch) as u64 * bpe + cost.params * bpe
        } else {
            0
        };
        layers.push(LayerProfile {
            name: n.name.clone(),
            op: n.op.kind().to_string(),
            ms,
            share: 0.0,
            multiply_adds: cost.multiply_adds,
            gflops: if ms > 0.0 {
                2.0 * (cost.multiply_adds * batch as u64) as f64 / (ms * 1e6)
            } else {
                0.0
            },
            bytes,
        });
    }
    let total: f64 = layers.iter().map(|l| l.ms).sum();
    for l in &mut layers {
        l.share = if total > 0.0 { l.ms / total } else { 0.0 };
    }
    Ok(ProfileReport {
        model: g.name.clone(),
        adapter: gpu.adapter().name.clone(),
        backend: gpu.adapter().backend.clone(),
        batch,
        total_ms: total,
        multiply_adds: g.total_cost().multiply_adds,
        layers,
    })
}
