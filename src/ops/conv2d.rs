//! 2-D convolution with filter groups, per-side padding, stride, dilation, bias and a fused
//! activation. Pointwise layers (1x1, stride 1, no padding) run as a matrix multiply per group
//! (`matmul`); everything else runs the direct kernel `shaders/conv2d.wgsl`.
//!
//! # Shapes
//! input `[N, C_in, H, W]`, weight `[C_out, C_in/groups, kh, kw]`, bias `[C_out]`,
//! output `[N, C_out, H_out, W_out]` with `H_out = (H + pad_top + pad_bottom - dh*(kh-1) - 1) / sh + 1`.

use super::{grid, matmul, nchw, u32_of, Activation};
use crate::error::{invalid, Result};
use crate::gpu::{Dispatch, Gpu, Kernel};
use crate::{Precision, Tensor};

/// The direct convolution kernel.
pub static KERNEL: Kernel = Kernel {
    name: "conv2d",
    source: include_str!("../../shaders/conv2d.wgsl"),
    inputs: &["x", "w", "b"],
};

/// A convolution layer's static facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvParams {
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Dilation `[dh, dw]`.
    pub dilation: [usize; 2],
    /// Zero padding `[top, left, bottom, right]`.
    pub padding: [usize; 4],
    /// Filter groups; `c_in` and `c_out` must both be divisible by it.
    pub groups: usize,
    /// Activation applied after the bias.
    pub activation: Activation,
}

impl ConvParams {
    /// A `k x k` convolution with stride 1, no padding, one group and no activation.
    pub fn new(c_in: usize, c_out: usize, k: usize) -> Self {
        Self {
            c_in,
            c_out,
            kernel: [k, k],
            stride: [1, 1],
            dilation: [1, 1],
            padding: [0; 4],
            groups: 1,
            activation: Activation::None,
        }
    }

    /// Checks the parameters on their own.
    pub fn validate(&self) -> Result<()> {
        let op = "conv2d";
        if self.c_in == 0 || self.c_out == 0 || self.groups == 0 {
            return Err(invalid(
                op,
                format!(
                    "channels and groups must be positive (c_in {}, c_out {}, groups {})",
                    self.c_in, self.c_out, self.groups
                ),
            ));
        }
        if self.kernel.contains(&0) || self.stride.contains(&0) || self.dilation.contains(&0) {
            return Err(invalid(
                op,
                format!(
                    "kernel {:?}, stride {:?} and dilation {:?} must be positive",
                    self.kernel, self.stride, self.dilation
                ),
            ));
        }
        if !self.c_in.is_multiple_of(self.groups) || !self.c_out.is_multiple_of(self.groups) {
            return Err(invalid(
                op,
                format!(
                    "groups {} must divide c_in {} and c_out {}",
                    self.groups, self.c_in, self.c_out
                ),
            ));
        }
        Ok(())
    }

    /// Weight shape `[c_out, c_in / groups, kh, kw]`.
    pub fn weight_shape(&self) -> [usize; 4] {
        [
            self.c_out,
            self.c_in / self.groups.max(1),
            self.kernel[0],
            self.kernel[1],
        ]
    }

    /// Output shape for an NCHW input, or why there is none.
    pub fn out_dims(&self, input: &[usize]) -> Result<[usize; 4]> {
        self.validate()?;
        let [n, c, h, w] = nchw("conv2d", input)?;
        if c != self.c_in {
            return Err(invalid(
                "conv2d",
                format!("input has {c} channels, the layer expects {}", self.c_in),
            ));
        }
        let [pt, pl, pb, pr] = self.padding;
        let span_h = self.dilation[0] * (self.kernel[0] - 1) + 1;
        let span_w = self.dilation[1] * (self.kernel[1] - 1) + 1;
        if h + pt + pb < span_h || w + pl + pr < span_w {
            return Err(invalid(
                "conv2d",
                format!(
                    "padded input {}x{} is smaller than the dilated kernel {span_h}x{span_w}",
                    h + pt + pb,
                    w + pl + pr
                ),
            ));
        }
        let ho = (h + pt + pb - span_h) / self.stride[0] + 1;
        let wo = (w + pl + pr - span_w) / self.stride[1] + 1;
        Ok([n, self.c_out, ho, wo])
    }

