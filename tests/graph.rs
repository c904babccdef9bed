//! Whole graphs: the GPU executor against the CPU reference executor on random graphs built
//! from every op, the memory planner's invariants, save/load, and runs from many threads.

mod common;

use common::{check, gpu, modes, random, rng};
use deeproots::graph::builder::{Conv, GraphBuilder};
use deeproots::ops::pool::{PoolKind, PoolParams};
use deeproots::ops::Activation;
use deeproots::plan::Plan;
use deeproots::{reference, tensor::rel_l2, Engine, Model, Precision, Tensor, WeightDtype};
use rand::rngs::SmallRng;
use rand::Rng;

fn pool(kind: PoolKind, k: usize, s: usize, pad: usize, ceil: bool) -> PoolParams {
    PoolParams {
        kind,
        kernel: [k, k],
        stride: [s, s],
        padding: [pad; 4],
        ceil_mode: ceil,
    }
}

/// A random graph using every op: grouped root modules, residual adds, concat branches, max
/// and average pools, batch norms, global pooling, flatten, linear and softmax.
fn random_graph(rng: &mut SmallRng, seed: u64) -> Model {
    let mut b = GraphBuilder::new("random", seed);
    let hw = rng.random_range(9..=17);
    let mut x = b.input("image", &[3, hw, hw], None);
    let mut c = 4 * rng.random_range(2..=6);
    x = b.conv("stem", &x, &Conv::new(c, 3).bn()).unwrap();
    for i in 0..rng.random_range(3..=5) {
        let name = |s: &str| format!("b{i}_{s}");
        match rng.random_range(0..4) {
            0 => {
                // Root module: grouped k x k then the 1 x 1 embedding.
                let g = [1, 2, 4][rng.random_range(0..3)];
                let k = [3, 5][rng.random_range(0..2)];
                let mid = 4 * rng.random_range(2..=6);
                let r = b
                    .conv(&name("root"), &x, &Conv::new(mid, k).groups(g).bn())
                    .unwrap();
                c = 4 * rng.random_range(2..=6);
                x = b.conv(&name("embed"), &r, &Conv::new(c, 1)).unwrap();
            }
            1 => {
                // Residual block.
                let y = b
                    .conv(&name("a"), &x, &Conv::new(c, 3).groups(2).bn())
                    .unwrap();
                let y = b
                    .conv(&name("b"), &y, &Conv::new(c, 1).act(Activation::None).bn())
                    .unwrap();
                x = b.add(&name("add"), &x, &y, Activation::Relu).unwrap();
            }
            2 => {
                // Inception-style branches joined by a concat.
                let a = b.conv(&name("1x1"), &x, &Conv::new(8, 1)).unwrap();
                let m = b.conv(&name("3x3r"), &x, &Conv::new(8, 1)).unwrap();
                let m = b
                    .conv(&name("3x3"), &m, &Conv::new(12, 3).groups(2))
                    .unwrap();
                let p = b
                    .pool(&name("pool"), &x, &pool(PoolKind::Max, 3, 1, 1, false))
                    .unwrap();
                let p = b.conv(&name("proj"), &p, &Conv::new(4, 1)).unwrap();
                x = b.concat(&name("cat"), &[&a, &m, &p]).unwrap();
                c = 24;
            }
            _ => {
                let kind = if rng.random_bool(0.5) {
                    PoolKind::Max
                } else {
                    PoolKind::Avg {
                        count_include_pad: rng.random_bool(0.5),
                    }
                };
                if b.shape(&x).unwrap()[2] >= 3 {
                    x = b
                        .pool(&name("down"), &x, &pool(kind, 3, 2, 0, true))
                        .unwrap();
                }
            }
        }
    }
    let gp = b.global_avg_pool("gap", &x).unwrap();
    let f = b.flatten("flat", &gp).unwrap();
    let l = b.linear("fc", &f, 10, Activation::None).unwrap();
    let s = b.softmax("prob", &l).unwrap();
    b.finish(&[&s, &l]).unwrap()
}

