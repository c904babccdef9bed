//! The ops: for each, a params struct that owns its shape arithmetic and the dispatches that
//! run it on the GPU (`shaders/<op>.wgsl`). The params structs know nothing about wgpu; the
//! CPU reference (`crate::reference`) uses the same structs.
//!
//! Each op's blocking `run` (one op on its own, for tests and experiments) is left out of the
//! browser build, where only whole models run, through the async API.

// The browser build leaves out the blocking `run`s, and with them some imports' only users.
#![cfg_attr(target_arch = "wasm32", allow(unused_imports))]

pub mod add;
pub mod batch_norm;
pub mod concat;
pub mod conv2d;
pub mod flatten;
pub mod global_avg_pool;
pub mod linear;
pub mod matmul;
pub mod pool;
pub mod softmax;

use crate::error::{invalid, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::{Precision, Tensor};

/// An activation fused into the store of a conv, linear, add or batch norm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// Identity.
    #[default]
    None,
    /// max(x, 0).
    Relu,
    /// min(max(x, 0), 6).
    Relu6,
}

impl Activation {
    /// The code the shaders' `activate()` understands.
    pub(crate) fn code(self) -> u32 {
        match self {
            Activation::None => 0,
            Activation::Relu => 1,
            Activation::Relu6 => 2,
        }
    }

    /// Applies the activation on the host (the reference).
    pub fn apply(self, v: f64) -> f64 {
        match self {
            Activation::None => v,
            Activation::Relu => v.max(0.0),
            Activation::Relu6 => v.clamp(0.0, 6.0),
        }
    }

    /// Parses `none | relu | relu6`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" | "" => Some(Self::None),
            "relu" => Some(Self::Relu),
            "relu6" => Some(Self::Relu6),
            _ => None,
        }
    }
}

/// Workgroups a device wants in flight before a kernel is worth splitting further: none on a
/// CPU adapter (a few workgroups keep its cores busy), a few hundred on a GPU.
pub fn min_workgroups(gpu: &Gpu) -> usize {
    if cpu_adapter(gpu) {
        0
    } else {
        512
    }
}

/// What kernel choices and launches need to know about a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Target {
    /// The adapter runs on the CPU ([`cpu_adapter`]).
    pub cpu: bool,
    /// Workgroups wanted in flight before a kernel is split further ([`min_workgroups`]).
    pub min_workgroups: usize,
    /// Subgroup lanes the subgroup kernels may count on: 8 where every subgroup has at least 8,
    /// 4 where at least 4; `None` without subgroups (or smaller ones).
    pub subgroup: Option<u32>,
    /// The largest subgroup the device may run (what the subgroup kernels' workgroup rows
    /// must be a multiple of).
    pub subgroup_max: u32,
}

impl Target {
    /// Invocations per workgroup row of the subgroup kernels (`Params.wx`) for `tiles`
    /// 4-wide tiles along N: enough to cover them (a power of two, 4 to 64) and never fewer
    /// than the largest subgroup, so that no subgroup spans two rows.
    pub(crate) fn subgroup_row(&self, tiles: usize) -> u32 {
        let want = tiles.next_power_of_two().clamp(4, 64) as u32;
        want.max(self.subgroup_max.next_power_of_two()).min(64)
    }
}

/// The [`Target`] of a device.
pub fn target(gpu: &Gpu) -> Target {
    let a = gpu.adapter();
    let subgroup = match a.subgroup_min_size {
        _ if !a.subgroups => None,
        8.. => Some(8),
        4..=7 => Some(4),
        _ => None,
    };
    Target {
        cpu: cpu_adapter(gpu),
        min_workgroups: min_workgroups(gpu),
        subgroup,
        subgroup_max: a.subgroup_max_size,
    }
}

/// The adapter runs on the CPU (lavapipe, llvmpipe, SwiftShader): some kernel choices differ.
pub fn cpu_adapter(gpu: &Gpu) -> bool {
    gpu.adapter().device_type == "Cpu"
}

/// Workgroups of a 1-D kernel over `invocations` threads (64 per workgroup), spread over x and
/// y so the grid stays under the per-dimension limit (65535 on every adapter).
pub(crate) fn grid(invocations: usize) -> [u32; 3] {
    let groups = invocations.div_ceil(64).max(1);
    let x = groups.min(32768);
    [x as u32, groups.div_ceil(x) as u32, 1]
}

/// Converts a host size to the u32 the shaders index with, refusing what does not fit.
pub(crate) fn u32_of(op: &str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| invalid(op, format!("{what} = {v} does not fit in 32 bits")))
}

/// Checks that `shape` is 4-D NCHW with no zero dimension.
pub fn nchw(op: &str, shape: &[usize]) -> Result<[usize; 4]> {
    match *shape {
        [n, c, h, w] if ![n, c, h, w].contains(&0) => Ok([n, c, h, w]),
        [_, _, _, _] => Err(invalid(op, format!("zero-sized input {shape:?}"))),
        _ => Err(invalid(
            op,
            format!("expected an NCHW input, got shape {shape:?}"),
        )),
    }
}

/// Runs one op on its own: uploads `inputs` (buffers 1..), fills the output (buffer 0) with
/// NaN, runs the dispatches `build` makes, and reads the output back. For tests and tools; a
/// model runs through a plan instead.
#[cfg(not(target_arch = "wasm32"))]
pub fn run_single(
    gpu: &Gpu,
    precision: Precision,
    label: &str,
    inputs: &[&Tensor],
    out_shape: &[usize],
    dispatches: Vec<Dispatch>,
) -> Result<Tensor> {
    let storage = gpu.storage(precision);
    let out_len: usize = out_shape.iter().product();
    let mut buffers = vec![gpu.create_buffer(&format!("{label}/y"), out_len, storage)?];
    for (i, t) in inputs.iter().enumerate() {
        buffers.push(gpu.create_buffer(&format!("{label}/in{i}"), t.len(), storage)?);
    }
    let refs: Vec<_> = buffers.iter().collect();
    let program = gpu.program(label, &dispatches, &refs, &[0], crate::gpu::Timing::Off)?;
    gpu.poison(&buffers[0])?;
    let writes: Vec<_> = inputs
        .iter()
        .zip(&buffers[1..])
        .map(|(t, b)| (b, t.data()))
        .collect();
    let mut out = gpu.run(&program, &writes)?;
    Tensor::new(out_shape.to_vec(), out.pop().unwrap_or_default())
}

/// A dispatch of `invocations` invocations of a 1-D kernel (workgroups of 64 spread over x and
/// y, see `flat_id`).
pub(crate) fn elementwise(
    label: &str,
    kernel: &'static crate::gpu::Kernel,
    params: &impl bytemuck::Pod,
    invocations: usize,
    y: usize,
    inputs: Vec<usize>,
) -> Dispatch {
    Dispatch {
        label: label.to_string(),
        kernel,
        constants: vec![],
        params: bytemuck::bytes_of(params).to_vec(),
        workgroups: grid(invocations),
        output: y,
        inputs,
        output_view: None,
    }
}
