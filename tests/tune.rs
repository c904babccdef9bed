//! Tuning: measured kernel choices, the cache that remembers them, and executors that run the
//! chosen kernels with the same results as the rule's.

mod common;

use common::{gpu, tmp};
use deeproots::graph::Op;
use deeproots::ops::conv2d::ConvAlgorithm;
use deeproots::tensor::rel_l2;
use deeproots::tune::layer_key;
use deeproots::{bench::random_input, reference, zoo, Engine, Model, Precision, TuneCache};

/// A small model with pointwise, grouped and ungrouped kxk convolutions.
fn model() -> Model {
    zoo::build("nin28-root-4", 3)
        .unwrap()
        .fold_batch_norms()
        .unwrap()
}

/// A cache that makes every convolution of `m` at `batch` run `pick(candidates)`.
fn forced_cache(
    engine: &Engine,
    m: &Model,
    batch: usize,
    pick: impl Fn(&[ConvAlgorithm]) -> ConvAlgorithm,
) -> TuneCache {
    let gpu = engine.gpu();
    let target = deeproots::ops::target(gpu);
    let mut cache = TuneCache::new();
    for n in &m.graph.nodes {
        if let Op::Conv2d { params, .. } = &n.op {
            let input = m.graph.shape(&n.inputs[0], batch).unwrap();
            let key = layer_key(gpu, Precision::F32, params, &input);
            cache.insert(key, pick(&params.candidates(target)), 1.0);
        }
    }
    cache
}

#[test]
fn tuned_models_choose_among_candidates_and_compute_the_same() {
    let Some(g) = gpu() else { return };
    if ConvAlgorithm::forced().is_some() {
        return;
    }
    let engine = Engine::from_gpu(g.clone());
    let m = model();
    let mut cache = TuneCache::new();
    let mut calls = Vec::new();
    let (exec, tuning) = engine
        .load_tuned(&m, Precision::F32, 2, &mut cache, &mut |d, n| {
            calls.push((d, n))
        })
        .unwrap();
    let convs = m
        .graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Conv2d { .. }))
        .count();
    assert_eq!(tuning.layers.len(), convs);
    assert_eq!(calls.last(), Some(&(convs, convs)));
    assert_eq!(tuning.batch, 2);
    let target = deeproots::ops::target(g);
    for l in &tuning.layers {
        let node = m.graph.nodes.iter().find(|n| n.name == l.node).unwrap();
        let Op::Conv2d { params, .. } = &node.op else {
            unreachable!()
        };
        assert!(params.candidates(target).contains(&l.chosen), "{}", l.node);
        assert_eq!(exec.algorithm(&l.node), Some(l.chosen));
        if !l.cached {
            // The chosen kernel is the fastest one measured.
            let best = l
                .candidates
                .iter()
                .filter_map(|c| c.ms)
                .fold(f64::INFINITY, f64::min);
            assert_eq!(l.ms, best, "{}", l.node);
            assert!(l.ms > 0.0 && l.ms.is_finite());
        }
    }
    // Every distinct layer shape was measured and cached; layers of a shape seen before
    // came from the cache.
    assert!(!cache.is_empty());
    assert!(tuning.layers.iter().any(|l| !l.cached));

    let x = random_input(&m.graph, 2).unwrap();
    let want = reference::graph::run(&m, &[&x]).unwrap();
    let got = exec.run(&[&x]).unwrap();
    let e = rel_l2(got[0].data(), want[0].data());
    assert!(e <= 1e-5, "tuned model vs reference: rel L2 {e}");

    // A second tuning of the same model finds everything in the cache and measures nothing.
    let before = cache.len();
    let (_, again) = engine
        .load_tuned(&m, Precision::F32, 2, &mut cache, &mut |_, _| {})
        .unwrap();
    assert_eq!(cache.len(), before);
    assert!(again
        .layers
        .iter()
        .all(|l| l.cached && l.candidates.is_empty()));
    assert_eq!(again.choices(), tuning.choices());
}

#[test]
fn every_kernel_a_cache_can_choose_runs_the_model_correctly() {
    let Some(g) = gpu() else { return };
    if ConvAlgorithm::forced().is_some() {
        return;
    }
    let engine = Engine::from_gpu(g.clone());
    let m = model();
    let x = random_input(&m.graph, 3).unwrap();
    let want = reference::graph::run(&m, &[&x]).unwrap();
    let target = deeproots::ops::target(g);
    for a in ConvAlgorithm::ALL {
        // Kernels this adapter cannot run, or is never offered (those written for the other
        // kind of adapter), are never in its cache.
        if (a.needs_subgroups() && target.subgroup.is_none()) || !a.suits(target.cpu) {
            continue;
        }
        // Each layer runs `a` where it can, else the first candidate.
        let mut cache = forced_cache(&engine, &m, 3, |c| if c.contains(&a) { a } else { c[0] });
        let (exec, tuning) = engine
            .load_tuned(&m, Precision::F32, 3, &mut cache, &mut |_, _| {})
            .unwrap();
        assert!(tuning.layers.iter().all(|l| l.cached));
        assert!(
            tuning
                .layers
                .iter()
                .any(|l| exec.algorithm(&l.node) == Some(a)),
            "no layer runs {a:?}"
        );
        let got = exec.run(&[&x]).unwrap();
        let e = rel_l2(got[0].data(), want[0].data());
        assert!(e <= 1e-5, "{}: rel L2 {e}", a.name());
    }
}