#[test]
fn random_graphs_match_the_reference_executor() {
    let modes = modes();
    if modes.is_empty() {
        return;
    }
    let mut rng = rng("random_graphs_match_the_reference_executor");
    for trial in 0..6 {
        let seed = rng.random();
        let model = random_graph(&mut rng, seed);
        let folded = model.clone().fold_batch_norms().unwrap();
        assert!(
            folded.graph.nodes.len() < model.graph.nodes.len(),
            "batch norms were folded"
        );
        let batch = rng.random_range(1..=3);
        let shape = [&[batch][..], &model.graph.inputs[0].shape].concat();
        let x = random(&mut rng, &shape);
        let want = reference::graph::run(&model, &[&x]).unwrap();
        for m in &modes {
            let engine = Engine::from_gpu(m.gpu.clone());
            for (label, mdl) in [("folded", &folded), ("unfolded", &model)] {
                let exec = engine.load(mdl, m.precision).unwrap();
                let got = exec.run(&[&x]).unwrap();
                for (g, w) in got.iter().zip(&want) {
                    check(&format!("graph{trial}-{label}"), m, g, w);
                }
            }
        }
    }
}

fn nin_like() -> Model {
    let mut b = GraphBuilder::new("nin-like", 1);
    let x = b.input("image", &[3, 32, 32], None);
    let x = b.conv("conv1a", &x, &Conv::new(192, 5).bn()).unwrap();
    let x = b.conv("conv1b", &x, &Conv::new(160, 1).bn()).unwrap();
    let x = b.conv("conv1c", &x, &Conv::new(96, 1).bn()).unwrap();
    let x = b
        .pool("pool1", &x, &pool(PoolKind::Max, 3, 2, 0, true))
        .unwrap();
    let x = b
        .conv("conv2a", &x, &Conv::new(192, 5).groups(8).bn())
        .unwrap();
    let x = b.conv("conv2b", &x, &Conv::new(192, 1).bn()).unwrap();
    let x = b.conv("conv2c", &x, &Conv::new(192, 1).bn()).unwrap();
    let x = b
        .pool(
            "pool2",
            &x,
            &pool(
                PoolKind::Avg {
                    count_include_pad: true,
                },
                3,
                2,
                0,
                true,
            ),
        )
        .unwrap();
    let x = b
        .conv("conv3a", &x, &Conv::new(192, 3).groups(4).bn())
        .unwrap();
    let x = b.conv("conv3b", &x, &Conv::new(192, 1).bn()).unwrap();
    let x = b
        .conv("conv3c", &x, &Conv::new(10, 1).act(Activation::None))
        .unwrap();
    let x = b.global_avg_pool("pool3", &x).unwrap();
    let x = b.flatten("logits", &x).unwrap();
    b.finish(&[&x]).unwrap().fold_batch_norms().unwrap()
}

fn resnet_like() -> Model {
    let mut b = GraphBuilder::new("resnet-like", 2);
    let x = b.input("image", &[3, 224, 224], None);
    let x = b
        .conv("conv1", &x, &Conv::new(64, 7).stride(2).pad(3).bn())
        .unwrap();
    let mut x = b
        .pool("pool1", &x, &pool(PoolKind::Max, 3, 2, 1, false))
        .unwrap();
    let mut c_in = 64;
    for (stage, (w, n)) in [(64, 3), (128, 4), (256, 6), (512, 3)]
        .into_iter()
        .enumerate()
    {
        for blk in 0..n {
            let s = if blk == 0 && stage > 0 { 2 } else { 1 };
            let p = format!("res{}{}", stage + 2, (b'a' + blk as u8) as char);
            let y = b
                .conv(&format!("{p}_1"), &x, &Conv::new(w, 1).bn())
                .unwrap();
            let y = b
                .conv(
                    &format!("{p}_2"),
                    &y,
                    &Conv::new(w, 3).stride(s).groups(8).bn(),
                )
                .unwrap();
            let y = b
                .conv(
                    &format!("{p}_3"),
                    &y,
                    &Conv::new(4 * w, 1).act(Activation::None).bn(),
                )
                .unwrap();
            let short = if blk == 0 {
                b.conv(
                    &format!("{p}_proj"),
                    &x,
                    &Conv::new(4 * w, 1)
                        .stride(s)
                        .pad(0)
                        .act(Activation::None)
                        .bn(),
                )
                .unwrap()
            } else {
                x.clone()
            };
            x = b.add(&p, &short, &y, Activation::Relu).unwrap();
            c_in = 4 * w;
        }
    }
    let _ = c_in;
    let x = b.global_avg_pool("pool5", &x).unwrap();
    let x = b.flatten("flat", &x).unwrap();
    let x = b.linear("fc", &x, 1000, Activation::None).unwrap();
    b.finish(&[&x]).unwrap().fold_batch_norms().unwrap()
}

