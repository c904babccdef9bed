//! Concatenation along channels (`shaders/concat.wgsl`, one dispatch per input).
//!
//! # Shapes
//! inputs `[N, C_i, H, W]`, output `[N, sum C_i, H, W]`.

use super::{elementwise, nchw, u32_of};
use crate::error::{invalid, Result};
use crate::gpu::{Dispatch, Gpu, Kernel};
use crate::{Precision, Tensor};

/// The channel-slice copy kernel.
pub static KERNEL: Kernel = Kernel {
    name: "concat",
    source: include_str!("../../shaders/concat.wgsl"),
    entry: "main",
    inputs: &["x"],
};

/// Mirrors `Params` in shaders/concat.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ConcatUniform {
    c_src: u32,
    c_dst: u32,
    c_off: u32,
    hw: u32,
    total: u32,
}

/// Output shape, or why the inputs cannot be concatenated.
pub fn out_dims(inputs: &[&[usize]]) -> Result<[usize; 4]> {
    let first = inputs
        .first()
        .ok_or_else(|| invalid("concat", "needs at least one input"))?;
    let [n, _, h, w] = nchw("concat", first)?;
    let mut c = 0;
    for s in inputs {
        let [n2, c2, h2, w2] = nchw("concat", s)?;
        if (n2, h2, w2) != (n, h, w) {
            return Err(invalid(
                "concat",
                format!("inputs {first:?} and {s:?} differ outside the channel axis"),
            ));
        }
        c += c2;
    }
    Ok([n, c, h, w])
}

/// One dispatch per input, each writing its channel slice of `y`.
pub fn dispatches(
    label: &str,
    inputs: &[&[usize]],
    y: usize,
    xs: &[usize],
) -> Result<Vec<Dispatch>> {
    let [_, c_dst, h, w] = out_dims(inputs)?;
    let mut off = 0;
    let mut out = Vec::new();
    for (s, &x) in inputs.iter().zip(xs) {
        let total: usize = s.iter().product();
        let params = ConcatUniform {
            c_src: u32_of(label, "channels", s[1])?,
            c_dst: u32_of(label, "channels", c_dst)?,
            c_off: u32_of(label, "channels", off)?,
            hw: u32_of(label, "H x W", h * w)?,
            total: u32_of(label, "size", total)?,
        };
        // Four elements per invocation.
        let invocations = total.div_ceil(4);
        out.push(elementwise(
            label,
            &KERNEL,
            &params,
            invocations,
            y,
            vec![x],
        ));
        off += s[1];
    }
    Ok(out)
}

/// Runs a concat on the GPU.
#[cfg(not(target_arch = "wasm32"))]
pub fn run(gpu: &Gpu, precision: Precision, inputs: &[&Tensor]) -> Result<Tensor> {
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
    let out = out_dims(&shapes)?;
    let xs: Vec<usize> = (1..=inputs.len()).collect();
    let d = dispatches("concat", &shapes, 0, &xs)?;
    super::run_single(gpu, precision, "concat", inputs, &out, d)
}
