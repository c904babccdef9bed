//! The matrix-multiply kernel behind pointwise (1x1) convolutions and linear layers:
//! `C[b, g] = act(A[g] * B[b, g] + bias[g])` with strided B and C (`shaders/matmul.wgsl`).
//!
//! # Shapes
//! A (weights) `[groups * M, K]`, bias `[groups * M]`, B and C addressed by strides.

use super::{u32_of, Activation};
use crate::error::{invalid, Result};
use crate::gpu::{Dispatch, Kernel};

/// The matmul kernel.
pub static KERNEL: Kernel = Kernel {
    name: "matmul",
    source: include_str!("../../shaders/matmul.wgsl"),
    entry: "main",
    inputs: &["x", "w", "b"],
};

/// The matmul kernel with K split over the slices of one workgroup (`KSPLIT` override).
pub static SPLIT_KERNEL: Kernel = Kernel {
    name: "matmul_split",
    source: include_str!("../../shaders/matmul.wgsl"),
    entry: "main_split",
    inputs: &["x", "w", "b"],
};

/// The matmul with 8 x 4 tiles for CPU adapters (`shaders/matmul8.wgsl`); A repacked to
/// `[groups, K, MP]` as for the implicit GEMM (`ConvParams::device_weight`).
pub static WIDE_KERNEL: Kernel = Kernel {
    name: "matmul8",
    source: include_str!("../../shaders/matmul8.wgsl"),
    entry: "main",
    inputs: &["vec4 x", "vec4 w", "b"],
};

/// [`WIDE_KERNEL`] with 8 columns per invocation instead of 4 (entry `main_x8`).
pub static WIDE_X8_KERNEL: Kernel = Kernel {
    name: "matmul8_x8",
    source: include_str!("../../shaders/matmul8.wgsl"),
    entry: "main_x8",
    inputs: &["vec4 x", "vec4 w", "b"],
};

/// The 8-row matmul with its subgroup entry points appended (only devices with subgroups
/// compile it).
const WIDE_SG_SOURCE: &str = concat!(
    include_str!("../../shaders/matmul8.wgsl"),
    include_str!("../../shaders/subgroup_weights.wgsl"),
    include_str!("../../shaders/matmul8_sg.wgsl")
);

/// [`WIDE_KERNEL`] with each tile's weights loaded once per subgroup and shared by broadcast
/// (`shaders/matmul8_sg.wgsl`, appended with subgroup_weights.wgsl to matmul8.wgsl: only devices with
/// subgroups compile it).
pub static WIDE_SG_KERNEL: Kernel = Kernel {
    name: "matmul8_sg",
    source: WIDE_SG_SOURCE,
    entry: "main_sg",
    inputs: &["vec4 x", "vec4 w", "b"],
};

/// [`WIDE_SG_KERNEL`] with 8 columns per invocation and 8, 16 or 32 rows (entry `main_sgt`,
/// override `TILES` = rows / 8; A repacked to MP = M rounded up to 8, as for every tile height).
pub static WIDE_SGT_KERNEL: Kernel = Kernel {
    name: "matmul8_sgt",
    source: WIDE_SG_SOURCE,
    entry: "main_sgt",
    inputs: &["vec4 x", "vec4 w", "b"],
};

/// The subgroup matmul with the operands' roles swapped (entry `main_sgc`, TILES 4): 8 rows
/// per invocation read as aligned 4-vectors of the repacked A, 32 columns of B shared by a
/// workgroup row by subgroup broadcast, the batch folded into the columns; for B whose columns
/// are not 4-vectors.
pub static WIDE_SGC_KERNEL: Kernel = Kernel {
    name: "matmul8_sgc",
    source: WIDE_SG_SOURCE,
    entry: "main_sgc",
    inputs: &["vec4 x", "vec4 w", "b"],
};

/// Columns of B a workgroup row of [`WIDE_SGC_KERNEL`] shares.
const SGC_COLUMNS: usize = 32;

/// Output tile edge of one workgroup.
const TILE: usize = 32;

