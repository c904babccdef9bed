//! deeproots runs convolutional networks with hierarchical filter groups ("root modules",
//! Deep Roots, CVPR 2017) on any GPU through wgpu: Vulkan, Metal, DX12 and GL.
//!
//! The layers, top to bottom: [`ops`] (one op = a params struct with its shape arithmetic and
//! a WGSL kernel in `shaders/`), [`gpu`] (the only module that touches wgpu) and [`reference`]
//! (a plain CPU implementation of every op, the oracle for tests).
#![deny(missing_docs)]

pub mod error;
pub mod gpu;
pub mod ops;
pub mod reference;
pub mod tensor;

pub use error::{Error, Result};
pub use gpu::{Backend, Gpu, GpuOptions};
pub use tensor::Tensor;

/// Storage precision of weights and activations on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// 32-bit floats.
    #[default]
    F32,
    /// 16-bit floats: f16 arithmetic with SHADER_F16, else f16 storage with f32 arithmetic.
    F16,
}

impl Precision {
    /// Parses `f32 | f16`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "f32" => Some(Self::F32),
            "f16" => Some(Self::F16),
            _ => None,
        }
    }
}