#[test]
fn a_cached_kernel_that_cannot_run_the_layer_is_measured_again() {
    let Some(g) = gpu() else { return };
    if ConvAlgorithm::forced().is_some() {
        return;
    }
    let engine = Engine::from_gpu(g.clone());
    let m = model();
    // A hand-edited cache: the matmul for every layer, which runs only the 1x1 ones.
    let mut cache = forced_cache(&engine, &m, 1, |_| ConvAlgorithm::Matmul);
    let (exec, tuning) = engine
        .load_tuned(&m, Precision::F32, 1, &mut cache, &mut |_, _| {})
        .unwrap();
    for n in &m.graph.nodes {
        if let Op::Conv2d { params, .. } = &n.op {
            let l = tuning.layers.iter().find(|l| l.node == n.name).unwrap();
            assert_eq!(l.cached, params.is_pointwise(), "{}", n.name);
            assert!(!params.is_pointwise() || l.chosen == ConvAlgorithm::Matmul);
            assert!(params.is_pointwise() || !l.candidates.is_empty());
        }
    }
    let x = random_input(&m.graph, 1).unwrap();
    let want = reference::graph::run(&m, &[&x]).unwrap();
    let e = rel_l2(exec.run(&[&x]).unwrap()[0].data(), want[0].data());
    assert!(e <= 1e-5, "rel L2 {e}");
}

#[test]
fn tuning_refuses_batch_zero() {
    let Some(g) = gpu() else { return };
    let engine = Engine::from_gpu(g.clone());
    let e = engine
        .load_tuned(
            &model(),
            Precision::F32,
            0,
            &mut TuneCache::new(),
            &mut |_, _| {},
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("batch size must be at least 1"),
        "{e}"
    );
}

#[test]
fn cache_files_round_trip_and_bad_ones_are_refused_by_name() {
    let dir = tmp("tune-cache");
    let path = dir.join("sub/tune.json");
    // A missing file is an empty cache; saving creates the directory.
    let mut c = TuneCache::load(&path).unwrap();
    assert!(c.is_empty());
    c.insert("layer a".into(), ConvAlgorithm::Gemm8, 1.5);
    c.insert("layer b".into(), ConvAlgorithm::Direct, 0.25);
    c.save(&path).unwrap();
    let back = TuneCache::load(&path).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back.get("layer a"), Some((ConvAlgorithm::Gemm8, 1.5)));
    assert_eq!(back.get("layer b"), Some((ConvAlgorithm::Direct, 0.25)));
    assert_eq!(back.get("layer c"), None);

    std::fs::write(&path, "{ not json").unwrap();
    let e = TuneCache::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("tune.json") && e.contains("not a tuning cache"),
        "{e}"
    );
    std::fs::write(&path, r#"{"version": 99, "entries": {}}"#).unwrap();
    let e = TuneCache::load(&path).unwrap_err().to_string();
    assert!(e.contains("format version 99"), "{e}");
    // An unknown kernel name (a newer build's) is no choice at all.
    std::fs::write(
        &path,
        r#"{"version": 1, "entries": {"k": {"algorithm": "winograd", "ms": 1.0}}}"#,
    )
    .unwrap();
    assert_eq!(TuneCache::load(&path).unwrap().get("k"), None);
}

#[test]
fn the_tune_command_prints_the_table_and_fills_the_cache_that_tune_uses() {
    if gpu().is_none() || ConvAlgorithm::forced().is_some() {
        return;
    }
    let cache = tmp("cli-tune.json");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_deeproots"))
            .args(args)
            .env("DEEPROOTS_TUNE_CACHE", &cache)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{args:?}: {text}\n{err}");
        (text, err)
    };
    let (table, _) = run(&["tune", "nin28-root-4", "--batch", "2"]);
    assert!(table.contains("nin28-root-4 on "), "{table}");
    for node in ["conv1a_bn", "conv2a_bn", "conv3c"] {
        assert!(
            table.lines().any(|l| l.starts_with(node)),
            "{node} missing:\n{table}"
        );
    }
    assert!(table.contains(" ms tuned"), "{table}");
    let filled = TuneCache::load(&cache).unwrap();
    assert!(!filled.is_empty());

    // --tune finds every layer in the cache.
    let (_, err) = run(&["--tune", "profile", "nin28-root-4", "--batch", "2"]);
    assert!(
        err.contains("from the cache") && err.contains(&cache.display().to_string()),
        "{err}"
    );
    let convs = zoo::build("nin28-root-4", 0)
        .unwrap()
        .graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Conv2d { .. }))
        .count();
    assert!(
        err.contains(&format!(
            "{convs} convolutions tuned for batch 2 ({convs} from the cache"
        )),
        "{err}"
    );
    assert_eq!(TuneCache::load(&cache).unwrap().len(), filled.len());
}

#[test]
fn choices_cached_by_a_build_with_other_kernels_are_measured_again() {
    let fingerprint = deeproots::tune::KERNELS;
    assert!(
        fingerprint.len() == 16 && fingerprint.chars().all(|c| c.is_ascii_hexdigit()),
        "{fingerprint}"
    );
    let Some(g) = gpu() else { return };
    if ConvAlgorithm::forced().is_some() {
        return;
    }
    let engine = Engine::from_gpu(g.clone());
    let m = model();
    let cached = forced_cache(&engine, &m, 2, |c| c[0]);
    let mut stale =
        TuneCache::from_json(&cached.to_json().replace(fingerprint, "0123456789abcdef")).unwrap();
    assert_eq!(stale.len(), cached.len());
    engine
        .load_tuned(&m, Precision::F32, 2, &mut stale, &mut |_, _| {})
        .unwrap();
    assert_eq!(
        stale.len(),
        2 * cached.len(),
        "every layer measured again under this build's key, the stale entries kept"
    );
}
