//! The command line: `run` through safetensors files, `inspect --json`, and clean refusals of
//! bad input (one line naming the file and what was expected against what was found, exit
//! code 1, no panic).

mod common;

use common::{deeproots, deeproots_ok, deeproots_refuses, gpu, random, rng, tmp};
use deeproots::graph::builder::{Conv, GraphBuilder};
use deeproots::ops::pool::{PoolKind, PoolParams};
use deeproots::ops::Activation;
use deeproots::tensor::rel_l2;
use deeproots::{reference, Model, WeightDtype};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::path::{Path, PathBuf};

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
    let out = deeproots_ok(["inspect".as_ref(), "--json".as_ref(), path.as_os_str()]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
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
    let table = deeproots(["inspect".as_ref(), path.as_os_str()]);
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
    deeproots_ok(run_args(&path, &input, &output));
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

/// `deeproots run <model> --input <input> --output <output>`.
fn run_args(model: &Path, input: &Path, output: &Path) -> Vec<PathBuf> {
    vec![
        "run".into(),
        model.into(),
        "--input".into(),
        input.into(),
        "--output".into(),
        output.into(),
    ]
}

/// A safetensors file of f32 tensors (any dtype's bytes may be given with `dtype`).
fn write_tensors(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The model file with its graph JSON and tensors changed by `edit`.
fn edited_model(
    name: &str,
    edit: impl FnOnce(&mut serde_json::Value, &mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>),
) -> PathBuf {
    let m = model();
    let mut graph = serde_json::to_value(m.graph.to_raw()).unwrap();
    let mut tensors: Vec<_> = m
        .weights
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                Dtype::F32,
                t.shape().to_vec(),
                f32_bytes(t.data()),
            )
        })
        .collect();
    edit(&mut graph, &mut tensors);
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let meta =
        std::collections::HashMap::from([("deeproots.graph".to_string(), graph.to_string())]);
    let path = tmp(name);
    safetensors::serialize_to_file(views, Some(meta), &path).unwrap();
    path
}

fn contains_all(line: &str, parts: &[&str]) {
    for p in parts {
        assert!(line.contains(p), "'{p}' not in: {line}");
    }
}

#[test]
fn a_missing_or_truncated_model_file_is_refused() {
    let line = deeproots_refuses(["inspect", "/nonexistent/model.safetensors"]);
    contains_all(
        &line,
        &[
            "cannot load model /nonexistent/model.safetensors",
            "No such file",
        ],
    );

    let garbage = tmp("garbage.safetensors");
    std::fs::write(&garbage, b"definitely not a model").unwrap();
    let line = deeproots_refuses(["inspect".as_ref(), garbage.as_os_str()]);
    contains_all(
        &line,
        &["garbage.safetensors", "not a valid safetensors file"],
    );

    let bytes = model().to_bytes(WeightDtype::F32).unwrap();
    let truncated = tmp("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    for cmd in ["inspect", "run"] {
        let mut args = vec![cmd.into(), truncated.clone()];
        if cmd == "run" {
            args.push("photo.png".into());
        }
        let line = deeproots_refuses(&args);
        contains_all(
            &line,
            &["truncated.safetensors", "not a valid safetensors file"],
        );
    }

    // A header that claims far more bytes than the file has is refused without reading them.
    let mut huge = (u64::MAX / 2).to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    let claim = tmp("huge-header.safetensors");
    std::fs::write(&claim, &huge).unwrap();
    let line = deeproots_refuses(["inspect".as_ref(), claim.as_os_str()]);
    contains_all(&line, &["huge-header.safetensors", "header too large"]);
}

