//! Every input the fuzz targets (fuzz/) found a crash, an abort or a runaway with, replayed
//! through the same code: `tests/data/fuzz/<target>/`. The checks are in fuzz/checks.rs.

#[allow(dead_code)]
#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    for f in files {
        eprintln!("{target}: {}", f.display());
        check(&std::fs::read(&f).unwrap());
    }
}

#[test]
fn model_inputs() {
    replay("model", checks::model);
}

#[test]
fn graph_json_inputs() {
    replay("graph_json", checks::graph_json);
}

#[test]
fn image_inputs() {
    replay("image", checks::image);
}

#[test]
fn layer_name_inputs() {
    replay("layer_name", checks::layer_name);
}

fn data(path: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/fuzz")
            .join(path),
    )
    .unwrap()
}

fn refusal(r: deeproots::Result<impl std::fmt::Debug>) -> String {
    match r {
        Ok(v) => panic!("accepted: {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn sizes_claimed_by_a_file_are_refused_before_allocating() {
    use deeproots::Model;
    let cases = [
        ("model/huge-header-length", "header too large"),
        ("model/header-past-end", "invalid header length"),
        ("model/tensor-past-end", "not a valid safetensors file"),
        (
            "model/tensor-shape-overflow",
            "not a valid safetensors file",
        ),
        ("model/huge-input-shape", "at most 2147483648 elements"),
    ];
    for (file, want) in cases {
        let e = refusal(Model::from_bytes(&data(file)));
        assert!(e.contains(want), "{file}: {e}");
    }
    let input = deeproots::graph::json::RawInput {
        name: "image".into(),
        shape: vec![1, 28, 28],
        preprocess: Some(deeproots::graph::json::Preprocess {
            color: "gray".into(),
            mean: vec![0.0],
            std: vec![1.0],
            resize: Some(28),
            crop: None,
        }),
    };
    let e = refusal(deeproots::preprocess::load_bytes(
        "huge",
        &data("image/huge-claimed-size.png"),
        &input,
    ));
    assert!(e.contains("image huge: ") && e.contains("limit"), "{e}");
    let e = refusal(deeproots::preprocess::load_bytes(
        "thin",
        &data("image/thin-tall.png"),
        &input,
    ));
    assert!(
        e.contains(
            "resizing 1x8000 to a shorter side of 28 gives 28x224000, over the 8192-pixel limit"
        ),
        "{e}"
    );
}
