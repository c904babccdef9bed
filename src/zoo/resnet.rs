//! ResNet with bottleneck blocks, v1 (the stride sits in the block's first 1x1 and in the
//! projection), as in the Caffe models the Deep Roots tables were measured on. Convs have no
//! bias; each is followed by batch norm (ReLU except before the residual add).
//!
//! Root-g: the 3x3 convolutions of res2, res3, res4, res5 get g, g/2, g/4, g/8 groups (never
//! fewer than 1); conv1 (7x7) and every 1x1 stay ungrouped.

use super::Variant;
use crate::error::Result;
use crate::graph::builder::{Conv, GraphBuilder};
use crate::ops::pool::{PoolKind, PoolParams};
use crate::ops::Activation;
use crate::Model;

pub(super) fn build(
    mut b: GraphBuilder,
    blocks: &[usize; 4],
    size: usize,
    v: Variant,
) -> Result<Model> {
    let g = v.root_groups();
    let x = b.input(
        "image",
        &[3, size, size],
        Some(super::imagenet_preprocess()),
    );
    let x = b.conv(
        "conv1",
        &x,
        &Conv::new(64, 7).stride(2).pad(3).no_bias().bn(),
    )?;
    let pool = PoolParams {
        kind: PoolKind::Max,
        kernel: [3, 3],
        stride: [2, 2],
        padding: [1; 4],
        ceil_mode: false,
    };
    let mut x = b.pool("pool1", &x, &pool)?;
    for (stage, &n) in blocks.iter().enumerate() {
        let width = 64 << stage;
        let groups = (g >> stage).max(1);
        for i in 0..n {
            let stride = if i == 0 && stage > 0 { 2 } else { 1 };
            let p = format!("res{}{}", stage + 2, block_suffix(i, n));
            let y = b.conv(
                &format!("{p}_branch2a"),
                &x,
                &Conv::new(width, 1).stride(stride).no_bias().bn(),
            )?;
            let y = b.conv(
                &format!("{p}_branch2b"),
                &y,
                &Conv::new(width, 3).groups(groups).no_bias().bn(),
            )?;
            let y = b.conv(
                &format!("{p}_branch2c"),
                &y,
                &Conv::new(4 * width, 1).act(Activation::None).no_bias().bn(),
            )?;
            let shortcut = if i == 0 {
                b.conv(
                    &format!("{p}_branch1"),
                    &x,
                    &Conv::new(4 * width, 1)
                        .stride(stride)
                        .act(Activation::None)
                        .no_bias()
                        .bn(),
                )?
            } else {
                x.clone()
            };
            x = b.add(&p, &shortcut, &y, Activation::Relu)?;
        }
    }
    let x = b.global_avg_pool("pool5", &x)?;
    let x = b.flatten("flatten", &x)?;
    let x = b.linear("fc1000", &x, 1000, Activation::None)?;
    b.finish(&[&x])
}

/// Caffe's block names: a, b, c, ... for short stages, a, b1, b2, ... for long ones.
fn block_suffix(i: usize, n: usize) -> String {
    match (i, n > 6) {
        (0, _) => "a".into(),
        (i, true) => format!("b{i}"),
        (i, false) => ((b'a' + i as u8) as char).to_string(),
    }
}