/// A batched, grouped matrix multiply.
#[derive(Debug, Clone)]
pub struct MatmulParams {
    /// Rows of A and C per group.
    pub m: usize,
    /// Columns of B and C.
    pub n: usize,
    /// Columns of A, rows of B.
    pub k: usize,
    /// Groups (block-diagonal A).
    pub groups: usize,
    /// Independent batches sharing A.
    pub batches: usize,
    /// B strides `[batch, group, k, n]` in elements.
    pub b_strides: [usize; 4],
    /// C strides `[batch, group, m, n]` in elements.
    pub c_strides: [usize; 4],
    /// Activation after the bias.
    pub activation: Activation,
    /// Split K over this many slices of one workgroup (1, 2 or 4).
    pub k_split: usize,
    /// Run the 8 x 4 tile kernel (`matmul8.wgsl`; no K split), which reads A repacked to
    /// `[groups, K, MP]` instead of `[groups * M, K]`.
    pub wide: bool,
    /// With `wide`: 8 columns per invocation instead of 4 (`main_x8`, or `main_sgt` with
    /// `subgroup`).
    pub x8: bool,
    /// With `x8` and `subgroup`: rows of A per invocation, 8, 16 or 32 (`main_sgt` with
    /// TILES 1, 2 or 4; A repacked to MP = M rounded up to 8 for all); 8 otherwise.
    pub rows: usize,
    /// With `wide`: the subgroup size (4 or at least 8) the subgroup kernel may count on
    /// (`matmul8_sg.wgsl`), or 0 for the kernel without subgroups.
    pub subgroup: u32,
    /// With `subgroup`: invocations per workgroup row (`Params.wx`; [`Self::planned`] sets it).
    pub row_width: u32,
    /// With `x8` and `subgroup`: the columns run over the whole batch (`FOLD` in
    /// `matmul8_sg.wgsl`; [`Self::planned`] sets it).
    pub fold: bool,
    /// With `wide` and `subgroup`: the operands' roles swapped (`main_sgc`): 8 rows per
    /// invocation, 32 columns over the whole batch shared by each workgroup row of
    /// `row_width` invocations ([`Self::planned`] sets the width); for B whose columns are not
    /// 4-vectors.
    pub shared_columns: bool,
}

/// Invocations a subgroup-matmul launch of `cols` columns (`per` per invocation) and
/// `tiles_m` row tiles takes in workgroups of 64 whose rows are `wx` invocations wide, idle ones
/// included.
fn launch_slots(cols: usize, per: usize, tiles_m: usize, wx: usize) -> usize {
    let rows = 64 / wx;
    cols.div_ceil(per).div_ceil(wx) * wx * tiles_m.div_ceil(rows) * rows
}

/// Mirrors `Params` in shaders/matmul.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct MatmulUniform {
    m: u32,
    n: u32,
    k: u32,
    groups: u32,
    sb: [u32; 4],
    sc: [u32; 4],
    act: u32,
    /// Invocations per workgroup row of the subgroup kernels (`row_width`).
    wx: u32,
    /// Batches, read with `FOLD` (`matmul8_sg.wgsl`).
    batches: u32,
    pad: u32,
}

/// Four consecutive columns of a matrix with `n` columns and `[batch, group, row, column]`
/// strides are one aligned 4-vector: unit column stride, n and the other strides multiples of 4.
fn vec4_columns(n: usize, [sb, sg, sr, sn]: [usize; 4]) -> bool {
    sn == 1 && [n, sb, sg, sr].iter().all(|v| v % 4 == 0)
}

impl MatmulParams {
    /// B's columns can be read four at a time (`VEC_B` in `matmul8.wgsl`): unit column stride,
    /// and N and every other stride multiples of 4 (each four columns one aligned 4-vector).
    pub fn columns_in_vec4(&self) -> bool {
        vec4_columns(self.n, self.b_strides)
    }

    /// C's columns can be written four at a time (`VEC_C` in `matmul8_sg.wgsl`), by the same
    /// rule on C's strides.
    pub fn c_columns_in_vec4(&self) -> bool {
        vec4_columns(self.n, self.c_strides)
    }

