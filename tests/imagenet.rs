//! Pretrained EfficientNet-Lite0 (depthwise filter groups) on the 20 ImageNet photos shipped in
//! the foolbox wheel, against the PyTorch reference written by python/reference_efficientnet.py.
//! The files come from scripts/fetch_imagenet_assets.sh and python/convert_efficientnet.py
//! (.ci/run does both); without them the tests say so and pass, except under CI.

mod common;

use common::{deeproots_ok, gpu};
use deeproots::tensor::rel_l2;
use deeproots::{Engine, Model, Precision, Tensor};
use std::path::PathBuf;

fn data() -> PathBuf {
    std::env::var_os("DEEPROOTS_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data"),
        PathBuf::from,
    )
}

/// The model, the reference file and its JSON summary, or `None` (skip) off CI.
fn assets() -> Option<(PathBuf, PathBuf, serde_json::Value)> {
    let d = data();
    let model = d.join("efficientnet-lite0.safetensors");
    let reference = d.join("efficientnet-lite0.reference.safetensors");
    let summary = d.join("efficientnet-lite0.reference.json");
    if !model.exists() || !reference.exists() || !summary.exists() {
        let msg = format!("no EfficientNet-Lite0 files in {}: run scripts/fetch_imagenet_assets.sh and python/convert_efficientnet.py", d.display());
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{msg}");
        eprintln!("SKIPPED: {msg}");
        return None;
    }
    let json = serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
    Some((model, reference, json))
}

fn tensor(file: &[u8], name: &str) -> Tensor {
    deeproots::model::read_tensor(file, name).unwrap()
}

#[test]
fn logits_match_the_pytorch_reference() {
    let Some(g) = gpu() else { return };
    let Some((model, reference, _)) = assets() else {
        return;
    };
    let bytes = std::fs::read(reference).unwrap();
    let (x, want) = (tensor(&bytes, "image"), tensor(&bytes, "logits"));
    let exec = Engine::from_gpu(g.clone())
        .load(&Model::load(model).unwrap(), Precision::F32)
        .unwrap();
    let got = exec.run(&[&x]).unwrap();
    let e = rel_l2(got[0].data(), want.data());
    println!("EfficientNet-Lite0 logits, 20 images: relative L2 error {e:.2e}");
    assert!(e <= 1e-4, "relative L2 {e:.3e} over 1e-4");
}

#[test]
fn photos_are_classified_like_the_reference() {
    if gpu().is_none() {
        return;
    }
    let Some((model, _, summary)) = assets() else {
        return;
    };
    let images = summary["images"].as_array().unwrap();
    let files: Vec<PathBuf> = images
        .iter()
        .map(|i| data().join("imagenet").join(i["file"].as_str().unwrap()))
        .collect();
    let mut args = vec!["run".into(), model.into_os_string()];
    args.extend(files.iter().map(|f| f.clone().into_os_string()));
    args.extend(["--top", "1", "--json"].map(Into::into));
    let got: serde_json::Value = serde_json::from_str(&deeproots_ok(&args)).unwrap();
    let mut correct = 0;
    for (i, want) in images.iter().enumerate() {
        let top = &got[i]["top"][0];
        assert!(got[i]["file"]
            .as_str()
            .unwrap()
            .ends_with(want["file"].as_str().unwrap()));
        assert!(top["label"].is_string() && top["probability"].as_f64().unwrap() > 0.0);
        assert_eq!(
            top["index"], want["top1"],
            "{}: top-1 differs from the reference",
            want["file"]
        );
        correct += (top["index"] == want["label"]) as usize;
    }
    println!(
        "EfficientNet-Lite0: {correct} of {} photos right",
        images.len()
    );
    assert!(correct >= 17, "{correct} of 20 right");
}
