//! Network in Network (Lin et al.) as in the Deep Roots tables: every conv has a bias and is
//! followed by batch norm + ReLU except the last; padding keeps the spatial size.
//!
//! Grouping (conv1a and every 1x1 stay ungrouped): root-g = (conv2a g, conv3a g/2),
//! tree-g = (g, 2g), column-g = (g, g).

use super::Variant;
use crate::error::Result;
use crate::graph::builder::{Conv, GraphBuilder};
use crate::graph::json::Preprocess;
use crate::ops::pool::{PoolKind, PoolParams};
use crate::ops::Activation;
use crate::Model;

/// Fashion-MNIST class names, index = label.
pub const FASHION_MNIST_LABELS: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// CIFAR-10 class names, index = label.
pub const CIFAR10_LABELS: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

fn groups(v: Variant) -> (usize, usize) {
    match v {
        Variant::Orig => (1, 1),
        Variant::Root(g) => (g, (g / 2).max(1)),
        Variant::Tree(g) => (g, 2 * g),
        Variant::Column(g) => (g, g),
    }
}

fn pool3s2(kind: PoolKind) -> PoolParams {
    PoolParams {
        kind,
        kernel: [3, 3],
        stride: [2, 2],
        padding: [0; 4],
        ceil_mode: true,
    }
}

pub(super) fn build(
    mut b: GraphBuilder,
    channels: usize,
    size: usize,
    v: Variant,
) -> Result<Model> {
    let (g2, g3) = groups(v);
    let pre = if channels == 1 {
        b.labels(FASHION_MNIST_LABELS.iter().map(|s| s.to_string()).collect());
        Preprocess {
            color: "gray".into(),
            mean: vec![72.93],
            std: vec![90.015],
            resize: None,
            crop: None,
        }
    } else {
        b.labels(CIFAR10_LABELS.iter().map(|s| s.to_string()).collect());
        Preprocess {
            color: "rgb".into(),
            mean: vec![125.3, 123.0, 113.9],
            std: vec![63.0, 62.1, 66.7],
            resize: None,
            crop: None,
        }
    };
    let x = b.input("image", &[channels, size, size], Some(pre));
    let x = b.conv("conv1a", &x, &Conv::new(192, 5).bn())?;
    let x = b.conv("conv1b", &x, &Conv::new(160, 1).bn())?;
    let x = b.conv("conv1c", &x, &Conv::new(96, 1).bn())?;
    let x = b.pool("pool1", &x, &pool3s2(PoolKind::Max))?;
    let x = b.conv("conv2a", &x, &Conv::new(192, 5).groups(g2).bn())?;
    let x = b.conv("conv2b", &x, &Conv::new(192, 1).bn())?;
    let x = b.conv("conv2c", &x, &Conv::new(192, 1).bn())?;
    let x = b.pool(
        "pool2",
        &x,
        &pool3s2(PoolKind::Avg {
            count_include_pad: true,
        }),
    )?;
    let x = b.conv("conv3a", &x, &Conv::new(192, 3).groups(g3).bn())?;
    let x = b.conv("conv3b", &x, &Conv::new(192, 1).bn())?;
    let x = b.conv("conv3c", &x, &Conv::new(10, 1).act(Activation::None))?;
    let x = b.global_avg_pool("pool3", &x)?;
    let x = b.flatten("logits", &x)?;
    b.finish(&[&x])
}