/// No two values alive at the same step share a slot, and every slot holds its values.
fn check_plan(model: &Model, batch: usize) -> Plan {
    let plan = Plan::new(&model.graph, batch).unwrap();
    let owners: Vec<_> = plan.lifetimes.iter().collect();
    for (i, (a, la)) in owners.iter().enumerate() {
        assert!(
            plan.slots[plan.value_slot[*a]] >= plan.value_len[*a],
            "{a} fits its slot"
        );
        for (b, lb) in &owners[i + 1..] {
            if plan.value_slot[*a] == plan.value_slot[*b] {
                assert!(
                    la.is_disjoint(lb),
                    "{a} {la:?} and {b} {lb:?} share slot {} while both alive",
                    plan.value_slot[*a]
                );
            }
        }
    }
    for n in &model.graph.nodes {
        assert!(
            plan.value_slot.contains_key(&n.name),
            "{} has a slot",
            n.name
        );
    }
    plan
}

#[test]
fn planner_reuses_memory_without_overlap() {
    let mut rng = rng("planner_reuses_memory_without_overlap");
    for _ in 0..30 {
        let seed = rng.random();
        let m = random_graph(&mut rng, seed);
        check_plan(&m, rng.random_range(1..=4));
    }
    for (m, batch) in [(nin_like(), 32), (resnet_like(), 1)] {
        let p = check_plan(&m, batch);
        println!(
            "peak activation memory {} batch {batch}: {:.1} MiB with reuse ({} buffers), {:.1} MiB without ({} values)",
            m.graph.name,
            p.pooled_elements() as f64 * 4.0 / 1048576.0,
            p.slots.len(),
            p.unpooled_elements() as f64 * 4.0 / 1048576.0,
            p.lifetimes.len()
        );
        assert!(p.pooled_elements() < p.unpooled_elements());
    }
}

#[test]
fn save_and_load_back_is_identical() {
    let mut rng = rng("save_and_load_back_is_identical");
    let seed = rng.random();
    let m = random_graph(&mut rng, seed);
    let back = Model::from_bytes(&m.to_bytes(WeightDtype::F32).unwrap()).unwrap();
    assert_eq!(back, m);
    let folded = m.clone().fold_batch_norms().unwrap();
    let back = Model::from_bytes(&folded.to_bytes(WeightDtype::F32).unwrap()).unwrap();
    assert_eq!(back, folded);
    // f16 weights: the same graph, every weight rounded to f16.
    let half = Model::from_bytes(&m.to_bytes(WeightDtype::F16).unwrap()).unwrap();
    assert_eq!(half.graph, m.graph);
    for (k, t) in &m.weights {
        let h = &half.weights[k];
        for (a, b) in t.data().iter().zip(h.data()) {
            assert_eq!(half::f16::from_f32(*a).to_f32(), *b);
        }
    }
}

#[test]
fn batches_larger_than_a_chunk_are_split() {
    let Some(g) = gpu() else { return };
    let mut rng = rng("batches_larger_than_a_chunk_are_split");
    let seed = rng.random();
    let model = random_graph(&mut rng, seed).fold_batch_norms().unwrap();
    let engine = Engine::from_gpu(g.clone());
    let whole = engine.load(&model, Precision::F32).unwrap();
    let chunked = engine
        .load(&model, Precision::F32)
        .unwrap()
        .with_max_chunk(2);
    assert_eq!(chunked.max_chunk(), 2);
    let shape = [&[5][..], &model.graph.inputs[0].shape].concat();
    let x = random(&mut rng, &shape);
    let a = whole.run(&[&x]).unwrap();
    let b = chunked.run(&[&x]).unwrap();
    if deeproots::ops::target(g).cpu {
        // The CPU adapters' kernels add in the same order at every batch size.
        assert_eq!(a, b, "chunks of 2+2+1 give the batch-of-5 result");
    } else {
        // GPUs choose some kernels by batch size (K split, the small-batch linear kernel),
        // which changes the order of additions: the same result up to rounding.
        for (a, b) in a.iter().zip(&b) {
            assert_eq!(a.shape(), b.shape());
            let e = rel_l2(a.data(), b.data());
            assert!(
                e <= 1e-6,
                "chunks of 2+2+1 vs the batch of 5: relative L2 {e:.2e}"
            );
        }
    }
}

