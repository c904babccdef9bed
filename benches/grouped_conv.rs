//! Grouped against dense convolution at the paper's layer shapes, one layer per model, all
//! group counts in one run: `cargo bench --bench grouped_conv`. Criterion reports time and
//! multiply-adds per second (of GPU time where the adapter has timestamp queries); a grouped
//! layer should reach the dense one's throughput. One image per run, or
//! `DEEPROOTS_BENCH_BATCH` images (NIN's figures are for batch 32).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use deeproots::graph::builder::{Conv, GraphBuilder};
use deeproots::{bench::random_input, Engine, Precision};
use std::time::{Duration, Instant};

/// A layer: (name, C_in, C_out, k, H = W, group counts).
type Layer = (&'static str, usize, usize, usize, usize, &'static [usize]);

const LAYERS: [Layer; 3] = [
    ("nin-conv2a-5x5", 96, 192, 5, 16, &[1, 2, 4, 8, 16]),
    ("resnet-res3-3x3", 128, 128, 3, 28, &[1, 4, 16, 64]),
    ("googlenet-conv2-3x3", 64, 192, 3, 56, &[1, 4, 16]),
];

fn grouped_conv(c: &mut Criterion) {
    let engine = match Engine::from_env() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            return;
        }
    };
    let batch = match std::env::var("DEEPROOTS_BENCH_BATCH") {
        Err(_) => 1,
        Ok(v) => match v.parse::<usize>() {
            Ok(b) if b > 0 => b,
            _ => {
                eprintln!("DEEPROOTS_BENCH_BATCH must be a positive integer, got '{v}'");
                return;
            }
        },
    };
    for (name, c_in, c_out, k, hw, groups) in LAYERS {
        let mut group = c.benchmark_group(format!(
            "{name} at batch {batch} on {}",
            engine.gpu().adapter().name
        ));
        group.sample_size(10);
        for &g in groups {
            let mut b = GraphBuilder::new(name, 0);
            let x = b.input("x", &[c_in, hw, hw], None);
            let y = b
                .conv("conv", &x, &Conv::new(c_out, k).groups(g))
                .expect("valid layer");
            let model = b.finish(&[&y]).expect("valid graph");
            let ma = model.graph.total_cost().multiply_adds;
            let exec = engine.load(&model, Precision::F32).expect("loads");
            let input = random_input(exec.graph(), batch).expect("input");
            group.throughput(Throughput::Elements(ma * batch as u64));
            // The GPU's time for the convolution where the adapter has timestamp queries (the
            // kernel's throughput, not the upload and readback around it), else the wall clock.
            group.bench_with_input(BenchmarkId::new("groups", g), &input, |bench, x| {
                bench.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        let (_, gpu_ms) = exec.run_timed(&[x]).expect("runs");
                        total += match gpu_ms {
                            Some(ms) => Duration::from_secs_f64(ms / 1e3),
                            None => start.elapsed(),
                        };
                    }
                    total
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, grouped_conv);
criterion_main!(benches);
