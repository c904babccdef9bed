//! Element-wise add with an optional fused activation: the residual connection
//! (`shaders/add.wgsl`).
//!
//! # Shapes
//! both inputs and the output share one shape.

use super::{elementwise, u32_of, Activation};
use crate::error::{invalid, Result};
use crate::gpu::{Dispatch, Gpu, Kernel};
use crate::{Precision, Tensor};

/// The add kernel.
pub static KERNEL: Kernel = Kernel {
    name: "add",
    source: include_str!("../../shaders/add.wgsl"),
    entry: "main",
    inputs: &["vec4 x", "vec4 r"],
};

/// Mirrors `Params` in shaders/add.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AddUniform {
    total: u32,
    act: u32,
}

/// Output shape: the common shape, or why the two differ.
pub fn out_dims(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    if a != b {
        return Err(invalid(
            "add",
            format!("operands have shapes {a:?} and {b:?}"),
        ));
    }
    if a.is_empty() || a.contains(&0) {
        return Err(invalid("add", format!("zero-sized operand {a:?}")));
    }
    Ok(a.to_vec())
}

/// The dispatch computing `y = act(x + r)`.
pub fn dispatches(
    label: &str,
    shape: &[usize],
    activation: Activation,
    y: usize,
    x: usize,
    r: usize,
) -> Result<Vec<Dispatch>> {
    let total: usize = shape.iter().product();
    let params = AddUniform {
        total: u32_of(label, "size", total)?,
        act: activation.code(),
    };
    // Four elements per invocation.
    Ok(vec![elementwise(
        label,
        &KERNEL,
        &params,
        total.div_ceil(4),
        y,
        vec![x, r],
    )])
}

/// Runs an add on the GPU.
#[cfg(not(target_arch = "wasm32"))]
pub fn run(
    gpu: &Gpu,
    precision: Precision,
    activation: Activation,
    a: &Tensor,
    b: &Tensor,
) -> Result<Tensor> {
    let out = out_dims(a.shape(), b.shape())?;
    let d = dispatches("add", &out, activation, 0, 1, 2)?;
    super::run_single(gpu, precision, "add", &[a, b], &out, d)
}