#[test]
fn one_model_run_from_many_threads() {
    // 8 threads x 50 runs, each bit-identical to the single-threaded result.
    let Some(g) = gpu() else { return };
    let mut rng = rng("one_model_run_from_many_threads");
    let seed = rng.random();
    let model = random_graph(&mut rng, seed).fold_batch_norms().unwrap();
    let exec = Engine::from_gpu(g.clone())
        .load(&model, Precision::F32)
        .unwrap();
    let inputs: Vec<Tensor> = (0..4)
        .map(|_| random(&mut rng, &[&[2][..], &model.graph.inputs[0].shape].concat()))
        .collect();
    let expected: Vec<_> = inputs.iter().map(|x| exec.run(&[x]).unwrap()).collect();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (exec, inputs, expected) = (&exec, &inputs, &expected);
            s.spawn(move || {
                for r in 0..50 {
                    let i = (t + r) % inputs.len();
                    assert_eq!(
                        exec.run(&[&inputs[i]]).unwrap(),
                        expected[i],
                        "thread {t} run {r}"
                    );
                }
            });
        }
    });
}

#[test]
fn concat_inputs_are_written_in_place_unless_read_elsewhere() {
    let mut b = GraphBuilder::new("branches", 3);
    let x = b.input("image", &[6, 9, 7], None);
    let a = b.conv("a", &x, &Conv::new(5, 1)).unwrap();
    let m = b.conv("m", &x, &Conv::new(4, 3).groups(2)).unwrap();
    let p = b
        .pool("p", &x, &pool(PoolKind::Max, 3, 1, 1, false))
        .unwrap();
    // `a` is also read by `e`, `x` is the graph input: both copied.
    let cat = b.concat("cat", &[&a, &m, &p, &x]).unwrap();
    let e = b.conv("e", &a, &Conv::new(3, 3).bn()).unwrap();
    // A concat feeding a concat is copied; `e`'s batch norm output goes in place.
    let cat2 = b.concat("cat2", &[&e, &cat]).unwrap();
    let model = b.finish(&[&cat2]).unwrap();
    // (Folding keeps the batch norm's output name.)
    for mdl in [&model, &model.clone().fold_batch_norms().unwrap()] {
        let plan = check_plan(mdl, 2);
        let mut in_place: Vec<&str> = plan.in_place.keys().map(String::as_str).collect();
        in_place.sort();
        let mut want = vec!["m", "p", "e_bn"];
        want.sort();
        assert_eq!(in_place, want);
        for (v, ip) in &plan.in_place {
            assert_eq!(plan.value_slot[v], plan.value_slot[&ip.concat], "{v}");
            assert!(!plan.lifetimes.contains_key(v), "{v} owns no storage");
        }
        assert_eq!(plan.in_place["m"].offset, 5 * 63);
        assert_eq!(plan.in_place["p"].offset, 9 * 63);
        assert_eq!(plan.in_place["p"].stride, 21 * 63);
    }
    let mut rng = rng("concat_inputs_are_written_in_place_unless_read_elsewhere");
    let x = random(&mut rng, &[2, 6, 9, 7]);
    let want = reference::graph::run(&model, &[&x]).unwrap();
    for m in &modes() {
        let engine = Engine::from_gpu(m.gpu.clone());
        let folded = model.clone().fold_batch_norms().unwrap();
        for (label, mdl) in [("unfolded", &model), ("folded", &folded)] {
            let got = engine.load(mdl, m.precision).unwrap().run(&[&x]).unwrap();
            check(&format!("in-place concat {label}"), m, &got[0], &want[0]);
        }
    }
}

