//! The trained NIN models shipped in models/ (python/train.py, python/export.py): the GPU
//! reproduces PyTorch's logits, and a root model's accuracy on the full Fashion-MNIST test set
//! equals the one PyTorch measured (manifest.json) within 0.1 points.

mod common;

use common::gpu;
use deeproots::dataset::{evaluate, fashion_mnist_test, FASHION_MNIST_DIR};
use deeproots::tensor::rel_l2;
use deeproots::{Engine, Model, Precision, Tensor};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn manifest() -> Option<Vec<Value>> {
    let path = models().join("manifest.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("SKIPPED: no {} (no trained models shipped)", path.display());
        return None;
    };
    Some(serde_json::from_str::<Vec<Value>>(&text).unwrap())
}

fn tensor(file: &[u8], name: &str) -> Tensor {
    deeproots::model::read_tensor(file, name).unwrap()
}

#[test]
fn shipped_models_reproduce_pytorch() {
    let Some(g) = gpu() else { return };
    let Some(entries) = manifest() else { return };
    let engine = Engine::from_gpu(g.clone());
    for e in &entries {
        let model = Model::load(models().join(e["file"].as_str().unwrap())).unwrap();
        let cost = model.graph.total_cost();
        assert_eq!(
            Some(cost.multiply_adds),
            e["multiply_adds"].as_u64(),
            "{}",
            e["name"]
        );
        assert_eq!(Some(cost.params), e["params"].as_u64(), "{}", e["name"]);
        let bytes = std::fs::read(models().join(e["reference"].as_str().unwrap())).unwrap();
        let (x, want) = (tensor(&bytes, "image"), tensor(&bytes, "logits"));
        let got = engine
            .load(&model, Precision::F32)
            .unwrap()
            .run(&[&x])
            .unwrap();
        let err = rel_l2(got[0].data(), want.data());
        println!(
            "{}: GPU logits against PyTorch's, relative L2 {err:.2e}",
            e["name"]
        );
        assert!(err <= 1e-4, "{}: {err:.3e}", e["name"]);
    }
}

#[test]
fn a_root_model_keeps_its_accuracy_on_the_full_test_set() {
    let Some(g) = gpu() else { return };
    let Some(entries) = manifest() else { return };
    let Some(e) = entries
        .iter()
        .find(|e| e["name"] == "nin28-root-8")
        .or_else(|| {
            entries
                .iter()
                .find(|e| e["name"].as_str().unwrap().contains("root"))
        })
    else {
        eprintln!("SKIPPED: no root model in the manifest");
        return;
    };
    let dir = Path::new(FASHION_MNIST_DIR);
    if !dir.exists() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI must install dataset-fashion-mnist"
        );
        eprintln!(
            "SKIPPED: no {} (apt-get install dataset-fashion-mnist)",
            dir.display()
        );
        return;
    }
    let set = fashion_mnist_test(dir).unwrap();
    assert_eq!(set.len(), 10_000);
    let model = Model::load(models().join(e["file"].as_str().unwrap())).unwrap();
    let exec = Engine::from_gpu(g.clone())
        .load(&model, Precision::F32)
        .unwrap();
    let r = evaluate(&exec, &set, 500, &mut |_, _| {}).unwrap();
    let want = e["pytorch_top1"].as_f64().unwrap();
    println!(
        "{}: top-1 {:.4} on the GPU, {want:.4} in PyTorch",
        e["name"], r.top1
    );
    assert!(
        (r.top1 - want).abs() <= 0.001,
        "{}: {} vs {want}",
        e["name"],
        r.top1
    );
}
