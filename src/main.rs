//! The deeproots command line.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use deeproots::bench::{BenchConfig, Subject, Timer};
use deeproots::gpu::{list_adapters, Backend, GpuOptions};
use deeproots::zoo::{Arch, Variant};
use deeproots::{Engine, Executor, Model, Precision, Tensor, TuneCache, Tuning, WeightDtype};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "deeproots",
    version,
    about = "Grouped CNNs (Deep Roots) on any GPU through wgpu"
)]
struct Cli {
    /// Backend: vulkan, metal, dx12 or gl (default: DEEPROOTS_BACKEND, else the best adapter).
    #[arg(long, global = true)]
    backend: Option<String>,
    /// Time every kernel that can run each convolution, on this device at the batch size used,
    /// and keep the fastest (cached in DEEPROOTS_TUNE_CACHE, else ~/.cache/deeproots/tune.json).
    #[arg(long, global = true)]
    tune: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List adapters, backends, the features that matter and the chosen device's limits.
    Info,
    /// Run a model: classify images, or map a safetensors file of inputs to one of outputs.
    ///
    /// Either classify images (PNG or JPEG, preprocessed as the model file says, all in one
    /// batch) or, with --input and --output, run on tensors from a safetensors file.
    Run {
        /// The model file.
        model: PathBuf,
        /// Images to classify.
        images: Vec<PathBuf>,
        /// One tensor per graph input, under the input's name, NCHW with the batch first.
        #[arg(long, requires = "output", conflicts_with = "images")]
        input: Option<PathBuf>,
        /// Where to write one f32 tensor per graph output, under the output's name.
        #[arg(long, requires = "input")]
        output: Option<PathBuf>,
        /// How many classes to show per image.
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// Print JSON: one entry per image with `file` and `top` ({index, label, probability}).
        #[arg(long)]
        json: bool,
        /// f32 or f16.
        #[arg(long, default_value = "f32")]
        precision: String,
    },
    /// Time zoo variants side by side: the paper's table (MA, params, time, ratios) on this adapter;
    /// or, given a layer name, the layer at several group counts beside its dense form.
    Bench {
        /// nin, nin28, resnet50, resnet200, googlenet, or a layer name
        /// (conv-<C>x<H>x<W>-<C_out>-k<K>...) to compare its group counts.
        #[arg(long, default_value = "nin")]
        arch: String,
        /// Comma-separated variants (default: orig and every root-g); for a layer, orig (1 group)
        /// and g<N> (default: every power of two to 64 that divides its channels).
        #[arg(long, value_delimiter = ',')]
        variants: Vec<String>,
        /// Comma-separated batch sizes.
        #[arg(long, value_delimiter = ',', default_value = "1,32")]
        batch: Vec<usize>,
        /// f32 or f16.
        #[arg(long, default_value = "f32")]
        precision: String,
        /// Time with the wall clock even where GPU timestamps exist.
        #[arg(long)]
        wall_clock: bool,
        /// Timed rounds at least / at most.
        #[arg(long, default_value_t = 5)]
        min_rounds: usize,
        /// Timed rounds at most.
        #[arg(long, default_value_t = 30)]
        max_rounds: usize,
        /// Seconds after which no new round starts (once min-rounds are done).
        #[arg(long, default_value_t = 30.0)]
        seconds: f64,
        /// Write the results as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write a plot of time against multiply-adds (SVG).
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Per-layer GPU time, share, GFLOP/s and bytes moved (needs timestamp queries).
    Profile {
        /// A model file, a zoo name, or a layer name (conv-<C>x<H>x<W>-<C_out>-k<K>...).
        model: String,
        /// Batch size.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// f32 or f16.
        #[arg(long, default_value = "f32")]
        precision: String,
        /// Write the profile as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Time every kernel that can run each convolution of a model on this device, print them
    /// and keep the fastest in the tuning cache, where --tune finds them.
    Tune {
        /// A model file, a zoo name, or a layer name (conv-<C>x<H>x<W>-<C_out>-k<K>...).
        model: String,
        /// Batch size.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// f32 or f16.
        #[arg(long, default_value = "f32")]
        precision: String,
        /// Measure again what the cache already holds.
        #[arg(long)]
        fresh: bool,
        /// Write the tuning as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Top-1 accuracy on a test set, computed on the GPU.
    Eval {
        /// The model file.
        model: PathBuf,
        /// Evaluate on the 10,000 Fashion-MNIST test images (IDX files in this folder; default
        /// /usr/share/datasets/fashion-mnist, from Debian's dataset-fashion-mnist).
        #[arg(long, num_args = 0..=1, default_missing_value = deeproots::dataset::FASHION_MNIST_DIR)]
        fashion_mnist: Option<PathBuf>,
        /// Images per batch.
        #[arg(long, default_value_t = 250)]
        batch: usize,
        /// f32 or f16.
        #[arg(long, default_value = "f32")]
        precision: String,
        /// Print JSON (`top1` as a fraction, `images`, `correct`).
        #[arg(long)]
        json: bool,
    },
    /// The model zoo: the paper's architectures and their root, tree and column variants.
    Zoo {
        #[command(subcommand)]
        command: ZooCommand,
    },
    /// Show a model's inputs, outputs, layers, multiply-adds and parameters.
    Inspect {
        /// The model file.
        model: PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ZooCommand {
    /// List every zoo model with its multiply-adds and parameters per image.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write a zoo model (He-normal weights from a seed) as a model file.
    Export {
        /// Zoo name, e.g. nin-root-8, resnet50-root-64, googlenet, or a layer name such as
        /// conv-192x32x32-160-k1.
        name: String,
        /// Where to write the .safetensors file.
        path: PathBuf,
        /// Seed of the weights.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Store the weights as f16.
        #[arg(long)]
        f16: bool,
    },
}

/// `println!` / `print!` that end the program quietly when stdout is a closed pipe
/// (`deeproots profile nin | head -1`) instead of panicking, and with a one-line error on any
/// other write failure.
macro_rules! out {
    () => {
        emit(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        emit(format_args!($($arg)*), true)
    };
}

macro_rules! out_part {
    ($($arg:tt)*) => {
        emit(format_args!($($arg)*), false)
    };
}

fn emit(args: std::fmt::Arguments, newline: bool) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_fmt(args).and_then(|()| {
        if newline {
            stdout.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

fn main() {
    if let Err(e) = run() {
        // One line, whatever the causes' messages hold.
        let message = format!("{e:#}");
        let lines: Vec<&str> = message
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        eprintln!("error: {}", lines.join("; "));
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let backend = match &cli.backend {
        Some(b) => Some(Backend::parse(b)?),
        None => Backend::from_env()?,
    };
    let dev = Device {
        options: GpuOptions {
            backend,
            ..Default::default()
        },
        tune: cli.tune,
    };
    match cli.command {
        Command::Info => info(&dev.options),
        Command::Run {
            model,
            images,
            input,
            output,
            top,
            json,
            precision,
        } => match (input, output) {
            (Some(i), Some(o)) => run_files(&dev, &model, &i, &o, &precision),
            _ if images.is_empty() => bail!("give images to classify, or --input and --output"),
            _ => classify(&dev, &model, &images, top, json, &precision),
        },
        Command::Inspect { model, json } => inspect(&model, json),
        Command::Eval {
            model,
            fashion_mnist,
            batch,
            precision: p,
            json,
        } => {
            let Some(dir) = fashion_mnist else {
                bail!("name a test set: --fashion-mnist [<dir>]");
            };
            let set = deeproots::dataset::fashion_mnist_test(&dir)?;
            let m = load_model(&model)?;
            let engine = dev.engine()?;
            let exec = dev.load(&engine, &m, precision(&p)?, batch)?;
            let bar = progress_bar(set.len() as u64, "images");
            bar.set_message(m.graph.name.clone());
            let r = deeproots::dataset::evaluate(&exec, &set, batch, &mut |done, _| {
                bar.set_position(done as u64)
            })?;
            bar.finish_and_clear();
            if json {
                let v = serde_json::json!({"model": m.graph.name, "top1": r.top1, "images": r.images, "correct": r.correct, "adapter": engine.gpu().adapter().name, "backend": engine.gpu().adapter().backend});
                out!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                out!(
                    "{}: top-1 {:.2}% ({} of {} Fashion-MNIST test images) on {}",
                    m.graph.name,
                    100.0 * r.top1,
                    r.correct,
                    r.images,
                    engine.gpu().adapter().name
                );
            }
            Ok(())
        }
        Command::Zoo {
            command: ZooCommand::List { json },
        } => zoo_list(json),
        Command::Bench {
            arch,
            variants,
            batch,
            precision: p,
            wall_clock,
            min_rounds,
            max_rounds,
            seconds,
            json,
            plot,
        } => {
            let subject = bench_subject(&arch, &variants)?;
            let cfg = BenchConfig {
                subject,
                batches: batch,
                precision: precision(&p)?,
                wall_clock,
                min_rounds,
                max_rounds: max_rounds.max(min_rounds),
                budget: std::time::Duration::from_secs_f64(seconds),
                tune: dev.tune,
            };
            bench(&dev, &cfg, json.as_deref(), plot.as_deref())
        }
        Command::Profile {
            model,
            batch,
            precision: p,
            json,
        } => profile(&dev, &model, batch, &p, json.as_deref()),
        Command::Tune {
            model,
            batch,
            precision: p,
            fresh,
            json,
        } => tune(&dev, &model, batch, &p, fresh, json.as_deref()),
        Command::Zoo {
            command:
                ZooCommand::Export {
                    name,
                    path,
                    seed,
                    f16,
                },
        } => {
            let m = deeproots::zoo::build(&name, seed)?;
            let dtype = if f16 {
                WeightDtype::F16
            } else {
                WeightDtype::F32
            };
            m.save(&path, dtype)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let c = m.clone().fold_batch_norms()?.graph.total_cost();
            eprintln!(
                "{name}: {} multiply-adds, {} parameters, written to {}",
                thousands(c.multiply_adds),
                thousands(c.params),
                path.display()
            );
            Ok(())
        }
    }
}

/// What every command that opens a device shares: the adapter choice and whether to tune.
struct Device {
    options: GpuOptions,
    tune: bool,
}

impl Device {
    fn engine(&self) -> Result<Engine> {
        Ok(Engine::new(&self.options)?)
    }

    /// Loads `m`, with tuned kernels for `batch` images under --tune.
    fn load(
        &self,
        engine: &Engine,
        m: &Model,
        precision: Precision,
        batch: usize,
    ) -> Result<Executor> {
        if !self.tune {
            return Ok(engine.load(m, precision)?);
        }
        Ok(tune_model(engine, m, precision, batch)?.0)
    }
}

/// A progress bar counting `units` (images, runs, convolutions).
fn progress_bar(len: u64, units: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{msg}} [{{bar:30}}] {{pos}}/{{len}} {units}, {{elapsed}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// The tuning cache at `path` (empty without one).
fn load_cache(path: Option<&Path>) -> Result<TuneCache> {
    Ok(path.map(TuneCache::load).transpose()?.unwrap_or_default())
}

/// Loads `m` with kernels tuned for `batch`, reading and updating the tuning cache file.
fn tune_model(
    engine: &Engine,
    m: &Model,
    precision: Precision,
    batch: usize,
) -> Result<(Executor, Tuning)> {
    let path = TuneCache::default_path();
    let mut cache = load_cache(path.as_deref())?;
    let bar = progress_bar(1, "convolutions");
    bar.set_message(format!("tuning {}", m.graph.name));
    let (exec, tuning) =
        engine.load_tuned(m, precision, batch, &mut cache, &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })?;
    bar.finish_and_clear();
    if let Some(p) = &path {
        cache.save(p)?;
    }
    let cached = tuning.layers.iter().filter(|l| l.cached).count();
    let changed = tuning.layers.iter().filter(|l| l.chosen != l.rule).count();
    eprintln!(
        "{}: {} convolutions tuned for batch {} ({cached} from the cache{}), {changed} run another kernel than the default rule's",
        m.graph.name,
        tuning.layers.len(),
        tuning.batch,
        path.as_ref()
            .map(|p| format!(" {}", p.display()))
            .unwrap_or_default()
    );
    Ok((exec, tuning))
}

fn precision(s: &str) -> Result<Precision> {
    Precision::parse(s).with_context(|| format!("unknown precision '{s}': expected f32 or f16"))
}

fn load_model(path: &Path) -> Result<Model> {
    Model::load(path).with_context(|| format!("cannot load model {}", path.display()))
}

fn run_files(dev: &Device, model: &Path, input: &Path, output: &Path, prec: &str) -> Result<()> {
    let precision = precision(prec)?;
    let m = load_model(model)?;
    let bytes = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let mut inputs: Vec<Tensor> = Vec::new();
    for spec in &m.graph.inputs {
        let t = deeproots::model::read_tensor(&bytes, &spec.name)
            .map_err(|e| match e {
                // The file is an input file, not a model: say what is wrong without the prefix.
                deeproots::Error::ModelFile(m) => anyhow::anyhow!(m),
                e => e.into(),
            })
            .with_context(|| format!("{}: the model's input '{}'", input.display(), spec.name))?;
        let batch = inputs
            .first()
            .map_or(t.shape().first().copied(), |x| x.shape().first().copied());
        if t.shape().len() != spec.shape.len() + 1
            || t.shape()[1..] != spec.shape[..]
            || t.shape().first() != batch.as_ref()
            || batch == Some(0)
        {
            bail!(
                "{}: tensor '{}' has shape {:?}, the model's input wants [N, {}] with the same N >= 1 for every input",
                input.display(),
                spec.name,
                t.shape(),
                spec.shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        inputs.push(t);
    }
    let engine = dev.engine()?;
    let batch = inputs.first().map_or(1, |t| t.shape()[0]);
    let exec = dev.load(&engine, &m, precision, batch)?;
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let outs = exec.run(&refs)?;
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = m
        .graph
        .outputs
        .iter()
        .zip(&outs)
        .map(|(name, t)| {
            (
                name.clone(),
                t.shape().to_vec(),
                t.data().iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(n, s, b)| {
            Ok((
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize_to_file(views, None, output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!(
        "{}: {} output(s) for a batch of {} written to {} ({})",
        m.graph.name,
        outs.len(),
        inputs.first().map_or(0, |t| t.shape()[0]),
        output.display(),
        engine.gpu().adapter().name
    );
    Ok(())
}

fn classify(
    dev: &Device,
    model: &Path,
    images: &[PathBuf],
    top: usize,
    json: bool,
    prec: &str,
) -> Result<()> {
    let m = load_model(model)?;
    let g = &m.graph;
    let [spec] = g.inputs.as_slice() else {
        bail!(
            "{}: classifying images needs a model with one input, this one has {}",
            model.display(),
            g.inputs.len()
        );
    };
    let mut batch = Vec::new();
    for path in images {
        batch.extend(deeproots::preprocess::load(path, spec)?.into_data());
    }
    let x = Tensor::new([&[images.len()][..], &spec.shape].concat(), batch)?;
    let engine = dev.engine()?;
    let exec = dev.load(&engine, &m, precision(prec)?, images.len())?;
    let t = std::time::Instant::now();
    let out = exec.run(&[&x])?;
    let elapsed = t.elapsed();
    let scores = &out[0];
    let classes = scores.len() / images.len();
    // Probabilities: the model's own softmax when it ends in one, else a softmax of the logits.
    let ends_in_softmax = g
        .nodes
        .iter()
        .any(|n| n.name == g.outputs[0] && n.op == deeproots::graph::Op::Softmax);
    let mut entries = Vec::new();
    for (i, path) in images.iter().enumerate() {
        let row = &scores.data()[i * classes..(i + 1) * classes];
        let probs: Vec<f64> = if ends_in_softmax {
            row.iter().map(|&v| v as f64).collect()
        } else {
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let e: Vec<f64> = row.iter().map(|&v| (v as f64 - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        };
        let mut order: Vec<usize> = (0..classes).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        let best: Vec<_> = order
            .iter()
            .take(top.max(1))
            .map(|&k| serde_json::json!({"index": k, "label": g.labels.get(k).cloned().unwrap_or_else(|| k.to_string()), "probability": probs[k]}))
            .collect();
        entries.push(serde_json::json!({"file": path.display().to_string(), "top": best}));
    }
    if json {
        out!("{}", serde_json::to_string_pretty(&entries)?);
    } else {
        for e in &entries {
            out!("{}", e["file"].as_str().unwrap_or_default());
            for t in e["top"].as_array().into_iter().flatten() {
                out!(
                    "  {:>6.2}%  {} ({})",
                    100.0 * t["probability"].as_f64().unwrap_or(0.0),
                    t["label"].as_str().unwrap_or_default(),
                    t["index"]
                );
            }
        }
        eprintln!(
            "{} image(s) in one batch on {} ({}): {:.1} ms",
            images.len(),
            engine.gpu().adapter().name,
            engine.gpu().adapter().backend,
            elapsed.as_secs_f64() * 1e3
        );
    }
    Ok(())
}

fn inspect(path: &Path, json: bool) -> Result<()> {
    let m = load_model(path)?;
    let g = &m.graph;
    let total = g.total_cost();
    let rows = g.layer_rows();
    if json {
        let v = serde_json::json!({
            "name": g.name,
            "inputs": g.inputs,
            "outputs": g.outputs.iter().map(|o| serde_json::json!({"name": o, "shape": g.shape(o, 1)})).collect::<Vec<_>>(),
            "labels": g.labels.len(),
            "multiply_adds": total.multiply_adds,
            "params": total.params,
            "layers": rows,
        });
        out!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    out!("model {}", g.name);
    for i in &g.inputs {
        out!("input  {} [N, {}]", i.name, join(&i.shape));
    }
    for o in &g.outputs {
        out!("output {} {:?}", o, g.shape(o, 1).unwrap_or_default());
    }
    out!(
        "{:<24} {:<16} {:<18} {:>7} {:>7} {:>6} {:>14} {:>10}",
        "layer",
        "op",
        "output",
        "kernel",
        "stride",
        "groups",
        "mult-adds",
        "params"
    );
    let fmt2 = |k: Option<[usize; 2]>| k.map_or("".into(), |k| format!("{}x{}", k[0], k[1]));
    for r in &rows {
        out!(
            "{:<24} {:<16} {:<18} {:>7} {:>7} {:>6} {:>14} {:>10}",
            r.name,
            r.op,
            join(&r.output_shape[1..]),
            fmt2(r.kernel),
            fmt2(r.stride),
            r.groups.map_or("".into(), |g| g.to_string()),
            thousands(r.multiply_adds),
            thousands(r.params)
        );
    }
    out!(
        "total: {} multiply-adds, {} parameters per image",
        thousands(total.multiply_adds),
        thousands(total.params)
    );
    Ok(())
}

/// What `bench --arch A --variants V` compares: a zoo architecture's variants (default: orig
/// and every root variant), or a layer name's group counts (`orig` = 1 group, `g<N>`; default:
/// every power of two up to 64 that divides both channel counts).
fn bench_subject(arch: &str, variants: &[String]) -> Result<Subject> {
    if let Some(spec) = deeproots::zoo::LayerSpec::parse(arch) {
        let spec = spec?;
        let groups = if variants.is_empty() {
            (0..=6)
                .map(|i| 1usize << i)
                .filter(|g| spec.c_in % g == 0 && spec.c_out % g == 0)
                .collect()
        } else {
            variants
                .iter()
                .map(|v| match v.as_str() {
                    "orig" => Ok(1),
                    _ => v
                        .strip_prefix('g')
                        .and_then(|g| g.parse::<usize>().ok())
                        .filter(|&g| g > 0)
                        .with_context(|| {
                            format!("unknown variant '{v}' of a layer: expected orig or g<groups>")
                        }),
                })
                .collect::<Result<Vec<_>>>()?
        };
        return Ok(Subject::Layer { spec, groups });
    }
    let arch = Arch::parse(arch).with_context(|| {
        format!(
            "unknown arch '{arch}': expected nin, nin28, resnet50, resnet200, googlenet or a layer name (conv-<C>x<H>x<W>-<C_out>-k<K>...)"
        )
    })?;
    let variants = if variants.is_empty() {
        arch.variants()
            .into_iter()
            .filter(|v| matches!(v, Variant::Orig | Variant::Root(_)))
            .collect()
    } else {
        variants
            .iter()
            .map(|v| Variant::parse(v).with_context(|| format!("unknown variant '{v}'")))
            .collect::<Result<Vec<_>>>()?
    };
    Ok(Subject::Zoo { arch, variants })
}

fn bench(dev: &Device, cfg: &BenchConfig, json: Option<&Path>, plot: Option<&Path>) -> Result<()> {
    if let Some(p) = plot {
        if p.extension().and_then(|e| e.to_str()) != Some("svg") {
            bail!(
                "--plot {}: only SVG plots are written (use a .svg name)",
                p.display()
            );
        }
    }
    let engine = dev.engine()?;
    let bar = progress_bar(1, "runs");
    bar.set_message(format!(
        "{} on {}",
        cfg.subject.name(),
        engine.gpu().adapter().name
    ));
    let path = TuneCache::default_path().filter(|_| cfg.tune);
    let mut cache = load_cache(path.as_deref())?;
    let report = deeproots::bench::run(&engine, cfg, &mut cache, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    if let Some(p) = &path {
        cache.save(p)?;
    }
    out!(
        "{} ({}), {}, {} timer, {}",
        report.adapter,
        report.backend,
        report.precision,
        match report.timer {
            Timer::GpuTimestamps => "GPU timestamp",
            Timer::WallClock => "wall-clock",
        },
        report.driver
    );
    // Layer names are longer than zoo names.
    let width = report
        .entries
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(0)
        .max(16);
    out!(
        "{:<width$} {:>5} {:>13} {:>10} {:>10} {:>19} {:>9} {:>8} {:>9} {:>7} {:>10}",
        "model",
        "batch",
        "MA/image",
        "params",
        "ms/image",
        "[min, max]",
        "images/s",
        "GFLOP/s",
        "time/orig",
        "MA/orig",
        "GFLOP/orig"
    );
    for e in &report.entries {
        let ratio = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}"));
        out!(
            "{:<width$} {:>5} {:>13} {:>10} {:>10.4} {:>19} {:>9.1} {:>8.2} {:>9} {:>7} {:>10}",
            e.name,
            e.batch,
            thousands(e.multiply_adds),
            thousands(e.params),
            e.median_ms_per_image,
            format!("[{:.4}, {:.4}]", e.min_ms_per_image, e.max_ms_per_image),
            e.images_per_s,
            e.gflops,
            ratio(e.time_ratio),
            ratio(e.ma_ratio),
            ratio(e.gflops_ratio)
        );
    }
    let rounds: Vec<_> = report
        .entries
        .iter()
        .filter(|e| e.variant != "orig")
        .filter_map(|e| e.time_ratio_rounds.map(|r| (e, r)))
        .collect();
    if !rounds.is_empty() {
        out!("time/orig round by round (least, median, largest):");
        for (e, [least, mid, most]) in rounds {
            out!(
                "  {:<width$} {:>5}   {least:.2}  {mid:.2}  {most:.2}",
                e.name,
                e.batch
            );
        }
    }
    if let Some(p) = json {
        std::fs::write(p, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = plot {
        std::fs::write(p, deeproots::bench::plot_svg(&report))
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}

fn profile(dev: &Device, model: &str, batch: usize, prec: &str, json: Option<&Path>) -> Result<()> {
    let m = model_or_zoo(model)?;
    let engine = dev.engine()?;
    let exec = dev.load(&engine, &m, precision(prec)?, batch)?;
    let report = deeproots::bench::profile(&exec, batch, 5)?;
    out!(
        "{} on {} ({}), batch {}: {:.3} ms GPU time",
        report.model,
        report.adapter,
        report.backend,
        batch,
        report.total_ms
    );
    out!(
        "{:<28} {:<16} {:>9} {:>7} {:>14} {:>9} {:>12}",
        "layer",
        "op",
        "ms",
        "share",
        "MA/image",
        "GFLOP/s",
        "MB moved"
    );
    for l in &report.layers {
        out!(
            "{:<28} {:<16} {:>9.4} {:>6.1}% {:>14} {:>9.2} {:>12.2}",
            l.name,
            l.op,
            l.ms,
            100.0 * l.share,
            thousands(l.multiply_adds),
            l.gflops,
            l.bytes as f64 / 1e6
        );
    }
    if let Some(p) = json {
        std::fs::write(p, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}

/// A model file, or a zoo model (random weights, batch norms folded).
fn model_or_zoo(model: &str) -> Result<Model> {
    if Path::new(model).exists() || model.ends_with(".safetensors") {
        load_model(Path::new(model))
    } else {
        let built = deeproots::zoo::build(model, 0);
        // A layer name's error already names the layer.
        let built = if deeproots::zoo::LayerSpec::parse(model).is_some() {
            built?
        } else {
            built.with_context(|| format!("'{model}' is neither a model file nor a zoo name"))?
        };
        Ok(built.fold_batch_norms()?)
    }
}

fn tune(
    dev: &Device,
    model: &str,
    batch: usize,
    prec: &str,
    fresh: bool,
    json: Option<&Path>,
) -> Result<()> {
    let m = model_or_zoo(model)?;
    let engine = dev.engine()?;
    let path = TuneCache::default_path();
    let mut cache = load_cache(path.as_deref())?;
    let mut measured = if fresh {
        TuneCache::new()
    } else {
        cache.clone()
    };
    let bar = progress_bar(1, "convolutions");
    bar.set_message(format!("tuning {}", m.graph.name));
    let (_, t) = engine.load_tuned(&m, precision(prec)?, batch, &mut measured, &mut |d, n| {
        bar.set_length(n as u64);
        bar.set_position(d as u64);
    })?;
    bar.finish_and_clear();
    cache.extend(measured);
    if let Some(p) = &path {
        cache.save(p)?;
    }
    let a = engine.gpu().adapter();
    out!(
        "{} on {} ({}), batch {}, {} timer",
        m.graph.name,
        a.name,
        a.backend,
        t.batch,
        t.timer
    );
    let algos = deeproots::ops::conv2d::ConvAlgorithm::ALL;
    out_part!(
        "{:<24} {:<16} {:>8} {:>8} {:>10}",
        "layer",
        "input",
        "rule",
        "chosen",
        "GFLOP/s"
    );
    for a in algos {
        out_part!(" {:>9}", a.name());
    }
    out!();
    let (mut rule_ms, mut chosen_ms, mut complete) = (0.0, 0.0, true);
    for l in &t.layers {
        // A layer with a single candidate (a kernel forced by DEEPROOTS_CONV) is not timed.
        let gflops = if l.ms.is_finite() {
            format!("{:.2}", 2.0 * l.multiply_adds as f64 / (l.ms * 1e6))
        } else {
            "-".to_string()
        };
        out_part!(
            "{:<24} {:<16} {:>8} {:>8} {:>10}",
            l.node,
            join(&l.input),
            l.rule.name(),
            format!("{}{}", l.chosen.name(), if l.cached { "*" } else { "" }),
            gflops
        );
        for a in algos {
            let cell = match l.candidates.iter().find(|c| c.algorithm == a) {
                Some(c) => c.ms.map_or("fails".to_string(), |ms| format!("{ms:.3}")),
                None if l.cached && a == l.chosen => format!("{:.3}", l.ms),
                None => "-".to_string(),
            };
            out_part!(" {cell:>9}");
        }
        out!();
        chosen_ms += l.ms;
        match l
            .candidates
            .iter()
            .find(|c| c.algorithm == l.rule)
            .and_then(|c| c.ms)
        {
            Some(ms) => rule_ms += ms,
            None if l.chosen == l.rule => rule_ms += l.ms,
            None => complete = false,
        }
    }
    out!("times in ms (best of the runs; a kernel 3x slower than the best on its first run after the warm-up is not run again); * from the cache");
    if let Some(a) = deeproots::ops::conv2d::ConvAlgorithm::forced() {
        out!(
            "DEEPROOTS_CONV={} leaves one kernel per layer: nothing to choose, nothing timed \
             (`deeproots profile` gives each layer's time with it)",
            a.name()
        );
    } else if complete && chosen_ms > 0.0 {
        out!(
            "convolutions: {chosen_ms:.3} ms tuned, {rule_ms:.3} ms with the default rule's kernels ({:.2}x)",
            rule_ms / chosen_ms
        );
    } else if chosen_ms.is_finite() {
        out!("convolutions: {chosen_ms:.3} ms tuned");
    }
    if let Some(p) = &path {
        out!("cache: {}", p.display());
    }
    if let Some(p) = json {
        std::fs::write(p, serde_json::to_string_pretty(&t)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}

fn zoo_list(json: bool) -> Result<()> {
    let mut rows = Vec::new();
    for name in deeproots::zoo::names() {
        let c = deeproots::zoo::cost(&name)?;
        rows.push((name, c));
    }
    if json {
        let v: Vec<_> = rows.iter().map(|(n, c)| serde_json::json!({"name": n, "multiply_adds": c.multiply_adds, "params": c.params})).collect();
        out!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        out!("{:<22} {:>16} {:>12}", "model", "multiply-adds", "params");
        for (n, c) in rows {
            out!(
                "{:<22} {:>16} {:>12}",
                n,
                thousands(c.multiply_adds),
                thousands(c.params)
            );
        }
    }
    Ok(())
}

fn join(s: &[usize]) -> String {
    s.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn info(options: &GpuOptions) -> Result<()> {
    let adapters = list_adapters(options.backend);
    if adapters.is_empty() {
        out!("no adapters found");
    }
    for a in &adapters {
        out!(
            "{} ({}, {}, driver {} {})\n  shader-f16 {}, timestamp queries {}, subgroups {} (sizes {} to {})\n  max storage binding {} MiB, max buffer {} MiB, max workgroups/dim {}, max invocations/workgroup {}, workgroup memory {} KiB",
            a.name,
            a.backend,
            a.device_type,
            a.driver,
            a.driver_info,
            yes(a.shader_f16),
            yes(a.timestamp_query),
            yes(a.subgroups),
            a.subgroup_min_size,
            a.subgroup_max_size,
            a.max_storage_buffer_binding_size >> 20,
            a.max_buffer_size >> 20,
            a.max_compute_workgroups_per_dimension,
            a.max_compute_invocations_per_workgroup,
            a.max_compute_workgroup_storage_size >> 10,
        );
    }
    let engine = Engine::new(options)?;
    out!(
        "selected: {} ({})",
        engine.gpu().adapter().name,
        engine.gpu().adapter().backend
    );
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
