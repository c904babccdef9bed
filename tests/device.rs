//! What a caller meets when the device fails or is too small: a lost device is an error (and a
//! new device works), a model too large for one binding is refused at load (and the engine
//! still works), and a batch larger than the device holds is split into chunks.

mod common;

use common::{gpu, random, rng};
use deeproots::graph::builder::{Conv, GraphBuilder};
use deeproots::ops::Activation;
use deeproots::{Engine, Error, Gpu, GpuOptions, Model, Precision, Tensor};
use std::sync::Arc;

/// A model on `[c, side, side]` inputs: a 1x1 conv to `width` channels, then (with `root`) a
/// grouped 3x3 conv, pooling and a linear layer.
fn model(c_in: usize, side: usize, width: usize, root: bool) -> Model {
    let mut b = GraphBuilder::new("device", 5);
    let x = b.input("image", &[c_in, side, side], None);
    let mut x = b.conv("expand", &x, &Conv::new(width, 1)).unwrap();
    if root {
        x = b
            .conv("root", &x, &Conv::new(width, 3).pad(1).groups(4))
            .unwrap();
    }
    let x = b.global_avg_pool("gap", &x).unwrap();
    let x = b.flatten("flat", &x).unwrap();
    let x = b.linear("logits", &x, 3, Activation::None).unwrap();
    b.finish(&[&x]).unwrap()
}

#[test]
fn a_lost_device_is_an_error_and_a_new_device_works() {
    let Some(_) = gpu() else { return };
    let options = GpuOptions::from_env().unwrap();
    let m = model(3, 8, 8, true);
    let x = random(
        &mut rng("a_lost_device_is_an_error_and_a_new_device_works"),
        &[2, 3, 8, 8],
    );
    let lost = Arc::new(Gpu::new(&options).unwrap());
    let exec = Engine::from_gpu(lost.clone())
        .load(&m, Precision::F32)
        .unwrap();
    let want = exec.run(&[&x]).unwrap();

    lost.destroy();
    match exec.run(&[&x]) {
        Err(Error::DeviceLost(msg)) => println!("run after loss: {msg}"),
        other => panic!("expected DeviceLost, got {other:?}"),
    }
    // A new batch size needs new buffers and programs on the lost device: refused the same way.
    let three = random(&mut rng("lost/3"), &[3, 3, 8, 8]);
    assert!(
        matches!(exec.run(&[&three]), Err(Error::DeviceLost(_))),
        "a new batch size on a lost device"
    );
    match Engine::from_gpu(lost.clone()).load(&m, Precision::F32) {
        Err(Error::DeviceLost(_)) => {}
        other => panic!("expected DeviceLost loading onto a lost device, got {other:?}"),
    }
    drop(exec);

    let fresh = Engine::new(&options).unwrap();
    let again = fresh.load(&m, Precision::F32).unwrap().run(&[&x]).unwrap();
    assert_eq!(again, want, "a new device gives the same outputs");
}

#[test]
fn a_model_too_large_for_the_device_is_refused_and_the_engine_still_works() {
    let Some(g) = gpu() else { return };
    let engine = Engine::from_gpu(g.clone());
    // One image's input alone is larger than one storage binding: refused at load, before any
    // activation buffer is made.
    let limit = g.max_binding_bytes();
    let side = ((limit / 4) as f64).sqrt() as usize + 16;
    let mut b = GraphBuilder::new("huge", 0);
    let x = b.input("image", &[1, side, side], None);
    let x = b.global_avg_pool("gap", &x).unwrap();
    let huge = b.finish(&[&x]).unwrap();
    match engine.load(&huge, Precision::F32) {
        Err(e @ Error::BufferTooLarge { .. }) => {
            let msg = e.to_string();
            println!("{msg}");
            assert!(
                msg.starts_with("huge: one image's activations: needs a buffer of"),
                "{msg}"
            );
        }
        other => panic!("expected BufferTooLarge, got {other:?}"),
    }
    let small = model(3, 8, 8, true);
    let x = random(&mut rng("engine_still_works"), &[1, 3, 8, 8]);
    let out = engine
        .load(&small, Precision::F32)
        .unwrap()
        .run(&[&x])
        .unwrap();
    assert_eq!(out[0].shape(), [1, 3]);
    assert!(out[0].data().iter().all(|v| v.is_finite()));
}

#[test]
fn more_groups_than_one_dispatch_dimension_are_refused_by_name() {
    let Some(g) = gpu() else { return };
    let c = g.max_workgroups() as usize + 1;
    let mut b = GraphBuilder::new("wide", 0);
    let x = b.input("x", &[c, 1, 1], None);
    let y = b.conv("dw", &x, &Conv::new(c, 3).groups(c)).unwrap();
    let m = b.finish(&[&y]).unwrap();
    match Engine::from_gpu(g.clone()).load(&m, Precision::F32) {
        Err(e @ Error::InvalidOp { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("dw") && msg.contains(&format!("{c} groups")),
                "{msg}"
            );
        }
        other => panic!("expected InvalidOp, got {other:?}"),
    }
}

#[test]
fn a_batch_larger_than_the_device_holds_is_split() {
    let Some(g) = gpu() else { return };
    // Channels so that one image's widest activation is about 40% of a storage binding: at
    // most two images fit one submission.
    let side = 256;
    let limit = g.max_binding_bytes() as usize;
    let width = limit * 2 / 5 / 4 / (side * side);
    let m = model(1, side, width.max(1), false);
    let exec = Engine::from_gpu(g.clone())
        .load(&m, Precision::F32)
        .unwrap();
    assert!(exec.max_chunk() <= 2, "max chunk {}", exec.max_chunk());
    let mut r = rng("a_batch_larger_than_the_device_holds_is_split");
    let images: Vec<Tensor> = (0..5)
        .map(|_| random(&mut r, &[1, 1, side, side]))
        .collect();
    let batch = Tensor::new(
        [5, 1, side, side],
        images
            .iter()
            .flat_map(|t| t.data().iter().copied())
            .collect(),
    )
    .unwrap();
    let whole = exec.run(&[&batch]).unwrap();
    assert_eq!(whole[0].shape(), [5, 3]);
    let one_by_one: Vec<f32> = images
        .iter()
        .flat_map(|x| exec.run(&[x]).unwrap()[0].data().to_vec())
        .collect();
    assert_eq!(whole[0].data(), one_by_one.as_slice());
}