    /// These parameters with the subgroup kernels' launch decided for `target`: the row width
    /// ([`super::Target::subgroup_row`] of one image's columns), and for the 8-column kernel
    /// with more than one batch whether to fold the batch into the columns instead, with the
    /// row width (4 to 64, at least the largest subgroup) that leaves the fewest invocations
    /// idle: folded only where that is fewer than unfolded (an image's columns or the row
    /// tiles not filling whole workgroup rows: 14 x 14 and 28 x 28 maps, 7 x 7 ones, 8 x 8
    /// with 6 tiles of 32 rows in workgroups of 8). Each output's sum is the same either way.
    /// On lavapipe, 1x1 layers of GoogLeNet's shapes at batch 16 (measured alone, stage 4 on
    /// 14 x 14; the zoo runs it at 15 x 15, where `matmul-cols-sg` takes most of them): 28 x 28
    /// 1.19-1.25x, 14 x 14 1.05-1.07x; NIN's on 32 x 32 (no idle invocations) were 1.08x
    /// slower folded, hence only where it saves invocations. Shared columns (`matmul-cols-sg`)
    /// always run over the whole batch.
    pub fn planned(mut self, target: super::Target) -> Self {
        self.fold = false;
        if !(self.wide && self.subgroup > 0) {
            return self;
        }
        let least = target.subgroup_row(1);
        if self.shared_columns {
            // A workgroup row's wx invocations take 8 rows each, its rows column blocks: the
            // width that leaves the fewest invocations idle (the narrowest of equals).
            let blocks = (self.n * self.batches).div_ceil(SGC_COLUMNS);
            self.fold = true;
            self.row_width = [4u32, 8, 16, 32, 64]
                .into_iter()
                .filter(|&w| w >= least)
                .min_by_key(|&w| launch_slots(self.m, 8, blocks, w as usize))
                .unwrap_or(64);
            return self;
        }
        let per = if self.x8 { 8 } else { 4 };
        let tiles_m = self.m.div_ceil(if self.x8 { self.rows } else { 8 });
        let wx = target.subgroup_row(self.n.div_ceil(per));
        self.row_width = wx;
        if !self.x8 || self.batches < 2 {
            return self;
        }
        let unfolded = self.batches * launch_slots(self.n, per, tiles_m, wx as usize);
        let folded = [64u32, 32, 16, 8, 4]
            .into_iter()
            .filter(|&w| w >= least)
            .map(|w| {
                let slots = launch_slots(self.n * self.batches, per, tiles_m, w as usize);
                (slots, w)
            })
            .min_by_key(|&(slots, _)| slots);
        if let Some((_, w)) = folded.filter(|&(slots, _)| slots < unfolded) {
            self.fold = true;
            self.row_width = w;
        }
        self
    }

    /// Columns one launch of the subgroup kernels covers per group: N, or N times the batches
    /// where [`Self::fold`].
    pub fn launch_columns(&self) -> usize {
        if self.fold {
            self.n * self.batches
        } else {
            self.n
        }
    }

