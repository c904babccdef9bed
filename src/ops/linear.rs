//! Fully connected layer `y = act(x W^T + b)`: the row kernel (`shaders/linear.wgsl`) for
//! small batches, the matmul kernel for larger ones.
//!
//! # Shapes
//! input `[N, ...]` with `in_features` values per item, weight `[out_features, in_features]`,
//! bias `[out_features]`, output `[N, out_features]`.

use super::{
    matmul::{MatmulForm, MatmulParams},
    u32_of, Activation, Target,
};
use crate::error::{invalid, Result};
use crate::gpu::{Dispatch, Gpu, Kernel};
use crate::{Precision, Tensor};

/// The small-batch kernel with one output per invocation (entry `main`).
pub static KERNEL: Kernel = Kernel {
    name: "linear",
    source: include_str!("../../shaders/linear.wgsl"),
    entry: "main",
    inputs: &["vec4 x", "vec4 w", "b"],
};

/// [`KERNEL`] for four items per invocation (entry `main4`).
pub static KERNEL4: Kernel = Kernel {
    name: "linear4",
    source: include_str!("../../shaders/linear.wgsl"),
    entry: "main4",
    inputs: &["vec4 x", "vec4 w", "b"],
};

/// The small-batch kernel with 8 outputs per workgroup and K spread over its invocations
/// (entry `main_split`).
pub static SPLIT_KERNEL: Kernel = Kernel {
    name: "linear_split",
    source: include_str!("../../shaders/linear.wgsl"),
    entry: "main_split",
    inputs: &["vec4 x", "vec4 w", "b"],
};

/// `linear.wgsl` with its subgroup entry point appended (only devices with subgroups compile
/// it).
const SG_SOURCE: &str = concat!(
    include_str!("../../shaders/linear.wgsl"),
    include_str!("../../shaders/subgroup_weights.wgsl"),
    include_str!("../../shaders/linear_sg.wgsl")
);

/// [`KERNEL4`] for CPU adapters with subgroups: two outputs and 8 items per invocation, the
/// items' inputs loaded once per subgroup and broadcast (entry `main_sg`).
pub static SG_KERNEL: Kernel = Kernel {
    name: "linear_sg",
    source: SG_SOURCE,
    entry: "main_sg",
    inputs: &["vec4 x", "vec4 w", "b"],
};

/// The subgroup size [`LinearKernel::RowsSg`] runs with on `target` for rows of `in_features`
/// values: the target's (4 or at least 8), where it has subgroups and `in_features` is a
/// multiple of 4 (the kernel reads 4-vectors); else `None`, it cannot run.
fn rows_sg_subgroup(in_features: usize, target: Target) -> Option<u32> {
    target.subgroup.filter(|_| in_features.is_multiple_of(4))
}

/// Which kernel runs a linear layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearKernel {
    /// `shaders/linear.wgsl`, `main`: one output per invocation, each reading its weight row
    /// from start to end (sequential streams for a CPU adapter's SIMD lanes); weights read once
    /// per item.
    Rows,
    /// `shaders/linear.wgsl`, `main4`: [`LinearKernel::Rows`] for four items per invocation;
    /// weights read once per four items.
    Rows4,
    /// `shaders/linear.wgsl`, `main_split`: 8 outputs per workgroup, neighbouring invocations
    /// reading neighbouring weights of a row (coalesced on GPUs) and adding their partial sums
    /// in workgroup memory; weights read once per item.
    RowsSplit,
    /// `shaders/linear_sg.wgsl`, `main_sg`: two outputs by 8 items per invocation, each input
    /// loaded once per subgroup and broadcast; weights read once per 8 items. Needs subgroups
    /// and `in_features` a multiple of 4.
    RowsSg,
    /// The matmul kernel (`shaders/matmul.wgsl`): 32 x 32 output tiles, weights read once per
    /// 32 items.
    Matmul,
}

impl LinearKernel {
    /// The default kernel for a batch of `n` items of `in_features` values on `target`. On
    /// lavapipe (GoogLeNet's classifier, 4096 -> 1000) the matmul took 46 ms from batch 1 to 8
    /// and 66 at 32, `Rows` 2.7 ms per item, `Rows4` 7.0 ms per four items. `RowsSg` is taken
    /// from batch 2 on CPU adapters where it can run ([`rows_sg_subgroup`]): lavapipe, 1024 ->
    /// 1000 alone, best of 3, batch 16 1.8 ms (`Rows4` 12.1), 32 3.4 (14.2), 2 0.92 (`Rows`
    /// 1.45), but batch 1 1.29 (`Rows` 0.71). On an H100 `RowsSplit` took 0.066 ms at batch 1,
    /// 0.068 at 16 and 0.109 at 32, the matmul 0.187 at 16 and 0.231 at 32
    /// (docs/results/h100-tiles.txt); larger batches, unmeasured, keep the matmul's reuse of
    /// each weight. `DEEPROOTS_LINEAR` ([`Self::forced`]) overrides the choice.
    pub fn for_layer(n: usize, in_features: usize, target: Target) -> LinearKernel {
        if let Some(k) = Self::forced() {
            return k;
        }
        let sg = rows_sg_subgroup(in_features, target).is_some();
        match (target.cpu, n) {
            (true, 0..=2) => LinearKernel::Rows,
            (true, _) if sg => LinearKernel::RowsSg,
            (true, _) => LinearKernel::Rows4,
            (false, 0..=32) => LinearKernel::RowsSplit,
            (false, _) => LinearKernel::Matmul,
        }
    }

