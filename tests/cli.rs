//! The command line: `run` through safetensors files, `inspect --json`, and clean refusals.

mod common;

use common::{gpu, random, rng};
use deeproots::graph::builder::{Conv, GraphBuilder};
use deeproots::ops::pool::{PoolKind, PoolParams};
use deeproots::ops::Activation;
use deeproots::tensor::rel_l2;
use deeproots::{reference, Model, WeightDtype};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_deeproots"))
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("deeproots-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn model() -> Model {
    let mut b = GraphBuilder::new("cli", 3);
    let x = b.input("image", &[3, 12, 12], None);
    let x = b
        .conv("root", &x, &Conv::new(16, 3).groups(1).bn())
        .unwrap();
    let x = b
        .conv("root2", &x, &Conv::new(16, 3).groups(4).bn())
        .unwrap();
    let x = b.conv("embed", &x, &Conv::new(8, 1)).unwrap();
    let pool = PoolParams {
        kind: PoolKind::Max,
        kernel: [3, 3],
        stride: [2, 2],
        padding: [0; 4],
        ceil_mode: true,
    };
    let x = b.pool("pool", &x, &pool).unwrap();
    let x = b.global_avg_pool("gap", &x).unwrap();
    let x = b.flatten("flat", &x).unwrap();
    let x = b.linear("logits", &x, 5, Activation::None).unwrap();
    b.finish(&[&x]).unwrap()
}

#[test]
fn inspect_json_totals_match_the_graph() {
    let m = model();
    let path = tmp("inspect.safetensors");
    m.save(&path, WeightDtype::F32).unwrap();
    let out = bin()
        .args(["inspect", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let total = m.graph.total_cost();
    assert_eq!(v["multiply_adds"].as_u64(), Some(total.multiply_adds));
    assert_eq!(v["params"].as_u64(), Some(total.params));
    let layer_sum: u64 = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["multiply_adds"].as_u64().unwrap())
        .sum();
    assert_eq!(layer_sum, total.multiply_adds);
    let table = bin().arg("inspect").arg(&path).output().unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("root2"));
}

#[test]
fn run_reads_and_writes_safetensors() {
    if gpu().is_none() {
        return;
    }
    let m = model();
    let path = tmp("run.safetensors");
    m.save(&path, WeightDtype::F32).unwrap();
    let mut rng = rng("run_reads_and_writes_safetensors");
    let x = random(&mut rng, &[3, 3, 12, 12]);
    let bytes: Vec<u8> = x.data().iter().flat_map(|v| v.to_le_bytes()).collect();
    let input = tmp("in.safetensors");
    let view = TensorView::new(Dtype::F32, x.shape().to_vec(), &bytes).unwrap();
    safetensors::serialize_to_file([("image", view)], None, &input).unwrap();
    let output = tmp("out.safetensors");
    let out = bin()
        .arg("run")
        .arg(&path)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = std::fs::read(&output).unwrap();
    let st = SafeTensors::deserialize(&data).unwrap();
    let got = st.tensor("logits").unwrap();
    assert_eq!(got.shape(), [3, 5]);
    let got: Vec<f32> = got
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let want = reference::graph::run(&m, &[&x]).unwrap();
    let e = rel_l2(&got, want[0].data());
    assert!(e <= 1e-5, "rel err {e}");
}

#[test]
fn bad_input_gives_one_clear_line_and_a_failure_code() {
    let missing = bin()
        .args(["inspect", "/nonexistent/model.safetensors"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.starts_with("error: cannot load model /nonexistent/model.safetensors"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let garbage = tmp("garbage.safetensors");
    std::fs::write(&garbage, b"definitely not a model").unwrap();
    let out = bin().arg("inspect").arg(&garbage).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid safetensors file"));
}