#[test]
fn concat_branches_store_4_vectors_in_place_where_aligned() {
    // Maps of 8x8 and 12x12: every branch's offset, channel range and the concat's channels per
    // image are multiples of 4 elements, so the kernels that store 4-vectors keep doing so in
    // place (the 1x1 matmul, the 8-channel row tiles, the direct row kernel alone and in channel
    // pairs); 6x6 rows hold 6 (no 4-vector runs), 5x5 maps leave some offsets unaligned.
    for hw in [8, 12, 6, 5] {
        let mut b = GraphBuilder::new("aligned-branches", 7);
        let x = b.input("image", &[8, hw, hw], None);
        let a = b.conv("a", &x, &Conv::new(4, 1)).unwrap();
        let m = b
            .conv("m", &x, &Conv::new(16, 3).act(Activation::Relu))
            .unwrap();
        let d = b.conv("d", &x, &Conv::new(8, 3).groups(8)).unwrap();
        let q = b.conv("q", &x, &Conv::new(8, 5).pad(2).groups(4)).unwrap();
        let p = b
            .pool("p", &x, &pool(PoolKind::Max, 3, 1, 1, false))
            .unwrap();
        let cat = b.concat("cat", &[&a, &m, &d, &q, &p]).unwrap();
        let model = b.finish(&[&cat]).unwrap();
        let plan = check_plan(&model, 2);
        assert_eq!(plan.in_place.len(), 5, "{hw}x{hw}");
        let mut rng = rng("concat_branches_store_4_vectors_in_place_where_aligned");
        let x = random(&mut rng, &[2, 8, hw, hw]);
        let want = reference::graph::run(&model, &[&x]).unwrap();
        for m in &modes() {
            let got = Engine::from_gpu(m.gpu.clone())
                .load(&model, m.precision)
                .unwrap()
                .run(&[&x])
                .unwrap();
            check(
                &format!("aligned in-place concat {hw}x{hw}"),
                m,
                &got[0],
                &want[0],
            );
        }
    }
}

#[test]
fn strided_pointwise_convolutions_split_into_subsample_and_matmul_keep_their_results() {
    let mut b = GraphBuilder::new("strided-1x1", 5);
    let x = b.input("image", &[12, 9, 7], None);
    let a = b
        .conv("a", &x, &Conv::new(16, 1).stride(2).act(Activation::Relu))
        .unwrap();
    let c = b
        .conv("c", &x, &Conv::new(16, 1).stride(3).groups(4).no_bias())
        .unwrap();
    let c = b.conv("c2", &c, &Conv::new(16, 1).pad(0)).unwrap();
    // Padded: left alone.
    let p = b.conv("p", &x, &Conv::new(16, 1).stride(2).pad(1)).unwrap();
    // The same input and stride as `a`: its subsample is shared.
    let d = b.conv("d", &x, &Conv::new(8, 1).stride(2)).unwrap();
    let model = b.finish(&[&a, &c, &p, &d]).unwrap();
    let split = model
        .graph
        .with_strided_pointwise_split(&model.tensor_shapes())
        .unwrap();
    let names: Vec<&str> = split.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        ["a_subsample", "a", "c_subsample", "c", "c2", "p", "d"]
    );
    let d = split.nodes.iter().find(|n| n.name == "d").unwrap();
    assert_eq!(d.inputs, ["a_subsample"]);
    for v in ["a", "c", "c2", "p", "d"] {
        assert_eq!(split.shape(v, 2), model.graph.shape(v, 2), "{v}");
    }
    let mut rng = rng("strided_pointwise_convolutions_split");
    let x = random(&mut rng, &[2, 12, 9, 7]);
    let want = reference::graph::run(&model, &[&x]).unwrap();
    // The reference on the split graph gives the same results.
    let split_model = Model {
        graph: split,
        ..model.clone()
    };
    for (g, w) in reference::graph::run(&split_model, &[&x])
        .unwrap()
        .iter()
        .zip(&want)
    {
        assert_eq!(g, w);
    }
    for m in &modes() {
        let exec = Engine::from_gpu(m.gpu.clone())
            .load(&model, m.precision)
            .unwrap();
        let cpu = deeproots::ops::target(m.gpu).cpu;
        assert_eq!(
            exec.graph().nodes.iter().any(|n| n.name == "a_subsample"),
            cpu,
            "split on CPU adapters only"
        );
        for (i, (g, w)) in exec.run(&[&x]).unwrap().iter().zip(&want).enumerate() {
            check(&format!("strided 1x1 output {i}"), m, g, w);
        }
    }
}
