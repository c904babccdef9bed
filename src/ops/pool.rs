//! Max and average pooling with per-side padding and ceil mode (`shaders/pool.wgsl`).
//!
//! # Shapes
//! input `[N, C, H, W]`, output `[N, C, H_out, W_out]`; with ceil mode
//! `H_out = ceil((H + pt + pb - kh) / sh) + 1`, less one when the last window would start in the
//! bottom padding (PyTorch's rule); without, the floor.

use super::{grid, nchw, u32_of};
use crate::error::{invalid, Result};
use crate::gpu::{Dispatch, Gpu, Kernel};
use crate::{Precision, Tensor};

/// The pooling kernel.
pub static KERNEL: Kernel = Kernel {
    name: "pool",
    source: include_str!("../../shaders/pool.wgsl"),
    entry: "main",
    inputs: &["vec4 x"],
};

/// Which reduction a pool applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// Maximum over the window (padding never wins).
    Max,
    /// Mean over the window.
    Avg {
        /// Divide by the padded window size (true) or by the real elements only (false).
        count_include_pad: bool,
    },
}

/// A pooling layer's static facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolParams {
    /// Max or average.
    pub kind: PoolKind,
    /// Window `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Padding `[top, left, bottom, right]`; each side smaller than the window.
    pub padding: [usize; 4],
    /// Round the output size up (PyTorch `ceil_mode`).
    pub ceil_mode: bool,
}

fn out_len(len: usize, k: usize, s: usize, p0: usize, p1: usize, ceil: bool) -> Option<usize> {
    let span = (len + p0 + p1).checked_sub(k)?;
    if !ceil {
        return Some(span / s + 1);
    }
    let mut out = span.div_ceil(s) + 1;
    // The last window must start inside the input or the leading padding.
    if (out - 1) * s >= len + p0 {
        out -= 1;
    }
    Some(out)
}

impl PoolParams {
    /// Output shape for an NCHW input, or why there is none.
    pub fn out_dims(&self, input: &[usize]) -> Result<[usize; 4]> {
        let [n, c, h, w] = nchw("pool", input)?;
        if self.kernel.contains(&0) || self.stride.contains(&0) {
            return Err(invalid(
                "pool",
                format!(
                    "kernel {:?} and stride {:?} must be positive",
                    self.kernel, self.stride
                ),
            ));
        }
        let [pt, pl, pb, pr] = self.padding;
        if pt.max(pb) >= self.kernel[0] || pl.max(pr) >= self.kernel[1] {
            return Err(invalid(
                "pool",
                format!(
                    "padding {:?} must be smaller than the window {:?} on every side",
                    self.padding, self.kernel
                ),
            ));
        }
        let ho = out_len(h, self.kernel[0], self.stride[0], pt, pb, self.ceil_mode);
        let wo = out_len(w, self.kernel[1], self.stride[1], pl, pr, self.ceil_mode);
        match (ho, wo) {
            (Some(ho), Some(wo)) => Ok([n, c, ho, wo]),
            _ => Err(invalid(
                "pool",
                format!(
                    "window {:?} is larger than the padded input {}x{}",
                    self.kernel,
                    h + pt + pb,
                    w + pl + pr
                ),
            )),
        }
    }

    /// Output rows each invocation computes, reading each input row once for all of them: 4
    /// (a 3x3 window: 6 input rows for 4 output rows instead of 12 with stride 1, 9 instead of
    /// 12 with stride 2). On lavapipe, GoogLeNet's stride-1 max pools 1.15-1.37x; its stride-2
    /// pools were no faster until each row is reduced over its 4 windows before the output
    /// rows take it, then 1.1-1.25x (docs/results/lavapipe-accumulators-folds.txt).
    pub fn rows_per_invocation(&self) -> usize {
        4
    }

    /// Whether the 3-wide windows read their rows as 4-vectors on inputs `w` wide, and after how
    /// many single values (`VEC_X`, `X_LEAD` in `shaders/pool.wgsl`): W a multiple of 4 and
    /// the left padding 0 or 1 (stride 1 or 2), so that each invocation's columns after the
    /// padding's worth start a 4-vector.
    fn vec_x(&self, w: usize) -> Option<usize> {
        let pl = self.padding[1];
        (self.kernel[1] == 3 && w.is_multiple_of(4) && self.stride[1] <= 2 && pl <= 1).then_some(pl)
    }

    /// The dispatch computing `y` from `x`.
    pub fn dispatches(
        &self,
        label: &str,
        input: &[usize],
        y: usize,
        x: usize,
    ) -> Result<Vec<Dispatch>> {
        let out = self.out_dims(input)?;
        // One invocation per 4 outputs of `rows` rows.
        let rows = self.rows_per_invocation();
        let total = out[0] * out[1] * out[2].div_ceil(rows) * out[3].div_ceil(4);
        let u = |what: &str, v: usize| u32_of(label, what, v);
        let (is_max, count_pad) = match self.kind {
            PoolKind::Max => (true, false),
            PoolKind::Avg { count_include_pad } => (false, count_include_pad),
        };
        let params = PoolUniform {
            h: u("height", input[2])?,
            w: u("width", input[3])?,
            ho: u("out height", out[2])?,
            wo: u("out width", out[3])?,
            pt: u("pad", self.padding[0])?,
            pl: u("pad", self.padding[1])?,
            pb: u("pad", self.padding[2])?,
            pr: u("pad", self.padding[3])?,
            total: u("output size / 4", total)?,
        };
        // The window, strides and kind are compiled into the pipeline.
        let constant = |what: &str, v: usize| u(what, v).map(f64::from);
        let flag = |v: bool| f64::from(u8::from(v));
        let vec_x = self.vec_x(input[3]);
        Ok(vec![Dispatch {
            label: label.to_string(),
            kernel: &KERNEL,
            constants: vec![
                ("KH", constant("kh", self.kernel[0])?),
                ("KW", constant("kw", self.kernel[1])?),
                ("SH", constant("sh", self.stride[0])?),
                ("SW", constant("sw", self.stride[1])?),
                ("IS_MAX", flag(is_max)),
                ("COUNT_PAD", flag(count_pad)),
                ("ROWS", rows as f64),
                ("VEC_Y", flag(out[3].is_multiple_of(4))),
                ("VEC_X", flag(vec_x.is_some())),
                ("X_LEAD", vec_x.unwrap_or(0) as f64),
            ],
            params: bytemuck::bytes_of(&params).to_vec(),
            workgroups: grid(total),
            output: y,
            inputs: vec![x],
            output_view: None,
        }])
    }
}

/// Mirrors `Params` in shaders/pool.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PoolUniform {
    h: u32,
    w: u32,
    ho: u32,
    wo: u32,
    pt: u32,
    pl: u32,
    pb: u32,
    pr: u32,
    total: u32,
}

/// Runs one pooling layer on the GPU.
#[cfg(not(target_arch = "wasm32"))]
pub fn run(gpu: &Gpu, precision: Precision, p: &PoolParams, x: &Tensor) -> Result<Tensor> {
    let out = p.out_dims(x.shape())?;
    let d = p.dispatches("pool", x.shape(), 0, 1)?;
    super::run_single(gpu, precision, "pool", &[x], &out, d)
}
