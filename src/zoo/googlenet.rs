//! GoogLeNet (Inception v1, Szegedy et al.) with batch norm after every conv, auxiliary heads
//! left out at inference.
//!
//! The geometry is the one behind the Deep Roots figures, recovered from them: pools 3 and 4
//! pad by one (ceil mode), so stage 4 runs at 15x15 and stage 5 at 8x8, and the final 7x7
//! average pool (stride 1) leaves 2x2, so the classifier reads 4096 values. The published
//! parameter counts also include the two auxiliary heads (5x5/3 average pool, 1x1 conv to 128,
//! fully connected 1024 and 1000); `with_aux` builds them as extra outputs for that comparison.
//!
//! Root-g: conv2's 3x3 gets g groups; the 3x3 and 5x5 convolutions inside the inception
//! modules get g/2 in 3a-3b, g/4 in 4a-4e, g/8 in 5a-5b (never fewer than 1); 1x1 layers stay
//! ungrouped.

use super::Variant;
use crate::error::Result;
use crate::graph::builder::{Conv, GraphBuilder};
use crate::ops::pool::{PoolKind, PoolParams};
use crate::ops::Activation;
use crate::Model;

/// An inception module: (name, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection, group
/// divisor of the variant's g).
type Module = (
    &'static str,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
);

const MODULES: [Module; 9] = [
    ("3a", 64, 96, 128, 16, 32, 32, 2),
    ("3b", 128, 128, 192, 32, 96, 64, 2),
    ("4a", 192, 96, 208, 16, 48, 64, 4),
    ("4b", 160, 112, 224, 24, 64, 64, 4),
    ("4c", 128, 128, 256, 24, 64, 64, 4),
    ("4d", 112, 144, 288, 32, 64, 64, 4),
    ("4e", 256, 160, 320, 32, 128, 128, 4),
    ("5a", 256, 160, 320, 32, 128, 128, 8),
    ("5b", 384, 192, 384, 48, 128, 128, 8),
];

fn max_pool(k: usize, s: usize, pad: usize) -> PoolParams {
    PoolParams {
        kind: PoolKind::Max,
        kernel: [k, k],
        stride: [s, s],
        padding: [pad; 4],
        ceil_mode: true,
    }
}

pub(super) fn build(mut b: GraphBuilder, size: usize, v: Variant, with_aux: bool) -> Result<Model> {
    let g = v.root_groups();
    let x = b.input(
        "image",
        &[3, size, size],
        Some(super::imagenet_preprocess()),
    );
    let x = b.conv("conv1", &x, &Conv::new(64, 7).stride(2).pad(3).bn())?;
    let x = b.pool("pool1", &x, &max_pool(3, 2, 0))?;
    let x = b.conv("conv2_reduce", &x, &Conv::new(64, 1).bn())?;
    let x = b.conv("conv2", &x, &Conv::new(192, 3).groups(g).bn())?;
    let mut x = b.pool("pool2", &x, &max_pool(3, 2, 0))?;
    let mut aux = Vec::new();
    for (m, c1, r3, c3, r5, c5, pp, div) in MODULES {
        if m == "4a" {
            x = b.pool("pool3", &x, &max_pool(3, 2, 1))?;
        }
        if m == "5a" {
            x = b.pool("pool4", &x, &max_pool(3, 2, 1))?;
        }
        let gm = (g / div).max(1);
        let p = format!("inception_{m}");
        let a = b.conv(&format!("{p}_1x1"), &x, &Conv::new(c1, 1).bn())?;
        let t = b.conv(&format!("{p}_3x3_reduce"), &x, &Conv::new(r3, 1).bn())?;
        let t = b.conv(&format!("{p}_3x3"), &t, &Conv::new(c3, 3).groups(gm).bn())?;
        let f = b.conv(&format!("{p}_5x5_reduce"), &x, &Conv::new(r5, 1).bn())?;
        let f = b.conv(&format!("{p}_5x5"), &f, &Conv::new(c5, 5).groups(gm).bn())?;
        let q = b.pool(&format!("{p}_pool"), &x, &max_pool(3, 1, 1))?;
        let q = b.conv(&format!("{p}_pool_proj"), &q, &Conv::new(pp, 1).bn())?;
        x = b.concat(&format!("{p}_output"), &[&a, &t, &f, &q])?;
        if with_aux && (m == "4a" || m == "4d") {
            let head = if m == "4a" { "loss1" } else { "loss2" };
            let avg = PoolParams {
                kind: PoolKind::Avg {
                    count_include_pad: true,
                },
                kernel: [5, 5],
                stride: [3, 3],
                padding: [0; 4],
                ceil_mode: true,
            };
            let h = b.pool(&format!("{head}_ave_pool"), &x, &avg)?;
            let h = b.conv(&format!("{head}_conv"), &h, &Conv::new(128, 1).bn())?;
            let h = b.flatten(&format!("{head}_flatten"), &h)?;
            let h = b.linear(&format!("{head}_fc"), &h, 1024, Activation::Relu)?;
            aux.push(b.linear(&format!("{head}_classifier"), &h, 1000, Activation::None)?);
        }
    }
    let side = b.shape(&x)?[2];
    let avg = PoolParams {
        kind: PoolKind::Avg {
            count_include_pad: true,
        },
        kernel: [7.min(side); 2],
        stride: [1, 1],
        padding: [0; 4],
        ceil_mode: false,
    };
    let x = b.pool("pool5", &x, &avg)?;
    let x = b.flatten("flatten", &x)?;
    let x = b.linear("loss3_classifier", &x, 1000, Activation::None)?;
    let outputs: Vec<&str> = std::iter::once(x.as_str())
        .chain(aux.iter().map(String::as_str))
        .collect();
    b.finish(&outputs)
}