#[test]
fn wrong_tensor_dtype_or_shape_names_the_tensor_or_node() {
    let ints = edited_model("int-weight.safetensors", |_, tensors| {
        let t = tensors.iter_mut().find(|t| t.0 == "logits.weight").unwrap();
        t.1 = Dtype::I32;
    });
    let line = deeproots_refuses(["inspect".as_ref(), ints.as_os_str()]);
    contains_all(
        &line,
        &[
            "int-weight.safetensors",
            "tensor 'logits.weight' has dtype I32, expected F32 or F16",
        ],
    );

    let bias = edited_model("short-bias.safetensors", |_, tensors| {
        let t = tensors.iter_mut().find(|t| t.0 == "logits.bias").unwrap();
        t.2 = vec![4];
        t.3.truncate(16);
    });
    let line = deeproots_refuses(["inspect".as_ref(), bias.as_os_str()]);
    contains_all(
        &line,
        &[
            "short-bias.safetensors",
            "node 'logits'",
            "bias 'logits.bias' has shape [4], expected [5]",
        ],
    );

    let weight = edited_model("wide-weight.safetensors", |_, tensors| {
        let t = tensors.iter_mut().find(|t| t.0 == "root2.weight").unwrap();
        t.2 = vec![16, 8, 3, 3];
        t.3 = f32_bytes(&vec![0.5; 16 * 8 * 9]);
    });
    let line = deeproots_refuses(["inspect".as_ref(), weight.as_os_str()]);
    contains_all(
        &line,
        &[
            "wide-weight.safetensors",
            "node 'root2'",
            "input has 16 channels, the layer expects 32",
        ],
    );
}

#[test]
fn a_graph_of_a_newer_schema_version_is_refused() {
    let newer = edited_model("v2.safetensors", |g, _| g["version"] = 2.into());
    let line = deeproots_refuses(["inspect".as_ref(), newer.as_os_str()]);
    contains_all(
        &line,
        &[
            "v2.safetensors",
            "schema version 2 is not supported (this build reads version 1)",
        ],
    );
}

#[test]
fn an_input_tensor_of_the_wrong_shape_or_dtype_is_refused() {
    let m = model();
    let path = tmp("wrong-input-model.safetensors");
    m.save(&path, WeightDtype::F32).unwrap();
    let output = tmp("wrong-input-out.safetensors");

    let small = tmp("small-input.safetensors");
    write_tensors(
        &small,
        &[(
            "image",
            Dtype::F32,
            vec![2, 3, 10, 12],
            f32_bytes(&[0.0; 2 * 3 * 10 * 12]),
        )],
    );
    let line = deeproots_refuses(run_args(&path, &small, &output));
    contains_all(
        &line,
        &[
            "small-input.safetensors",
            "tensor 'image' has shape [2, 3, 10, 12], the model's input wants [N, 3, 12, 12]",
        ],
    );

    let ints = tmp("int-input.safetensors");
    write_tensors(
        &ints,
        &[("image", Dtype::I32, vec![1, 3, 12, 12], vec![0; 432 * 4])],
    );
    let line = deeproots_refuses(run_args(&path, &ints, &output));
    contains_all(
        &line,
        &[
            "int-input.safetensors",
            "the model's input 'image'",
            "has dtype I32, expected F32 or F16",
        ],
    );

    let misnamed = tmp("misnamed-input.safetensors");
    write_tensors(
        &misnamed,
        &[(
            "pixels",
            Dtype::F32,
            vec![1, 3, 12, 12],
            f32_bytes(&[0.0; 432]),
        )],
    );
    let line = deeproots_refuses(run_args(&path, &misnamed, &output));
    contains_all(
        &line,
        &["misnamed-input.safetensors", "no tensor named 'image'"],
    );
    assert!(!output.exists(), "nothing is written on a refusal");
}

#[test]
fn unreadable_or_corrupt_images_are_refused() {
    let m = model();
    let path = tmp("image-model.safetensors");
    m.save(&path, WeightDtype::F32).unwrap();
    let good = tmp("good.png");
    image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([x as u8 * 16, y as u8 * 16, 99]))
        .save(&good)
        .unwrap();
    let png = std::fs::read(&good).unwrap();
    let cut = tmp("cut.png");
    std::fs::write(&cut, &png[..png.len() / 2]).unwrap();
    let noise = tmp("noise.jpg");
    std::fs::write(&noise, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    let folder = tmp("a-folder.png");
    std::fs::create_dir_all(&folder).unwrap();
    for (bad, why) in [
        (cut, "cut.png"),
        (noise, "noise.jpg"),
        (folder, "a-folder.png"),
        (PathBuf::from("/nonexistent/photo.png"), "No such file"),
    ] {
        let line = deeproots_refuses([
            "run".as_ref(),
            path.as_os_str(),
            good.as_os_str(),
            bad.as_os_str(),
        ]);
        contains_all(&line, &["error: image ", &bad.display().to_string(), why]);
    }
}

