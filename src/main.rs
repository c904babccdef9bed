//! The deeproots command line.

use anyhow::Result;
use clap::{Parser, Subcommand};
use deeproots::gpu::{list_adapters, Backend, GpuOptions};
use deeproots::Gpu;

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
    match cli.command {
        Command::Info => info(backend),
    }
}

fn info(backend: Option<Backend>) -> Result<()> {
    let adapters = list_adapters(backend);
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
    let gpu = Gpu::new(&GpuOptions {
        backend,
        ..Default::default()
    })?;
    println!(
        "selected: {} ({})",
        gpu.adapter().name,
        gpu.adapter().backend
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
