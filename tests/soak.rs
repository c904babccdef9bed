//! Many runs of one model: no growth in host memory or in live GPU buffers after warm-up.
//! `DEEPROOTS_SOAK_RUNS=5000 cargo test --release --test soak -- --nocapture` gives the long
//! figure (in the README); CI runs a few hundred.

mod common;

use common::gpu;
use deeproots::{bench::random_input, Engine, Model, Precision};

/// Resident set size in bytes (Linux), or 0 elsewhere.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

#[test]
fn repeated_runs_leak_nothing() {
    let Some(g) = gpu() else { return };
    let runs: usize = std::env::var("DEEPROOTS_SOAK_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    // The shipped, trained NIN root model (the figure in the README comes from it).
    let model = Model::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/nin28-root-8.safetensors"
    ))
    .unwrap();
    let exec = Engine::from_gpu(g.clone())
        .load(&model, Precision::F32)
        .unwrap();
    let x = random_input(exec.graph(), 1).unwrap();
    let first = exec.run(&[&x]).unwrap();
    for _ in 0..20 {
        exec.run(&[&x]).unwrap();
    }
    let (rss0, buffers0) = (rss(), g.live_buffers());
    let t = std::time::Instant::now();
    for _ in 0..runs {
        assert_eq!(exec.run(&[&x]).unwrap(), first);
    }
    let (rss1, buffers1) = (rss(), g.live_buffers());
    println!(
        "soak: {runs} runs of nin28-root-8 in {:.1} s; RSS {:.1} -> {:.1} MiB; live GPU buffers {buffers0} -> {buffers1}",
        t.elapsed().as_secs_f64(),
        rss0 as f64 / 1048576.0,
        rss1 as f64 / 1048576.0
    );
    assert_eq!(buffers1, buffers0, "GPU buffers leaked");
    assert!(
        rss1 <= rss0 + 16 * 1048576,
        "host memory grew by {} bytes",
        rss1 - rss0
    );
}
