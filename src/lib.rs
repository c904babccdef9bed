#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
#[cfg(not(target_arch = "wasm32"))]
pub mod dataset;
pub mod error;
pub mod executor;
pub mod gpu;
pub mod graph;
pub mod model;
pub mod ops;
pub mod plan;
pub mod preprocess;
pub mod reference;
pub mod tensor;
pub mod tune;
pub mod zoo;

pub use error::{Error, Result};
pub use executor::{DispatchTime, Engine, Executor};
pub use gpu::{Backend, Gpu, GpuOptions};
pub use model::{Model, WeightDtype};
pub use tensor::Tensor;
pub use tune::{TuneCache, Tuning};

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