    /// How many K slices to use: 4 when the grid has few workgroups for a long K (so a large
    /// device keeps more invocations busy), else 1. `min_workgroups` = 0 never splits.
    /// `DEEPROOTS_KSPLIT=1|2|4` forces a split wherever K allows it (for experiments and tests).
    pub fn split_for(
        m: usize,
        n: usize,
        k: usize,
        batches_groups: usize,
        min_workgroups: usize,
    ) -> usize {
        static FORCED: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
        let forced = *FORCED.get_or_init(|| {
            std::env::var("DEEPROOTS_KSPLIT")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|v| [1, 2, 4].contains(v))
        });
        if let Some(f) = forced {
            return if k >= f { f } else { 1 };
        }
        let grid = m.div_ceil(TILE) * n.div_ceil(TILE) * batches_groups;
        if grid < min_workgroups && k >= 256 {
            4
        } else {
            1
        }
    }

    /// The one dispatch computing C (buffer `y`) from B (`x`), A (`w`) and the bias (`b`).
    pub fn dispatches(
        &self,
        label: &str,
        y: usize,
        x: usize,
        w: usize,
        b: usize,
    ) -> Result<Dispatch> {
        if ![8, 16, 32].contains(&self.rows) {
            return Err(invalid(
                label,
                format!("rows {} is not 8, 16 or 32", self.rows),
            ));
        }
        if ![1, 2, 4].contains(&self.k_split) {
            return Err(invalid(
                label,
                format!("k_split {} is not 1, 2 or 4", self.k_split),
            ));
        }
        if self.m == 0 || self.n == 0 || self.k == 0 || self.groups == 0 || self.batches == 0 {
            return Err(invalid(label, format!("empty matrix multiply {self:?}")));
        }
        let u = |what: &str, v: usize| u32_of(label, what, v);
        let strides = |s: [usize; 4]| -> Result<[u32; 4]> {
            Ok([
                u("stride", s[0])?,
                u("stride", s[1])?,
                u("stride", s[2])?,
                u("stride", s[3])?,
            ])
        };
        let params = MatmulUniform {
            m: u("m", self.m)?,
            n: u("n", self.n)?,
            k: u("k", self.k)?,
            groups: u("groups", self.groups)?,
            sb: strides(self.b_strides)?,
            sc: strides(self.c_strides)?,
            act: self.activation.code(),
            wx: self.row_width,
            batches: u("batches", self.batches)?,
            pad: 0,
        };
        if self.wide
            && self.subgroup > 0
            && !(self.row_width.is_power_of_two() && (4..=64).contains(&self.row_width))
        {
            return Err(invalid(
                label,
                format!(
                    "row width {} is not a power of two from 4 to 64 (MatmulParams::planned sets it)",
                    self.row_width
                ),
            ));
        }
        if self.wide && self.subgroup > 0 && self.shared_columns {
            let per_workgroup = 64 / self.row_width as usize;
            let blocks = (self.n * self.batches).div_ceil(SGC_COLUMNS);
            return Ok(Dispatch {
                label: label.to_string(),
                kernel: &WIDE_SGC_KERNEL,
                constants: vec![
                    ("VEC_B", 0.0),
                    ("VEC_C", 0.0),
                    ("SUBGROUP", f64::from(self.subgroup.min(8))),
                    ("TILES", (SGC_COLUMNS / 8) as f64),
                ],
                params: bytemuck::bytes_of(&params).to_vec(),
                workgroups: [
                    u("column blocks", blocks.div_ceil(per_workgroup).min(65535))?,
                    u(
                        "row tiles",
                        self.m.div_ceil(8).div_ceil(self.row_width as usize),
                    )?,
                    u("groups", self.groups)?,
                ],
                output: y,
                inputs: vec![x, w, b],
                output_view: None,
            });
        }
        if self.wide && self.subgroup > 0 {
            let cols = if self.x8 { 8 } else { 4 };
            let rows = if self.x8 { self.rows } else { 8 };
            return Ok(Dispatch {
                label: label.to_string(),
                kernel: if self.x8 {
                    &WIDE_SGT_KERNEL
                } else {
                    &WIDE_SG_KERNEL
                },
                constants: {
                    let mut c = vec![
                        ("VEC_B", f64::from(u8::from(self.columns_in_vec4()))),
                        ("VEC_C", f64::from(u8::from(self.c_columns_in_vec4()))),
                        ("SUBGROUP", f64::from(self.subgroup.min(8))),
                    ];
                    if self.x8 {
                        c.push(("TILES", (rows / 8) as f64));
                        c.push(("FOLD", f64::from(u8::from(self.fold))));
                    }
                    c
                },
                params: bytemuck::bytes_of(&params).to_vec(),
                workgroups: {
                    let blocks = self
                        .launch_columns()
                        .div_ceil(cols * self.row_width as usize);
                    let row_tiles = u(
                        "row tiles",
                        self.m.div_ceil(rows).div_ceil(64 / self.row_width as usize),
                    )?;
                    if self.fold {
                        // Column blocks in z over the groups (looped over past 65535).
                        let blocks = blocks.min(65535 / self.groups).max(1);
                        [
                            1,
                            row_tiles,
                            u("groups x column blocks", self.groups * blocks)?,
                        ]
                    } else {
                        [
                            u("column blocks", blocks.min(65535))?,
                            row_tiles,
                            u("batches x groups", self.batches * self.groups)?,
                        ]
                    }
                },
                output: y,
                inputs: vec![x, w, b],
                output_view: None,
            });
        }
        if self.wide && self.x8 {
            return Ok(Dispatch {
                label: label.to_string(),
                kernel: &WIDE_X8_KERNEL,
                constants: vec![("VEC_B", f64::from(u8::from(self.columns_in_vec4())))],
                params: bytemuck::bytes_of(&params).to_vec(),
                workgroups: [
                    u("column tiles", self.n.div_ceil(2 * TILE))?,
                    u("row tiles", self.m.div_ceil(2 * TILE))?,
                    u("batches x groups", self.batches * self.groups)?,
                ],
                output: y,
                inputs: vec![x, w, b],
                output_view: None,
            });
        }
        if self.wide {
            return Ok(Dispatch {
                label: label.to_string(),
                kernel: &WIDE_KERNEL,
                constants: vec![("VEC_B", f64::from(u8::from(self.columns_in_vec4())))],
                params: bytemuck::bytes_of(&params).to_vec(),
                workgroups: [
                    u("column tiles", self.n.div_ceil(TILE))?,
                    u("row tiles", self.m.div_ceil(2 * TILE))?,
                    u("batches x groups", self.batches * self.groups)?,
                ],
                output: y,
                inputs: vec![x, w, b],
                output_view: None,
            });
        }
        Ok(Dispatch {
            label: label.to_string(),
            kernel: if self.k_split > 1 {
                &SPLIT_KERNEL
            } else {
                &KERNEL
            },
            constants: if self.k_split > 1 {
                vec![("KSPLIT", self.k_split as f64)]
            } else {
                vec![]
            },
            params: bytemuck::bytes_of(&params).to_vec(),
            workgroups: [
                u("column tiles", self.n.div_ceil(TILE))?,
                u("row tiles", self.m.div_ceil(TILE))?,
                u("batches x groups", self.batches * self.groups)?,
            ],
            output: y,
            inputs: vec![x, w, b],
            output_view: None,
        })
    }
}