#[test]
fn profiling_without_timestamp_queries_is_refused() {
    // The one feature a command needs that an adapter may lack: per-layer times need
    // timestamp queries (llvmpipe's GL has none). f16 models never need SHADER_F16: without
    // it, f16 is stored packed and computed in f32.
    let Some(gl) = deeproots::gpu::list_adapters(Some(deeproots::Backend::Gl))
        .into_iter()
        .find(|a| !a.timestamp_query)
    else {
        eprintln!("SKIPPED: no GL adapter without timestamp queries");
        return;
    };
    let path = tmp("profile-model.safetensors");
    model().save(&path, WeightDtype::F32).unwrap();
    let line = deeproots_refuses([
        "--backend".as_ref(),
        "gl".as_ref(),
        "profile".as_ref(),
        path.as_os_str(),
    ]);
    contains_all(&line, &[&gl.name, "no timestamp queries"]);
}

#[test]
fn non_finite_inputs_run() {
    if gpu().is_none() {
        return;
    }
    let m = model();
    let path = tmp("nan-model.safetensors");
    m.save(&path, WeightDtype::F32).unwrap();
    let mut values = vec![0.25f32; 2 * 432];
    values[7] = f32::NAN;
    values[432 + 9] = f32::INFINITY;
    let input = tmp("nan-input.safetensors");
    write_tensors(
        &input,
        &[("image", Dtype::F32, vec![2, 3, 12, 12], f32_bytes(&values))],
    );
    let output = tmp("nan-output.safetensors");
    deeproots_ok(run_args(&path, &input, &output));
    let data = std::fs::read(&output).unwrap();
    let st = SafeTensors::deserialize(&data).unwrap();
    let logits = st.tensor("logits").unwrap();
    assert_eq!(logits.shape(), [2, 5]);
    let values: Vec<f32> = logits
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    // What becomes of them depends on the ops they meet (see the README): only print it.
    println!("logits for a NaN and an Inf pixel: {values:?}");
}

#[test]
fn a_closed_stdout_ends_the_program_quietly() {
    // `deeproots zoo list | true`: the reader is gone before the first line is written.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_deeproots"))
        .args(["zoo", "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn layer_names_export_inspect_and_refuse_like_zoo_names() {
    // `zoo export` writes a one-conv model by its layer name; `inspect` reads it back.
    let path = tmp("layer.safetensors");
    deeproots_ok([
        "zoo".as_ref(),
        "export".as_ref(),
        "conv-8x6x6-12-k3-g4-s2".as_ref(),
        path.as_os_str(),
    ]);
    let out = deeproots_ok(["inspect".as_ref(), "--json".as_ref(), path.as_os_str()]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{out}");
    // 3 x 3 output pixels (6 + 2 - 3) / 2 + 1, 12 channels, 2 inputs per group x 9 taps.
    assert_eq!(v["multiply_adds"].as_u64(), Some(12 * 9 * 2 * 9));
    // A malformed or impossible layer name: one line saying which, exit code 1.
    let line = deeproots_refuses(["profile", "conv-8x6x6-12-k3-g5"]);
    contains_all(
        &line,
        &["conv-8x6x6-12-k3-g5: cannot build the layer", "groups 5"],
    );
    let line = deeproots_refuses(["profile", "conv-8x6x6-k3"]);
    contains_all(
        &line,
        &["'conv-8x6x6-k3' is not a layer name", "conv-<C>x<H>x<W>"],
    );
}
