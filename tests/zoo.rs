//! The zoo reproduces the published costs (../shared/reference/deep-roots-tables.md), and
//! every zoo model runs on the GPU with the CPU reference's result.

mod common;

use common::{check, deeproots_ok, modes, random, rng, tmp};
use deeproots::graph::Op;
use deeproots::{reference, zoo, Engine, Model, Precision, WeightDtype};

/// NIN on CIFAR-10: (variant, multiply-adds, params) as published.
const NIN: [(&str, u64, u64); 13] = [
    ("nin", 222_487_946, 966_986),
    ("nin-root-2", 163_505_546, 736_586),
    ("nin-root-4", 123_397_514, 455_498),
    ("nin-root-8", 103_343_498, 314_954),
    ("nin-root-16", 93_316_490, 244_682),
    ("nin-tree-2", 147_580_298, 487_754),
    ("nin-tree-4", 115_434_890, 331_082),
    ("nin-tree-8", 99_362_186, 252_746),
    ("nin-tree-16", 91_325_834, 213_578),
    ("nin-col-2", 152_888_714, 570_698),
    ("nin-col-4", 118_089_098, 372_554),
    ("nin-col-8", 100_689_290, 273_482),
    ("nin-col-16", 91_989_386, 223_946),
];

/// ResNet-50: (variant, MA x1e9, params x1e7).
const RESNET50: [(&str, f64, f64); 7] = [
    ("resnet50", 3.858, 2.550),
    ("resnet50-root-2", 3.685, 2.545),
    ("resnet50-root-4", 3.367, 2.513),
    ("resnet50-root-8", 2.861, 2.320),
    ("resnet50-root-16", 2.435, 1.869),
    ("resnet50-root-32", 2.221, 1.644),
    ("resnet50-root-64", 2.115, 1.531),
];

/// ResNet-200: (variant, params x1e7).
const RESNET200: [(&str, f64); 6] = [
    ("resnet200", 6.245),
    ("resnet200-root-2", 6.240),
    ("resnet200-root-8", 4.908),
    ("resnet200-root-16", 3.979),
    ("resnet200-root-32", 3.514),
    ("resnet200-root-64", 3.281),
];

/// GoogLeNet: (variant, MA x1e9, params x1e7).
const GOOGLENET: [(&str, f64, f64); 5] = [
    ("googlenet", 1.716, 1.881),
    ("googlenet-root-2", 1.543, 1.875),
    ("googlenet-root-4", 1.291, 1.852),
    ("googlenet-root-8", 0.964, 1.750),
    ("googlenet-root-16", 0.757, 1.631),
];

fn close(what: &str, got: f64, want: f64, tol: f64) {
    let rel = (got - want).abs() / want;
    println!(
        "{what}: {got:.4e} vs published {want:.4e} ({:+.3}%)",
        100.0 * (got - want) / want
    );
    assert!(
        rel <= tol,
        "{what}: {got} vs {want}: {:.3}% off, over {:.1}%",
        rel * 100.0,
        tol * 100.0
    );
}

#[test]
fn nin_matches_every_published_row_through_inspect_json() {
    for (name, ma, params) in NIN {
        let path = tmp(&format!("{name}.safetensors"));
        zoo::build(name, 1)
            .unwrap()
            .save(&path, WeightDtype::F16)
            .unwrap();
        let out = deeproots_ok(["inspect".as_ref(), "--json".as_ref(), path.as_os_str()]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["params"].as_u64(), Some(params), "{name}: parameters");
        // We count conv multiply-adds only; the published figures also count one per bias
        // (1,418 for every NIN variant), within the 0.1% asked.
        close(
            &format!("{name} MA"),
            v["multiply_adds"].as_u64().unwrap() as f64,
            ma as f64,
            0.001,
        );
        assert_eq!(
            ma - v["multiply_adds"].as_u64().unwrap(),
            1_418,
            "{name}: the offset is the bias count"
        );
    }
}

#[test]
fn resnet50_matches_the_published_table() {
    for (name, ma, params) in RESNET50 {
        let c = zoo::cost(name).unwrap();
        close(
            &format!("{name} MA"),
            c.multiply_adds as f64,
            ma * 1e9,
            0.005,
        );
        close(
            &format!("{name} params"),
            c.params as f64,
            params * 1e7,
            0.005,
        );
    }
}

/// Conv weights only: the published ResNet-200 counts leave out the classifier and biases.
fn conv_weight_params(m: &Model) -> u64 {
    m.graph
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Conv2d { weight, .. } => Some(m.weights[weight].len() as u64),
            _ => None,
        })
        .sum()
}

#[test]
fn resnet200_matches_the_published_parameters() {
    for (name, params) in RESNET200 {
        let m = zoo::build(name, 0).unwrap();
        close(
            &format!("{name} conv weights"),
            conv_weight_params(&m) as f64,
            params * 1e7,
            0.005,
        );
        // What `inspect` reports adds the classifier (2,049,000) and the folded biases.
        let c = zoo::cost(name).unwrap();
        assert_eq!(
            c.params - conv_weight_params(&m),
            2_049_000 + 88_000,
            "{name}"
        );
    }
}

