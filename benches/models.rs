//! Whole zoo models, variants compared in one run: `cargo bench --bench models`.
//! (`deeproots bench` gives the paper's table with ratios; this is the criterion view.)

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use deeproots::{bench::random_input, zoo, Engine, Precision};

fn models(c: &mut Criterion) {
    let engine = match Engine::from_env() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            return;
        }
    };
    let mut group = c.benchmark_group(format!("nin batch 1 on {}", engine.gpu().adapter().name));
    group.sample_size(10);
    for name in [
        "nin",
        "nin-root-2",
        "nin-root-4",
        "nin-root-8",
        "nin-root-16",
    ] {
        let model = zoo::build(name, 0)
            .and_then(|m| m.fold_batch_norms())
            .expect("zoo model");
        group.throughput(Throughput::Elements(model.graph.total_cost().multiply_adds));
        let exec = engine.load(&model, Precision::F32).expect("loads");
        let x = random_input(exec.graph(), 1).expect("input");
        group.bench_with_input(BenchmarkId::from_parameter(name), &x, |b, x| {
            b.iter(|| exec.run(&[x]).expect("runs"))
        });
    }
    group.finish();
}

criterion_group!(benches, models);
criterion_main!(benches);
