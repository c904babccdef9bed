//! The deeproots command line.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use deeproots::gpu::{list_adapters, Backend, GpuOptions};
use deeproots::{Engine, Model, Precision, Tensor, WeightDtype};
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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List adapters, backends, the features that matter and the chosen device's limits.
    Info,
    /// Run a model on the tensors of a safetensors file; write the outputs to another.
    Run {
        /// The model file.
        model: PathBuf,
        /// One tensor per graph input, under the input's name, NCHW with the batch first.
        #[arg(long)]
        input: PathBuf,
        /// Where to write one f32 tensor per graph output, under the output's name.
        #[arg(long)]
        output: PathBuf,
        /// f32 or f16.
        #[arg(long, default_value = "f32")]
        precision: String,
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
        /// Zoo name, e.g. nin-root-8, resnet50-root-64, googlenet.
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

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let backend = match &cli.backend {
        Some(b) => Some(Backend::parse(b)?),
        None => Backend::from_env()?,
    };
    let options = GpuOptions {
        backend,
        ..Default::default()
    };
    match cli.command {
        Command::Info => info(&options),
        Command::Run {
            model,
            input,
            output,
            precision,
        } => run_files(&options, &model, &input, &output, &precision),
        Command::Inspect { model, json } => inspect(&model, json),
        Command::Zoo {
            command: ZooCommand::List { json },
        } => zoo_list(json),
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

fn precision(s: &str) -> Result<Precision> {
    Precision::parse(s).with_context(|| format!("unknown precision '{s}': expected f32 or f16"))
}

fn load_model(path: &Path) -> Result<Model> {
    Model::load(path).with_context(|| format!("cannot load model {}", path.display()))
}

fn run_files(
    options: &GpuOptions,
    model: &Path,
    input: &Path,
    output: &Path,
    prec: &str,
) -> Result<()> {
    let precision = precision(prec)?;
    let m = load_model(model)?;
    let bytes = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{} is not a safetensors file", input.display()))?;
    let mut inputs = Vec::new();
    for spec in &m.graph.inputs {
        let view = st.tensor(&spec.name).with_context(|| {
            format!(
                "{}: no tensor named '{}' (the model's input)",
                input.display(),
                spec.name
            )
        })?;
        let data: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            safetensors::Dtype::F16 => view
                .data()
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            d => bail!(
                "{}: tensor '{}' has dtype {d:?}, expected F32 or F16",
                input.display(),
                spec.name
            ),
        };
        inputs.push(Tensor::new(view.shape().to_vec(), data)?);
    }
    let engine = Engine::new(options)?;
    let exec = engine.load(&m, precision)?;
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
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("model {}", g.name);
    for i in &g.inputs {
        println!("input  {} [N, {}]", i.name, join(&i.shape));
    }
    for o in &g.outputs {
        println!("output {} {:?}", o, g.shape(o, 1).unwrap_or_default());
    }
    println!(
        "{:<24} {:<16} {:<18} {:>7} {:>7} {:>6} {:>14} {:>10}",
        "layer", "op", "output", "kernel", "stride", "groups", "mult-adds", "params"
    );
    let fmt2 = |k: Option<[usize; 2]>| k.map_or("".into(), |k| format!("{}x{}", k[0], k[1]));
    for r in &rows {
        println!(
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
    println!(
        "total: {} multiply-adds, {} parameters per image",
        thousands(total.multiply_adds),
        thousands(total.params)
    );
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
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{:<22} {:>16} {:>12}", "model", "multiply-adds", "params");
        for (n, c) in rows {
            println!(
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
        println!("no adapters found");
    }
    for a in &adapters {
        println!(
            "{} ({}, {}, driver {} {})\n  shader-f16 {}, timestamp queries {}, subgroups {}\n  max storage binding {} MiB, max buffer {} MiB, max workgroups/dim {}, max invocations/workgroup {}, workgroup memory {} KiB",
            a.name,
            a.backend,
            a.device_type,
            a.driver,
            a.driver_info,
            yes(a.shader_f16),
            yes(a.timestamp_query),
            yes(a.subgroups),
            a.max_storage_buffer_binding_size >> 20,
            a.max_buffer_size >> 20,
            a.max_compute_workgroups_per_dimension,
            a.max_compute_invocations_per_workgroup,
            a.max_compute_workgroup_storage_size >> 10,
        );
    }
    let engine = Engine::new(options)?;
    println!(
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
