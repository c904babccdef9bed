//! Inference-time batch normalization: as a per-channel affine kernel
//! (`shaders/batch_norm.wgsl`), and folded into the convolution before it.
//!
//! # Shapes
//! input `[N, C, H, W]`; gamma, beta, mean and var `[C]`.

use super::{conv2d::ConvParams, elementwise, nchw, u32_of, Activation};
use crate::error::{invalid, Result};
use crate::gpu::{Dispatch, Gpu, Kernel};
use crate::{Precision, Tensor};

/// The per-channel affine kernel.
pub static KERNEL: Kernel = Kernel {
    name: "batch_norm",
    source: include_str!("../../shaders/batch_norm.wgsl"),
    entry: "main",
    inputs: &["x", "s", "t"],
};

/// Learned and running statistics of a batch norm layer.
#[derive(Debug, Clone)]
pub struct BatchNorm {
    /// Scale (gamma), `[C]`.
    pub gamma: Vec<f32>,
    /// Shift (beta), `[C]`.
    pub beta: Vec<f32>,
    /// Running mean, `[C]`.
    pub mean: Vec<f32>,
    /// Running variance, `[C]`.
    pub var: Vec<f32>,
    /// Added to the variance.
    pub eps: f64,
}

impl BatchNorm {
    /// Channels; refuses statistics of different lengths or a negative variance.
    pub fn channels(&self) -> Result<usize> {
        let c = self.gamma.len();
        if [self.beta.len(), self.mean.len(), self.var.len()]
            .iter()
            .any(|&l| l != c)
        {
            return Err(invalid(
                "batch_norm",
                format!(
                    "gamma, beta, mean, var have lengths {}, {}, {}, {}",
                    c,
                    self.beta.len(),
                    self.mean.len(),
                    self.var.len()
                ),
            ));
        }
        if self
            .var
            .iter()
            .any(|&v| (v as f64 + self.eps).partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater))
        {
            return Err(invalid("batch_norm", "var + eps must be positive"));
        }
        Ok(c)
    }

    /// The affine form `(s, t)` with `y = x * s + t`, computed in f64.
    pub fn scale_shift(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        let c = self.channels()?;
        let mut s = Vec::with_capacity(c);
        let mut t = Vec::with_capacity(c);
        for i in 0..c {
            let si = self.gamma[i] as f64 / (self.var[i] as f64 + self.eps).sqrt();
            s.push(si as f32);
            t.push((self.beta[i] as f64 - self.mean[i] as f64 * si) as f32);
        }
        Ok((s, t))
    }

    /// Folds this batch norm into the convolution before it: returns the new weight and bias
    /// (`w' = w * s[co]`, `b' = b * s + t`). The conv's activation must come after the norm.
    pub fn fold_into_conv(
        &self,
        p: &ConvParams,
        weight: &Tensor,
        bias: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        super::conv2d::check_weights(p, weight, bias)?;
        let (s, t) = self.scale_shift()?;
        if s.len() != p.c_out {
            return Err(invalid(
                "batch_norm",
                format!(
                    "has {} channels, the conv before it has {} outputs",
                    s.len(),
                    p.c_out
                ),
            ));
        }
        let per = weight.len() / p.c_out;
        let mut w = weight.clone();
        for (co, chunk) in w.data_mut().chunks_mut(per).enumerate() {
            for v in chunk {
                *v = (*v as f64 * s[co] as f64) as f32;
            }
        }
        let b: Vec<f32> = (0..p.c_out)
            .map(|co| {
                let b0 = bias.map_or(0.0, |b| b.data()[co] as f64);
                (b0 * s[co] as f64 + t[co] as f64) as f32
            })
            .collect();
        Ok((w, Tensor::new([p.c_out], b)?))
    }
}

/// Mirrors `Params` in shaders/batch_norm.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct BnUniform {
    c: u32,
    hw: u32,
    total: u32,
    act: u32,
}

/// The dispatch computing `y = act(x * s + t)` per channel (`s`, `t` are buffers `[C]`).
pub fn dispatches(
    label: &str,
    shape: &[usize],
    activation: Activation,
    y: usize,
    x: usize,
    s: usize,
    t: usize,
) -> Result<Vec<Dispatch>> {
    let [n, c, h, w] = nchw(label, shape)?;
    let total = n * c * h * w;
    let params = BnUniform {
        c: u32_of(label, "channels", c)?,
        hw: u32_of(label, "H x W", h * w)?,
        total: u32_of(label, "size", total)?,
        act: activation.code(),
    };
    Ok(vec![elementwise(
        label,
        &KERNEL,
        &params,
        total,
        y,
        vec![x, s, t],
    )])
}

/// Runs a batch norm on the GPU.
#[cfg(not(target_arch = "wasm32"))]
pub fn run(
    gpu: &Gpu,
    precision: Precision,
    bn: &BatchNorm,
    activation: Activation,
    x: &Tensor,
) -> Result<Tensor> {
    let [_, c, _, _] = nchw("batch_norm", x.shape())?;
    if bn.channels()? != c {
        return Err(invalid(
            "batch_norm",
            format!("has {} channels, input {:?}", bn.channels()?, x.shape()),
        ));
    }
    let (s, t) = bn.scale_shift()?;
    let (s, t) = (Tensor::new([c], s)?, Tensor::new([c], t)?);
    let d = dispatches("batch_norm", x.shape(), activation, 0, 1, 2, 3)?;
    super::run_single(gpu, precision, "batch_norm", &[x, &s, &t], x.shape(), d)
}