    /// True for a 1x1, stride 1, unpadded convolution: a matrix multiply per group.
    pub fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0; 4]
    }

    /// Multiply-adds per image: `C_out * H_out * W_out * (C_in / groups) * kh * kw`.
    pub fn multiply_adds(&self, out: [usize; 4]) -> u64 {
        let [_, c, h, w] = out;
        (c * h * w) as u64 * (self.c_in / self.groups * self.kernel[0] * self.kernel[1]) as u64
    }

    /// Parameters: weights plus `c_out` biases when there is a bias.
    pub fn params(&self, bias: bool) -> u64 {
        self.weight_shape().iter().product::<usize>() as u64
            + if bias { self.c_out as u64 } else { 0 }
    }

    /// The dispatches computing `y` from `x`, weight `w` and bias `b` (buffer indices).
    pub fn dispatches(
        &self,
        label: &str,
        input: &[usize],
        y: usize,
        x: usize,
        w: usize,
        b: usize,
    ) -> Result<Vec<Dispatch>> {
        let out = self.out_dims(input)?;
        let [n, c_in, h, wd] = nchw("conv2d", input)?;
        if self.is_pointwise() {
            let hw = h * wd;
            let (m, k) = (self.c_out / self.groups, c_in / self.groups);
            let mm = matmul::MatmulParams {
                m,
                n: hw,
                k,
                groups: self.groups,
                batches: n,
                b_strides: [c_in * hw, k * hw, hw, 1],
                c_strides: [self.c_out * hw, m * hw, hw, 1],
                activation: self.activation,
            };
            return mm.dispatches(label, y, x, w, b).map(|d| vec![d]);
        }
        let total = out.iter().product::<usize>();
        let u = |what: &str, v: usize| u32_of(label, what, v);
        let params = ConvUniform {
            n: u("batch", n)?,
            c_in: u("c_in", c_in)?,
            h: u("height", h)?,
            w: u("width", wd)?,
            c_out: u("c_out", self.c_out)?,
            ho: u("out height", out[2])?,
            wo: u("out width", out[3])?,
            groups: u("groups", self.groups)?,
            kh: u("kh", self.kernel[0])?,
            kw: u("kw", self.kernel[1])?,
            sh: u("sh", self.stride[0])?,
            sw: u("sw", self.stride[1])?,
            dh: u("dh", self.dilation[0])?,
            dw: u("dw", self.dilation[1])?,
            pt: u("pad top", self.padding[0])?,
            pl: u("pad left", self.padding[1])?,
            act: self.activation.code(),
            total: u("output size", total)?,
        };
        Ok(vec![Dispatch {
            label: label.to_string(),
            kernel: &KERNEL,
            constants: vec![],
            params: bytemuck::bytes_of(&params).to_vec(),
            workgroups: grid(total),
            output: y,
            inputs: vec![x, w, b],
        }])
    }
}

/// Mirrors `Params` in shaders/conv2d.wgsl, field for field.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ConvUniform {
    n: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    ho: u32,
    wo: u32,
    groups: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    dh: u32,
    dw: u32,
    pt: u32,
    pl: u32,
    act: u32,
    total: u32,
}

/// Checks weight and bias shapes against the params.
pub(crate) fn check_weights(p: &ConvParams, weight: &Tensor, bias: Option<&Tensor>) -> Result<()> {
    if weight.shape() != p.weight_shape() {
        return Err(invalid(
            "conv2d",
            format!(
                "weight has shape {:?}, expected {:?}",
                weight.shape(),
                p.weight_shape()
            ),
        ));
    }
    if let Some(b) = bias {
        if b.shape() != [p.c_out] {
            return Err(invalid(
                "conv2d",
                format!("bias has shape {:?}, expected [{}]", b.shape(), p.c_out),
            ));
        }
    }
    Ok(())
}

/// Runs one convolution on the GPU (a missing bias is zeros).
pub fn run(
    gpu: &Gpu,
    precision: Precision,
    p: &ConvParams,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    check_weights(p, weight, bias)?;
    let out = p.out_dims(x.shape())?;
    let zeros = Tensor::zeros([p.c_out]);
    let b = bias.unwrap_or(&zeros);
    let d = p.dispatches("conv2d", x.shape(), 0, 1, 2, 3)?;
    super::run_single(gpu, precision, "conv2d", &[x, weight, b], &out, d)
}
