//! One-convolution models named by their shape, so that a layer can be timed, tuned or
//! exported alone wherever a zoo name is taken (`deeproots profile conv-192x32x32-160-k1
//! --batch 32`): `conv-<C>x<H>x<W>-<C_out>-k<K>`, then any of `-g<groups>`, `-s<stride>` and
//! `-p<padding>` (defaults: 1 group, stride 1, padding K / 2 on every side). The conv has a
//! bias and a fused ReLU, as the zoo's layers once their batch norms are folded.

use crate::error::{invalid, Result};
use crate::graph::builder::{Conv, GraphBuilder};
use crate::Model;

/// The shape of a one-convolution model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSpec {
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Output channels.
    pub c_out: usize,
    /// Square kernel side.
    pub kernel: usize,
    /// Filter groups.
    pub groups: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// Padding on every side.
    pub pad: usize,
}

const GRAMMAR: &str = "conv-<C>x<H>x<W>-<C_out>-k<K>[-g<groups>][-s<stride>][-p<padding>]";

impl LayerSpec {
    /// The spec a name describes: `None` when the name does not start with `conv-` (not a
    /// layer name), an error when it does but does not follow the grammar.
    pub fn parse(name: &str) -> Option<Result<Self>> {
        let rest = name.strip_prefix("conv-")?;
        Some(Self::parse_rest(rest).ok_or_else(|| {
            invalid(
                "zoo",
                format!("'{name}' is not a layer name ({GRAMMAR}, e.g. conv-96x16x16-192-k5-g8)"),
            )
        }))
    }

    fn parse_rest(rest: &str) -> Option<Self> {
        let num = |s: &str| s.parse::<usize>().ok().filter(|&v| v > 0);
        let mut parts = rest.split('-');
        let dims: Vec<usize> = parts.next()?.split('x').map(num).collect::<Option<_>>()?;
        let [c_in, height, width] = dims[..] else {
            return None;
        };
        let c_out = num(parts.next()?)?;
        let kernel = num(parts.next()?.strip_prefix('k')?)?;
        let mut spec = Self {
            c_in,
            height,
            width,
            c_out,
            kernel,
            groups: 1,
            stride: 1,
            pad: kernel / 2,
        };
        let mut seen = String::new();
        for part in parts {
            let (key, value) = part.split_at_checked(1)?;
            // Each option once.
            if seen.contains(key) {
                return None;
            }
            seen.push_str(key);
            match key {
                "g" => spec.groups = num(value)?,
                "s" => spec.stride = num(value)?,
                // Padding may be 0.
                "p" => spec.pad = value.parse().ok()?,
                _ => return None,
            }
        }
        Some(spec)
    }

    /// The spec's name in the grammar's shortest form (defaults left out); it parses back to
    /// the spec.
    pub fn name(&self) -> String {
        let mut s = format!(
            "conv-{}x{}x{}-{}-k{}",
            self.c_in, self.height, self.width, self.c_out, self.kernel
        );
        if self.groups != 1 {
            s += &format!("-g{}", self.groups);
        }
        if self.stride != 1 {
            s += &format!("-s{}", self.stride);
        }
        if self.pad != self.kernel / 2 {
            s += &format!("-p{}", self.pad);
        }
        s
    }

    /// The model: input `x` of shape `[C, H, W]`, one conv named `conv`, He-normal weights
    /// from the builder's seed. Shapes past the graph's bounds are refused by the builder
    /// before any weight is drawn.
    pub(crate) fn build(&self, mut b: GraphBuilder) -> Result<Model> {
        let x = b.input("x", &[self.c_in, self.height, self.width], None);
        let conv = Conv::new(self.c_out, self.kernel)
            .groups(self.groups)
            .stride(self.stride)
            .pad(self.pad);
        let y = b.conv("conv", &x, &conv)?;
        b.finish(&[&y])
    }
}
