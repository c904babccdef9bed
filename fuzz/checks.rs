//! What each fuzz target does with its input, shared by the targets (`fuzz_targets/`) and by
//! the regression test that replays every input they found (`tests/fuzz_regressions.rs`).
//! Each function may return early on a refusal; it must never panic, abort or run away.

use deeproots::graph::json::{Preprocess, RawGraph, RawInput};
use deeproots::graph::Graph;
use deeproots::{Model, Tensor};
use std::collections::{BTreeMap, HashMap};

/// A model file from bytes: the safetensors container, the graph JSON in its metadata, the
/// tensor data; then what `deeproots inspect` and loading for a run do without a GPU (batch
/// norm folding, costs, the memory plan).
pub fn model(data: &[u8]) {
    let Ok(model) = Model::from_bytes(data) else {
        return;
    };
    let _ = model.graph.total_cost();
    let _ = model.graph.layer_rows();
    let Ok(model) = model.fold_batch_norms() else {
        return;
    };
    let _ = model.graph.total_cost();
    let _ = deeproots::plan::Plan::new(&model.graph, 3);
}

/// A tensor's shape from its name in a fuzzed graph: `w[8,3,3,3]` is a `[8, 3, 3, 3]` tensor;
/// a name without brackets is missing from the file.
fn shape_of(name: &str) -> Option<Vec<usize>> {
    let open = name.rfind('[')?;
    let inner = name[open + 1..].strip_suffix(']')?;
    if inner.is_empty() {
        return Some(vec![]);
    }
    inner.split(',').map(|d| d.trim().parse().ok()).collect()
}

/// The graph JSON alone, tensor shapes read from the tensors' names (see `shape_of`), so the
/// fuzzer reaches shape checking without writing tensor data. A graph that validates must
/// survive a round trip through its file form; small ones are also built as models with zero
/// weights and have their batch norms folded.
pub fn graph_json(data: &[u8]) {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(raw) = serde_json::from_str::<RawGraph>(json) else {
        return;
    };
    let mut shapes = HashMap::new();
    for n in &raw.nodes {
        for t in n.weights.values() {
            if let Some(s) = shape_of(t) {
                shapes.insert(t.clone(), s);
            }
        }
    }
    let Ok(graph) = Graph::from_raw(&raw, &shapes) else {
        return;
    };
    let again = Graph::from_raw(&graph.to_raw(), &shapes).expect("a valid graph's file form");
    assert_eq!(again, graph, "round trip through the file form");
    let _ = graph.total_cost();
    let _ = graph.layer_rows();
    let _ = deeproots::plan::Plan::new(&graph, 2);
    let small = shapes.values().all(|s| {
        s.iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .is_some_and(|n| n <= 1 << 16)
    });
    if small {
        let weights: BTreeMap<String, Tensor> = shapes
            .iter()
            .map(|(k, s)| (k.clone(), Tensor::zeros(s.clone())))
            .collect();
        if let Ok(model) = Model::new(&raw, weights) {
            let _ = model.fold_batch_norms();
        }
    }
}

/// Image decoding from bytes, then the preprocess of an ImageNet-style input (resize the
/// shorter side, centre crop) and of a small grey one (a plain resize).
pub fn image(data: &[u8]) {
    let rgb = RawInput {
        name: "image".into(),
        shape: vec![3, 24, 24],
        preprocess: Some(Preprocess {
            color: "rgb".into(),
            mean: vec![123.7, 116.3, 103.5],
            std: vec![58.4, 57.1, 57.4],
            resize: Some(28),
            crop: Some(24),
        }),
    };
    let grey = RawInput {
        name: "image".into(),
        shape: vec![1, 28, 28],
        preprocess: None,
    };
    let _ = deeproots::preprocess::load_bytes("fuzz", data, &rgb);
    let _ = deeproots::preprocess::load_bytes("fuzz", data, &grey);
}

/// A zoo name: layer names (`conv-...`) parsed, and each accepted one named again and parsed
/// back to the same shape; small accepted layers are also built with zero weights and costed.
/// Other names go through the zoo's name parser.
pub fn layer_name(data: &[u8]) {
    use deeproots::zoo::{self, LayerSpec};
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let Some(Ok(spec)) = LayerSpec::parse(name) else {
        let _ = zoo::parse_name(name);
        return;
    };
    let again = LayerSpec::parse(&spec.name());
    assert!(
        matches!(again, Some(Ok(s)) if s == spec),
        "{name} -> {} -> {again:?}",
        spec.name()
    );
    // Building allocates every weight: only where that is small.
    let product = |v: &[usize]| v.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
    let side = spec.height.max(spec.width);
    let small = [
        product(&[spec.c_in, spec.height, spec.width]),
        product(&[
            spec.c_out,
            spec.c_in / spec.groups,
            spec.kernel,
            spec.kernel,
        ]),
        product(&[spec.c_out, side, side]),
    ]
    .iter()
    .all(|n| n.is_some_and(|n| n <= 1 << 16))
        && spec.pad <= 64;
    if small {
        let _ = zoo::cost(name);
    }
}
