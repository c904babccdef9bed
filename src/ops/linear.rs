//! Fully connected layer `y = act(x W^T + b)`, run by the matmul kernel.
//!
//! # Shapes
//! input `[N, ...]` with `in_features` values per item, weight `[out_features, in_features]`,
//! bias `[out_features]`, output `[N, out_features]`.

use super::{matmul::MatmulParams, Activation};
use crate::error::{invalid, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::{Precision, Tensor};

/// A linear layer's static facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinearParams {
    /// Values per input item.
    pub in_features: usize,
    /// Values per output item.
    pub out_features: usize,
    /// Activation after the bias.
    pub activation: Activation,
}

impl LinearParams {
    /// Output shape `[N, out_features]` for an input `[N, ...]`.
    pub fn out_dims(&self, input: &[usize]) -> Result<[usize; 2]> {
        let (&n, rest) = input
            .split_first()
            .ok_or_else(|| invalid("linear", "input has no dimensions"))?;
        let f: usize = rest.iter().product();
        if n == 0 || self.in_features == 0 || self.out_features == 0 {
            return Err(invalid(
                "linear",
                format!("zero-sized input {input:?} or layer {self:?}"),
            ));
        }
        if f != self.in_features {
            return Err(invalid(
                "linear",
                format!(
                    "input {input:?} has {f} features per item, the layer expects {}",
                    self.in_features
                ),
            ));
        }
        Ok([n, self.out_features])
    }

    /// Weight shape `[out_features, in_features]`.
    pub fn weight_shape(&self) -> [usize; 2] {
        [self.out_features, self.in_features]
    }

    /// Multiply-adds per item.
    pub fn multiply_adds(&self) -> u64 {
        (self.in_features * self.out_features) as u64
    }

    /// The dispatch computing `y` from `x`, weight `w`, bias `b`.
    pub fn dispatches(
        &self,
        label: &str,
        input: &[usize],
        [y, x, w, b]: [usize; 4],
        min_workgroups: usize,
    ) -> Result<Vec<Dispatch>> {
        let [n, out] = self.out_dims(input)?;
        let mm = MatmulParams {
            m: out,
            n,
            k: self.in_features,
            groups: 1,
            batches: 1,
            b_strides: [0, 0, 1, self.in_features],
            c_strides: [0, 0, 1, out],
            activation: self.activation,
            k_split: MatmulParams::split_for(out, n, self.in_features, 1, min_workgroups),
            x8: false,
            rows: 8,
            subgroup: 0,
            row_width: 0,
            wide: false,
        };
        Ok(vec![mm.dispatches(label, y, x, w, b)?])
    }
}

/// Runs one linear layer on the GPU (a missing bias is zeros).
#[cfg(not(target_arch = "wasm32"))]
pub fn run(
    gpu: &Gpu,
    precision: Precision,
    p: &LinearParams,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let out = p.out_dims(x.shape())?;
    if weight.shape() != p.weight_shape() {
        return Err(invalid(
            "linear",
            format!(
                "weight has shape {:?}, expected {:?}",
                weight.shape(),
                p.weight_shape()
            ),
        ));
    }
    let zeros = Tensor::zeros([p.out_features]);
    let b = bias.unwrap_or(&zeros);
    if b.shape() != [p.out_features] {
        return Err(invalid(
            "linear",
            format!(
                "bias has shape {:?}, expected [{}]",
                b.shape(),
                p.out_features
            ),
        ));
    }
    let d = p.dispatches(
        "linear",
        x.shape(),
        [0, 1, 2, 3],
        super::min_workgroups(gpu),
    )?;
    super::run_single(gpu, precision, "linear", &[x, weight, b], &out, d)
}