    /// The name `DEEPROOTS_LINEAR` takes: `rows`, `rows4`, `split`, `rows-sg` or `matmul`.
    pub fn name(self) -> &'static str {
        match self {
            LinearKernel::Rows => "rows",
            LinearKernel::Rows4 => "rows4",
            LinearKernel::RowsSplit => "split",
            LinearKernel::RowsSg => "rows-sg",
            LinearKernel::Matmul => "matmul",
        }
    }

    /// Parses a [`Self::name`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Rows,
            Self::Rows4,
            Self::RowsSplit,
            Self::RowsSg,
            Self::Matmul,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }

    /// The kernel forced by `DEEPROOTS_LINEAR` (a [`Self::name`]) for every linear layer, for
    /// experiments; unset or `auto` lets the batch choose.
    pub fn forced() -> Option<Self> {
        static FORCED: std::sync::OnceLock<Option<LinearKernel>> = std::sync::OnceLock::new();
        *FORCED.get_or_init(|| {
            std::env::var("DEEPROOTS_LINEAR")
                .ok()
                .and_then(|s| Self::parse(&s))
        })
    }
}

/// Mirrors `Params` in shaders/linear.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct LinearUniform {
    m: u32,
    n: u32,
    k: u32,
    act: u32,
}

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

    /// The dispatch computing `y` from `x`, weight `w`, bias `b` with `kernel` on `target`;
    /// an error where `kernel` needs what the device or layer lacks ([`LinearKernel::RowsSg`]:
    /// subgroups, `in_features` a multiple of 4).
    pub fn dispatches(
        &self,
        kernel: LinearKernel,
        label: &str,
        input: &[usize],
        [y, x, w, b]: [usize; 4],
        target: Target,
    ) -> Result<Vec<Dispatch>> {
        let [n, out] = self.out_dims(input)?;
        if kernel != LinearKernel::Matmul {
            let (k, rows, items) = match kernel {
                LinearKernel::Rows => (&KERNEL, 64, 1),
                LinearKernel::Rows4 => (&KERNEL4, 64, 4),
                LinearKernel::RowsSg => (&SG_KERNEL, 128, 8),
                _ => (&SPLIT_KERNEL, 8, 1),
            };
            let vec4 = self.in_features.is_multiple_of(4);
            let mut constants = vec![("VEC4", f64::from(u8::from(vec4)))];
            if kernel == LinearKernel::RowsSg {
                let Some(subgroup) = rows_sg_subgroup(self.in_features, target) else {
                    return Err(invalid(
                        label,
                        format!(
                            "the rows-sg linear kernel needs subgroups of at least 4 lanes and \
                             in_features a multiple of 4 (in_features {}, subgroups {:?})",
                            self.in_features, target.subgroup
                        ),
                    ));
                };
                constants.push(("SUBGROUP", f64::from(subgroup)));
            }
            let params = LinearUniform {
                m: u32_of(label, "out_features", out)?,
                n: u32_of(label, "batch", n)?,
                k: u32_of(label, "in_features", self.in_features)?,
                act: self.activation.code(),
            };
            return Ok(vec![Dispatch {
                label: label.to_string(),
                kernel: k,
                constants,
                params: bytemuck::bytes_of(&params).to_vec(),
                workgroups: [
                    u32_of(label, "output workgroups", out.div_ceil(rows))?,
                    u32_of(label, "item workgroups", n.div_ceil(items))?,
                    1,
                ],
                output: y,
                inputs: vec![x, w, b],
                output_view: None,
            }]);
        }
        let mm = MatmulParams {
            m: out,
            n,
            k: self.in_features,
            groups: 1,
            batches: 1,
            b_strides: [0, 0, 1, self.in_features],
            c_strides: [0, 0, 1, out],
            activation: self.activation,
            form: MatmulForm::Tiles {
                k_split: MatmulParams::split_for(
                    out,
                    n,
                    self.in_features,
                    1,
                    target.min_workgroups,
                ),
            },
            warm_rows: false,
        };
        Ok(vec![mm.dispatches(label, y, x, w, b)?])
    }
}

/// Runs one linear layer on the GPU (a missing bias is zeros) with the default kernel for its
/// batch.
#[cfg(not(target_arch = "wasm32"))]
pub fn run(
    gpu: &Gpu,
    precision: Precision,
    p: &LinearParams,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let n = x.shape().first().copied().unwrap_or(0);
    let target = super::target(gpu);
    run_with(
        gpu,
        precision,
        LinearKernel::for_layer(n, p.in_features, target),
        target,
        p,
        x,
        weight,
        bias,
    )
}

/// [`run`] with a given kernel, chosen as for `target` (normally [`super::target`] of `gpu`;
/// a smaller subgroup size than the device's is valid).
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::too_many_arguments)]
pub fn run_with(
    gpu: &Gpu,
    precision: Precision,
    kernel: LinearKernel,
    target: Target,
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
    let d = p.dispatches(kernel, "linear", x.shape(), [0, 1, 2, 3], target)?;
    super::run_single(gpu, precision, "linear", &[x, weight, b], &out, d)
}
