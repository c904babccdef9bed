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
    /// Which kernel runs it, with the facts only that kernel reads.
    pub form: MatmulForm,
    /// The kernels of `matmul8.wgsl` and `matmul8_sg.wgsl` ([`MatmulForm::Wide`] and the
    /// subgroup forms) read one element of each invocation's columns in every row of B before
    /// their K loop (`WARM`), so that the loop finds B in the caches: for CPU adapters, whose
    /// prefetchers do not follow a K loop that reads a few lines of each row in turn.
    /// [`Self::planned`] sets it for CPU adapters.
    pub warm_rows: bool,
}

/// The launch forms of [`MatmulParams`]: which kernel, and what it alone needs. The subgroup
/// forms' `row_width` and `fold` are decided by [`MatmulParams::planned`]: construct them with
/// [`Self::subgroup`], [`Self::cols8`] and [`Self::shared_columns`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatmulForm {
    /// `matmul.wgsl`: 4 x 4 tiles of C per invocation on A as given (`[groups * M, K]`).
    Tiles {
        /// K split over this many slices of one workgroup (1, 2 or 4).
        k_split: usize,
    },
    /// `matmul8.wgsl`: 8 rows by 4 columns per invocation on A repacked to `[groups, K, MP]`
    /// (MP = M rounded up to 8), no K split.
    Wide {
        /// 8 columns per invocation instead of 4 (`main_x8`).
        x8: bool,
    },
    /// `matmul8_sg.wgsl`'s `main_sg`: [`Self::Wide`]'s 8 x 4 tiles with each tile's weights
    /// loaded once per subgroup and shared by broadcast.
    Subgroup {
        /// The subgroup size the kernel may count on: 4, or at least 8.
        subgroup: u32,
        /// Invocations per workgroup row, which share a tile (`Params.wx`).
        row_width: u32,
    },
    /// `main_sgt`: as [`Self::Subgroup`] with 8 columns and `rows` rows per invocation.
    SubgroupCols8 {
        /// The subgroup size the kernel may count on: 4, or at least 8.
        subgroup: u32,
        /// Rows of A per invocation: 8, 16 or 32 (TILES 1, 2 or 4).
        rows: usize,
        /// Invocations per workgroup row, which share a tile (`Params.wx`).
        row_width: u32,
        /// The columns run over the whole batch (`FOLD`).
        fold: bool,
    },
    /// `main_sgc`: the operands' roles swapped, 8 rows per invocation and 32 columns over the
    /// whole batch shared by each workgroup row; for B whose columns are not 4-vectors.
    SharedColumns {
        /// The subgroup size the kernel may count on: 4, or at least 8.
        subgroup: u32,
        /// Invocations per workgroup row, which share the columns (`Params.wx`).
        row_width: u32,
    },
}

impl MatmulForm {
    /// [`Self::Subgroup`] for subgroups of `subgroup` lanes, its launch left to
    /// [`MatmulParams::planned`].
    pub fn subgroup(subgroup: u32) -> Self {
        Self::Subgroup {
            subgroup,
            row_width: 0,
        }
    }

    /// [`Self::SubgroupCols8`] with `rows` rows per invocation (8, 16 or 32) for subgroups of
    /// `subgroup` lanes, its launch (row width, fold) left to [`MatmulParams::planned`].
    pub fn cols8(subgroup: u32, rows: usize) -> Self {
        Self::SubgroupCols8 {
            subgroup,
            rows,
            row_width: 0,
            fold: false,
        }
    }

    /// [`Self::SharedColumns`] for subgroups of `subgroup` lanes, its row width left to
    /// [`MatmulParams::planned`].
    pub fn shared_columns(subgroup: u32) -> Self {
        Self::SharedColumns {
            subgroup,
            row_width: 0,
        }
    }

