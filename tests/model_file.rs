//! Hand-broken model files are refused with an error naming the node and the problem.

use deeproots::graph::builder::{Conv, GraphBuilder};
use deeproots::graph::json::METADATA_KEY;
use deeproots::ops::Activation;
use deeproots::{Error, Model, WeightDtype};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde_json::{json, Value};
use std::collections::HashMap;

fn small() -> Model {
    let mut b = GraphBuilder::new("small", 7);
    let x = b.input("image", &[8, 6, 6], None);
    let x = b
        .conv("conv1", &x, &Conv::new(8, 3).groups(2).bn())
        .unwrap();
    let x = b
        .conv("conv2", &x, &Conv::new(4, 1).act(Activation::None))
        .unwrap();
    let x = b.global_avg_pool("pool", &x).unwrap();
    let x = b.flatten("logits", &x).unwrap();
    b.finish(&[&x]).unwrap()
}

/// The file's graph JSON and tensors (name, dtype, shape, bytes).
type Parts = (Value, Vec<(String, Dtype, Vec<usize>, Vec<u8>)>);

fn parts(m: &Model) -> Parts {
    let bytes = m.to_bytes(WeightDtype::F32).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let graph = serde_json::from_str(&meta.metadata().as_ref().unwrap()[METADATA_KEY]).unwrap();
    let tensors = st
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                v.dtype(),
                v.shape().to_vec(),
                v.data().to_vec(),
            )
        })
        .collect();
    (graph, tensors)
}

fn file(graph: Option<&Value>, tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let views: Vec<_> = tensors
        .iter()
        .map(|(k, d, s, b)| (k.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let meta = graph.map(|g| HashMap::from([(METADATA_KEY.to_string(), g.to_string())]));
    safetensors::serialize(views, meta).unwrap()
}

fn node<'a>(g: &'a mut Value, name: &str) -> &'a mut Value {
    g["nodes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|n| n["name"] == name)
        .unwrap()
}

/// Breaks a copy of the small model with `edit` and expects a refusal containing `want`.
fn refused(
    what: &str,
    want: &[&str],
    edit: impl FnOnce(&mut Value, &mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>),
) {
    let (mut g, mut t) = parts(&small());
    edit(&mut g, &mut t);
    let bytes = file(Some(&g), &t);
    match Model::from_bytes(&bytes) {
        Ok(_) => panic!("{what}: a broken file was accepted"),
        Err(e) => {
            let msg = e.to_string();
            for w in want {
                assert!(
                    msg.contains(w),
                    "{what}: error '{msg}' should mention '{w}'"
                );
            }
            eprintln!("{what}: {msg}");
        }
    }
}

#[test]
fn the_small_model_itself_loads() {
    let (g, t) = parts(&small());
    Model::from_bytes(&file(Some(&g), &t)).unwrap();
}

#[test]
fn broken_graphs_are_refused_naming_the_node() {
    refused("unknown op", &["conv2", "unknown op 'conv3d'"], |g, _| {
        node(g, "conv2")["op"] = json!("conv3d")
    });
    refused("newer schema", &["schema version 2"], |g, _| {
        g["version"] = json!(2)
    });
    refused(
        "missing tensor",
        &["conv2", "'nope' is not in the file"],
        |g, _| node(g, "conv2")["weights"]["weight"] = json!("nope"),
    );
    refused(
        "unused tensor",
        &["'extra' is in the file but no node uses it"],
        |_, t| t.push(("extra".into(), Dtype::F32, vec![1], vec![0; 4])),
    );
    refused(
        "kernel/weight mismatch",
        &["conv1", "kernel [5, 5]"],
        |g, _| node(g, "conv1")["attrs"]["kernel"] = json!([5, 5]),
    );
    refused("bias shape", &["conv2", "bias"], |_, t| {
        let b = t.iter_mut().find(|x| x.0 == "conv2.bias").unwrap();
        b.2 = vec![2];
        b.3.truncate(8);
    });
    refused(
        "groups not dividing channels",
        &["conv1", "groups 3"],
        |g, _| node(g, "conv1")["attrs"]["groups"] = json!(3),
    );
    refused("cycle", &["cycle"], |g, _| {
        node(g, "conv1")["inputs"] = json!(["conv2"])
    });
    refused(
        "dangling input",
        &["conv2", "'ghost' is produced by nothing"],
        |g, _| node(g, "conv2")["inputs"] = json!(["ghost"]),
    );
    refused(
        "missing output",
        &["nowhere", "graph output does not exist"],
        |g, _| g["outputs"] = json!(["nowhere"]),
    );
    refused(
        "unknown attribute",
        &["conv1", "unknown attribute 'padd'"],
        |g, _| node(g, "conv1")["attrs"]["padd"] = json!([1, 1, 1, 1]),
    );
    refused("bad attribute", &["conv1", "'stride'"], |g, _| {
        node(g, "conv1")["attrs"]["stride"] = json!("two")
    });
    refused("wrong arity", &["conv2", "takes 1 input"], |g, _| {
        node(g, "conv2")["inputs"] = json!(["conv1_bn", "image"])
    });
    refused("duplicate name", &["conv1", "already exists"], |g, _| {
        node(g, "conv2")["name"] = json!("conv1")
    });
    refused("wrong dtype", &["conv2.weight", "I32"], |_, t| {
        t.iter_mut().find(|x| x.0 == "conv2.weight").unwrap().1 = Dtype::I32
    });
    refused("wrong format", &["format"], |g, _| {
        g["format"] = json!("onnx")
    });
}

#[test]
fn broken_containers_are_refused() {
    let (g, t) = parts(&small());
    let good = file(Some(&g), &t);
    for cut in [0, 7, 8, 100, good.len() - 1] {
        match Model::from_bytes(&good[..cut]) {
            Err(Error::ModelFile(m)) => eprintln!("truncated at {cut}: {m}"),
            other => panic!("truncated at {cut}: expected ModelFile, got {other:?}"),
        }
    }
    match Model::from_bytes(&file(None, &t)) {
        Err(Error::ModelFile(m)) => assert!(m.contains(METADATA_KEY), "{m}"),
        other => panic!("no metadata: {other:?}"),
    }
    let mut g2 = g.clone();
    g2["nodes"] = json!("not a list");
    assert!(matches!(
        Model::from_bytes(&file(Some(&g2), &t)),
        Err(Error::ModelFile(_))
    ));
}
