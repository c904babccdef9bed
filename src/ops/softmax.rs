//! Softmax over the channel axis (`shaders/softmax.wgsl`).
//!
//! # Shapes
//! input `[N, C, ...]`, output the same; each `(n, spatial)` row of C values sums to 1.

use super::{elementwise, u32_of};
use crate::error::{invalid, Result};
use crate::gpu::{Dispatch, Gpu, Kernel};
use crate::{Precision, Tensor};

/// The softmax kernel.
pub static KERNEL: Kernel = Kernel {
    name: "softmax",
    source: include_str!("../../shaders/softmax.wgsl"),
    entry: "main",
    inputs: &["x"],
};

/// Mirrors `Params` in shaders/softmax.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SoftmaxUniform {
    c: u32,
    inner: u32,
    total: u32,
}

/// `(channels, inner size)` of a softmax input `[N, C, ...]`.
pub fn split(shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 || shape.contains(&0) {
        return Err(invalid(
            "softmax",
            format!("expected a non-empty [N, C, ...] input, got {shape:?}"),
        ));
    }
    Ok((shape[1], shape[2..].iter().product()))
}

/// The dispatch computing `y = softmax(x)` over axis 1.
pub fn dispatches(label: &str, shape: &[usize], y: usize, x: usize) -> Result<Vec<Dispatch>> {
    let (c, inner) = split(shape)?;
    let total: usize = shape.iter().product();
    let params = SoftmaxUniform {
        c: u32_of(label, "channels", c)?,
        inner: u32_of(label, "inner size", inner)?,
        total: u32_of(label, "size", total)?,
    };
    Ok(vec![elementwise(
        label,
        &KERNEL,
        &params,
        total,
        y,
        vec![x],
    )])
}

/// Runs a softmax on the GPU.
#[cfg(not(target_arch = "wasm32"))]
pub fn run(gpu: &Gpu, precision: Precision, x: &Tensor) -> Result<Tensor> {
    let d = dispatches("softmax", x.shape(), 0, 1)?;
    super::run_single(gpu, precision, "softmax", &[x], x.shape(), d)
}