    /// Invocations per workgroup row of the subgroup forms (0 for the others).
    pub fn row_width(&self) -> u32 {
        match *self {
            Self::Subgroup { row_width, .. }
            | Self::SubgroupCols8 { row_width, .. }
            | Self::SharedColumns { row_width, .. } => row_width,
            Self::Tiles { .. } | Self::Wide { .. } => 0,
        }
    }

    /// The columns run over the whole batch.
    pub fn folds_batch(&self) -> bool {
        matches!(
            self,
            Self::SubgroupCols8 { fold: true, .. } | Self::SharedColumns { .. }
        )
    }
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
    /// Always 0 (`kept` in matmul8.wgsl).
    zero: u32,
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
        self.warm_rows = target.cpu;
        let least = target.subgroup_row(1);
        self.form = match self.form {
            MatmulForm::SharedColumns { subgroup, .. } => {
                // A workgroup row's wx invocations take 8 rows each, its rows column blocks:
                // the width that leaves the fewest invocations idle (the narrowest of equals).
                let blocks = (self.n * self.batches).div_ceil(SGC_COLUMNS);
                let row_width = [4u32, 8, 16, 32, 64]
                    .into_iter()
                    .filter(|&w| w >= least)
                    .min_by_key(|&w| launch_slots(self.m, 8, blocks, w as usize))
                    .unwrap_or(64);
                MatmulForm::SharedColumns {
                    subgroup,
                    row_width,
                }
            }
            MatmulForm::Subgroup { subgroup, .. } => MatmulForm::Subgroup {
                subgroup,
                row_width: target.subgroup_row(self.n.div_ceil(4)),
            },
            MatmulForm::SubgroupCols8 { subgroup, rows, .. } => {
                let tiles_m = self.m.div_ceil(rows);
                let wx = target.subgroup_row(self.n.div_ceil(8));
                let unfolded = self.batches * launch_slots(self.n, 8, tiles_m, wx as usize);
                let folded = [64u32, 32, 16, 8, 4]
                    .into_iter()
                    .filter(|&w| w >= least)
                    .map(|w| {
                        let slots = launch_slots(self.n * self.batches, 8, tiles_m, w as usize);
                        (slots, w)
                    })
                    .min_by_key(|&(slots, _)| slots)
                    .filter(|&(slots, _)| self.batches > 1 && slots < unfolded);
                MatmulForm::SubgroupCols8 {
                    subgroup,
                    rows,
                    row_width: folded.map_or(wx, |(_, w)| w),
                    fold: folded.is_some(),
                }
            }
            form @ (MatmulForm::Tiles { .. } | MatmulForm::Wide { .. }) => form,
        };
        self
    }

    /// Columns one launch of the subgroup kernels covers per group: N, or N times the batches
    /// where the form folds the batch ([`MatmulForm::folds_batch`]).
    pub fn launch_columns(&self) -> usize {
        if self.form.folds_batch() {
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
        match self.form {
            MatmulForm::SubgroupCols8 { rows, .. } if ![8, 16, 32].contains(&rows) => {
                return Err(invalid(label, format!("rows {rows} is not 8, 16 or 32")));
            }
            MatmulForm::Tiles { k_split } if ![1, 2, 4].contains(&k_split) => {
                return Err(invalid(
                    label,
                    format!("k_split {k_split} is not 1, 2 or 4"),
                ));
            }
            _ => {}
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
        let row_width = self.form.row_width();
        let warm = f64::from(u8::from(self.warm_rows));
        let params = MatmulUniform {
            m: u("m", self.m)?,
            n: u("n", self.n)?,
            k: u("k", self.k)?,
            groups: u("groups", self.groups)?,
            sb: strides(self.b_strides)?,
            sc: strides(self.c_strides)?,
            act: self.activation.code(),
            wx: row_width,
            batches: u("batches", self.batches)?,
            zero: 0,
        };
        let subgroup = match self.form {
            MatmulForm::Subgroup { subgroup, .. }
            | MatmulForm::SubgroupCols8 { subgroup, .. }
            | MatmulForm::SharedColumns { subgroup, .. } => {
                if !(row_width.is_power_of_two() && (4..=64).contains(&row_width)) {
                    return Err(invalid(
                        label,
                        format!(
                            "row width {row_width} is not a power of two from 4 to 64 (MatmulParams::planned sets it)"
                        ),
                    ));
                }
                subgroup
            }
            MatmulForm::Tiles { .. } | MatmulForm::Wide { .. } => 0,
        };
        if let MatmulForm::SharedColumns { .. } = self.form {
            let per_workgroup = 64 / row_width as usize;
            let blocks = (self.n * self.batches).div_ceil(SGC_COLUMNS);
            return Ok(Dispatch {
                label: label.to_string(),
                kernel: &WIDE_SGC_KERNEL,
                constants: vec![
                    ("VEC_B", 0.0),
                    ("VEC_C", 0.0),
                    ("SUBGROUP", f64::from(subgroup.min(8))),
                    ("TILES", (SGC_COLUMNS / 8) as f64),
                    ("WARM", warm),
                ],
                params: bytemuck::bytes_of(&params).to_vec(),
                workgroups: [
                    u("column blocks", blocks.div_ceil(per_workgroup).min(65535))?,
                    u("row tiles", self.m.div_ceil(8).div_ceil(row_width as usize))?,
                    u("groups", self.groups)?,
                ],
                output: y,
                inputs: vec![x, w, b],
                output_view: None,
            });
        }
        if let MatmulForm::Subgroup { .. } | MatmulForm::SubgroupCols8 { .. } = self.form {
            // 8 x 4 tiles, or 8 columns by `rows` and the batch folded or not.
            let (x8, cols, rows, fold) = match self.form {
                MatmulForm::SubgroupCols8 { rows, fold, .. } => (true, 8, rows, fold),
                _ => (false, 4, 8, false),
            };
            return Ok(Dispatch {
                label: label.to_string(),
                kernel: if x8 {
                    &WIDE_SGT_KERNEL
                } else {
                    &WIDE_SG_KERNEL
                },
                constants: {
                    let mut c = vec![
                        ("VEC_B", f64::from(u8::from(self.columns_in_vec4()))),
                        ("VEC_C", f64::from(u8::from(self.c_columns_in_vec4()))),
                        ("SUBGROUP", f64::from(subgroup.min(8))),
                        ("WARM", warm),
                    ];
                    if x8 {
                        c.push(("TILES", (rows / 8) as f64));
                        c.push(("FOLD", f64::from(u8::from(fold))));
                    }
                    c
                },
                params: bytemuck::bytes_of(&params).to_vec(),
                workgroups: {
                    let blocks = self.launch_columns().div_ceil(cols * row_width as usize);
                    let row_tiles = u(
                        "row tiles",
                        self.m.div_ceil(rows).div_ceil(64 / row_width as usize),
                    )?;
                    if fold {
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
        if let MatmulForm::Wide { x8: true } = self.form {
            return Ok(Dispatch {
                label: label.to_string(),
                kernel: &WIDE_X8_KERNEL,
                constants: vec![
                    ("VEC_B", f64::from(u8::from(self.columns_in_vec4()))),
                    ("WARM", warm),
                ],
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
        if let MatmulForm::Wide { x8: false } = self.form {
            return Ok(Dispatch {
                label: label.to_string(),
                kernel: &WIDE_KERNEL,
                constants: vec![
                    ("VEC_B", f64::from(u8::from(self.columns_in_vec4()))),
                    ("WARM", warm),
                ],
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
        let k_split = match self.form {
            MatmulForm::Tiles { k_split } => k_split,
            _ => 1,
        };
        Ok(Dispatch {
            label: label.to_string(),
            kernel: if k_split > 1 { &SPLIT_KERNEL } else { &KERNEL },
            constants: if k_split > 1 {
                vec![("KSPLIT", k_split as f64)]
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
