//! Global average pooling (`shaders/global_avg_pool.wgsl`).
//!
//! # Shapes
//! input `[N, C, H, W]`, output `[N, C, 1, 1]`.

use super::{elementwise, nchw, u32_of};
use crate::error::Result;
use crate::gpu::{Dispatch, Gpu, Kernel};
use crate::{Precision, Tensor};

/// The global average pool kernel.
pub static KERNEL: Kernel = Kernel {
    name: "global_avg_pool",
    source: include_str!("../../shaders/global_avg_pool.wgsl"),
    entry: "main",
    inputs: &["x"],
};

/// Mirrors `Params` in shaders/global_avg_pool.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GapUniform {
    hw: u32,
    total: u32,
}

/// Output shape `[N, C, 1, 1]`.
pub fn out_dims(input: &[usize]) -> Result<[usize; 4]> {
    let [n, c, _, _] = nchw("global_avg_pool", input)?;
    Ok([n, c, 1, 1])
}

/// The dispatch computing `y` from `x`.
pub fn dispatches(label: &str, input: &[usize], y: usize, x: usize) -> Result<Vec<Dispatch>> {
    let [n, c, h, w] = nchw(label, input)?;
    let params = GapUniform {
        hw: u32_of(label, "H x W", h * w)?,
        total: u32_of(label, "N x C", n * c)?,
    };
    Ok(vec![elementwise(
        label,
        &KERNEL,
        &params,
        n * c,
        y,
        vec![x],
    )])
}

/// Runs a global average pool on the GPU.
#[cfg(not(target_arch = "wasm32"))]
pub fn run(gpu: &Gpu, precision: Precision, x: &Tensor) -> Result<Tensor> {
    let out = out_dims(x.shape())?;
    let d = dispatches("global_avg_pool", x.shape(), 0, 1)?;
    super::run_single(gpu, precision, "global_avg_pool", &[x], &out, d)
}
