//! Flatten `[N, C, H, W]` to `[N, C*H*W]`. Activations are stored NCHW and contiguous on the
//! device, so flatten changes only the shape: it needs no kernel and no copy.
//!
//! # Shapes
//! input `[N, d1, d2, ...]`, output `[N, d1 * d2 * ...]`.

use crate::error::{invalid, Result};

/// Output shape `[N, product of the rest]`.
pub fn out_dims(input: &[usize]) -> Result<[usize; 2]> {
    match input.split_first() {
        Some((&n, rest)) if n > 0 && rest.iter().all(|&d| d > 0) => Ok([n, rest.iter().product()]),
        _ => Err(invalid(
            "flatten",
            format!("expected a non-empty [N, ...] input, got {input:?}"),
        )),
    }
}