#[test]
fn googlenet_matches_the_published_table_with_its_auxiliary_heads() {
    for (name, ma, params) in GOOGLENET {
        let c = zoo::build_googlenet_with_aux_heads(name, 0)
            .unwrap()
            .fold_batch_norms()
            .unwrap()
            .graph
            .total_cost();
        close(
            &format!("{name}+aux MA"),
            c.multiply_adds as f64,
            ma * 1e9,
            0.005,
        );
        close(
            &format!("{name}+aux params"),
            c.params as f64,
            params * 1e7,
            0.005,
        );
        let inference = zoo::cost(name).unwrap();
        assert!(inference.params < c.params && inference.multiply_adds < c.multiply_adds);
    }
}

#[test]
fn every_zoo_model_runs_on_the_gpu_like_the_reference() {
    let modes = modes();
    let Some(m) = modes.first() else { return };
    assert_eq!(m.precision, Precision::F32);
    let engine = Engine::from_gpu(m.gpu.clone());
    let mut rng = rng("every_zoo_model_runs_on_the_gpu_like_the_reference");
    for name in zoo::names() {
        let (arch, _) = zoo::parse_name(&name).unwrap();
        // ImageNet models at 32x32 keep their channel and group structure at a cost the CPU
        // reference can pay.
        let size = if arch.input_size() == 224 {
            32
        } else {
            arch.input_size()
        };
        let model = zoo::build_at(&name, 5, size)
            .unwrap()
            .fold_batch_norms()
            .unwrap();
        runs_like_the_reference(&engine, m, &mut rng, &name, &model, 1);
    }
}

/// Runs `model` on a random batch on the GPU and checks it against the CPU reference.
fn runs_like_the_reference(
    engine: &Engine,
    m: &common::Mode,
    rng: &mut rand::rngs::SmallRng,
    name: &str,
    model: &Model,
    batch: usize,
) {
    let x = random(rng, &[&[batch][..], &model.graph.inputs[0].shape].concat());
    let want = reference::graph::run(model, &[&x]).unwrap();
    let got = engine.load(model, m.precision).unwrap().run(&[&x]).unwrap();
    check(name, m, &got[0], &want[0]);
}

#[test]
fn layer_names_build_one_conv_of_the_named_shape() {
    let spec = zoo::LayerSpec::parse("conv-96x16x16-192-k5-g8-s2-p1")
        .unwrap()
        .unwrap();
    assert_eq!(
        spec,
        zoo::LayerSpec {
            c_in: 96,
            height: 16,
            width: 16,
            c_out: 192,
            kernel: 5,
            groups: 8,
            stride: 2,
            pad: 1,
        }
    );
    // Defaults: one group, stride 1, padding K / 2.
    let d = zoo::LayerSpec::parse("conv-3x8x8-4-k3").unwrap().unwrap();
    assert_eq!((d.groups, d.stride, d.pad), (1, 1, 1));
    assert!(zoo::LayerSpec::parse("nin-root-8").is_none());
    for bad in [
        "conv-",
        "conv-96x16-192-k5",
        "conv-96x16x16-192",
        "conv-96x16x16-192-5",
        "conv-96x16x16-0-k5",
        "conv-96x16x16-192-k5-q2",
        "conv-96x16x16-192-k5-g",
        "conv-96x16x16-192-k5-g2-g4",
    ] {
        let e = zoo::LayerSpec::parse(bad).unwrap().unwrap_err().to_string();
        assert!(e.contains("not a layer name"), "{bad}: {e}");
    }
    // NIN's conv1b alone: the zoo's count for that layer, 192 x 160 x 32 x 32.
    let c = zoo::cost("conv-192x32x32-160-k1").unwrap();
    assert_eq!(c.multiply_adds, 192 * 160 * 32 * 32);
    assert_eq!(c.params, 192 * 160 + 160);
    // NIN root-8's conv2a: 8 groups of 12 -> 24, 5x5, 16x16 output.
    let c = zoo::cost("conv-96x16x16-192-k5-g8").unwrap();
    assert_eq!(c.multiply_adds, 12 * 192 * 25 * 16 * 16);
    // Sizes past the graph's bounds are refused by the builder before any weight is drawn (a
    // 40 GB weight, a shape or padding that overflows).
    for (huge, want) in [
        ("conv-100000x1x1-100000-k1", "weight [100000, 100000, 1, 1]"),
        ("conv-18446744073709551615x2x2-4-k1", "input has more than"),
        (
            "conv-3x8x8-4-k3-p9223372036854775807",
            "must be at most 16777216",
        ),
        ("conv-3x100000x100000-4-k1", "input has more than"),
    ] {
        let e = zoo::build(huge, 0).unwrap_err().to_string();
        assert!(e.contains(want), "{huge}: {e}");
        assert!(e.starts_with(&format!("{huge}: cannot build")), "{e}");
    }
    // Illegal shapes are refused by the builder, not panicked on.
    assert!(zoo::build("conv-10x8x8-16-k3-g3", 0).is_err());
    assert!(zoo::build("conv-10x8x8-16-k9-p0", 0).is_err());

    // It runs like the reference, strided and grouped.
    let modes = modes();
    let Some(m) = modes.first() else { return };
    let engine = Engine::from_gpu(m.gpu.clone());
    let mut rng = rng("layer_names_build_one_conv_of_the_named_shape");
    for name in ["conv-16x9x9-24-k3-g4-s2", "conv-32x8x8-16-k1"] {
        let model = zoo::build(name, 3).unwrap();
        assert_eq!(model.graph.nodes.len(), 1, "{name}");
        runs_like_the_reference(&engine, m, &mut rng, name, &model, 2);
    }
}
