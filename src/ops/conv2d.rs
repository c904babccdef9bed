//! 2-D convolution with filter groups, per-side padding, stride, dilation, bias and a fused
//! activation. Pointwise layers (1x1, stride 1, no padding) run as a matrix multiply per group
//! (`matmul`); everything else runs the direct kernel `shaders/conv2d.wgsl`.
//!
//! # Shapes
//! input `[N, C_in, H, W]`, weight `[C_out, C_in/groups, kh, kw]`, bias `[C_out]`,
//! output `[N, C_out, H_out, W_out]` with `H_out = (H + pad_top + pad_bottom - dh*(kh-1) - 1) / sh + 1`.

use super::{grid, matmul, nchw, u32_of, Activation, Target};
use crate::error::{invalid, Result};
use crate::gpu::{Dispatch, Gpu, Kernel};
use crate::{Precision, Tensor};

/// conv2d.wgsl with the row helpers its `main_row8` shares (`shaders/row_vec.wgsl`).
const DIRECT_SOURCE: &str = concat!(
    include_str!("../../shaders/conv2d.wgsl"),
    include_str!("../../shaders/row_vec.wgsl")
);

/// The direct convolution kernel: one invocation per output element.
pub static KERNEL: Kernel = Kernel {
    name: "conv2d",
    source: DIRECT_SOURCE,
    entry: "main",
    inputs: &["vec4 x", "w", "b"],
};

/// The direct kernel with 4 output pixels of one row per invocation (entry `main_row`).
pub static DIRECT_ROW_KERNEL: Kernel = Kernel {
    name: "conv2d",
    source: DIRECT_SOURCE,
    entry: "main_row",
    inputs: &["vec4 x", "w", "b"],
};

/// The direct kernel with 8 output pixels of one row per invocation (entry `main_row8`).
pub static DIRECT_ROW8_KERNEL: Kernel = Kernel {
    name: "conv2d",
    source: DIRECT_SOURCE,
    entry: "main_row8",
    inputs: &["vec4 x", "w", "b"],
};

/// The implicit-GEMM kernel: 4 x 4 register tiles, the group as dispatch dimension.
pub static GEMM_KERNEL: Kernel = Kernel {
    name: "conv2d_gemm",
    source: include_str!("../../shaders/conv2d_gemm.wgsl"),
    entry: "main",
    inputs: &["x", "vec4 w", "b"],
};

/// The implicit-GEMM kernel with 8 (channels) x 4 (pixels) register tiles.
pub static GEMM8_KERNEL: Kernel = Kernel {
    name: "conv2d_gemm8",
    source: include_str!("../../shaders/conv2d_gemm.wgsl"),
    entry: "main8",
    inputs: &["x", "vec4 w", "b"],
};

/// [`GEMM8_KERNEL`] reusing each input row segment across a tile's 4 pixels where they are
/// consecutive pixels of one output row (stride 1 along x; entry `main8_row`).
pub static GEMM8_ROW_KERNEL: Kernel = Kernel {
    name: "conv2d_gemm8_row",
    source: include_str!("../../shaders/conv2d_gemm.wgsl"),
    entry: "main8_row",
    inputs: &["x", "vec4 w", "b"],
};

/// [`GEMM8_ROW_KERNEL`] with 8 pixels per tile (entry `main8_row8`).
pub static GEMM8_ROW8_KERNEL: Kernel = Kernel {
    name: "conv2d_gemm8_row8",
    source: include_str!("../../shaders/conv2d_gemm.wgsl"),
    entry: "main8_row8",
    inputs: &["x", "vec4 w", "b"],
};

/// The implicit GEMM with its subgroup entry points appended (only devices with subgroups
/// compile it).
const GEMM_SG_SOURCE: &str = concat!(
    include_str!("../../shaders/conv2d_gemm.wgsl"),
    include_str!("../../shaders/subgroup_weights.wgsl"),
    include_str!("../../shaders/conv2d_gemm_sg.wgsl"),
    include_str!("../../shaders/row_vec.wgsl")
);

/// [`GEMM8_KERNEL`] with each tile's weights loaded once per subgroup and shared by broadcast
/// (`shaders/conv2d_gemm_sg.wgsl`, appended with subgroup_weights.wgsl to conv2d_gemm.wgsl: only devices with subgroups
/// compile it).
pub static GEMM8_SG_KERNEL: Kernel = Kernel {
    name: "conv2d_gemm8_sg",
    source: GEMM_SG_SOURCE,
    entry: "main8_sg",
    inputs: &["vec4 x", "vec4 w", "b"],
};

/// [`GEMM8_KERNEL`]'s tiles with K split over slices of one workgroup
/// (`shaders/conv2d_split.wgsl`).
pub static SPLIT_KERNEL: Kernel = Kernel {
    name: "conv2d_split",
    source: concat!(
        include_str!("../../shaders/conv2d_gemm.wgsl"),
        include_str!("../../shaders/conv2d_split.wgsl")
    ),
    entry: "main_split",
    inputs: &["x", "vec4 w", "b"],
};

/// [`GEMM8_ROW8_KERNEL`]'s row tiles with the weights shared by subgroup broadcast (entry
/// `main8_row8_sg` of `conv2d_gemm_sg.wgsl`).
pub static GEMM8_ROW8_SG_KERNEL: Kernel = Kernel {
    name: "conv2d_gemm8_row8_sg",
    source: GEMM_SG_SOURCE,
    entry: "main8_row8_sg",
    inputs: &["vec4 x", "vec4 w", "b"],
};

/// conv2d_tile.wgsl appended to conv2d_gemm.wgsl, whose uniform, window and tap it shares.
const TILE_SOURCE: &str = concat!(
    include_str!("../../shaders/conv2d_gemm.wgsl"),
    include_str!("../../shaders/conv2d_tile.wgsl")
);

/// The implicit GEMM with shared-memory tiles of 32 to 128 channels by 128 or 64 pixels
/// (`shaders/conv2d_tile.wgsl`), for GPUs.
pub static TILE_KERNEL: Kernel = Kernel {
    name: "conv2d_tile",
    source: TILE_SOURCE,
    entry: "main_tile",
    inputs: &["vec4 x", "vec4 w", "b"],
};

/// [`TILE_KERNEL`]'s 32 x 32 tiles with K split over 4 slices of the workgroup (entry
/// `main_ks`).
pub static TILE_KS_KERNEL: Kernel = Kernel {
    name: "conv2d_tile_ks",
    source: TILE_SOURCE,
    entry: "main_ks",
    inputs: &["vec4 x", "vec4 w", "b"],
};

/// Which kernel runs a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConvAlgorithm {
    /// One invocation per output (`conv2d.wgsl`): depthwise and few outputs per group.
    Direct,
    /// The direct kernel with 4 consecutive output pixels of a row per invocation (entry
    /// `main_row`): each weight loaded once for the 4, the index arithmetic done once.
    DirectRow,
    /// `DirectRow` with 8 pixels per invocation (entry `main_row8`): with dilation 1 along x
    /// the 8 windows' input values of a kernel row are loaded once and slid along it (in s
    /// phases for stride s); in groups of 2 or 3 outputs each invocation computes two
    /// channels from the same inputs. With stride 1 along x and kw <= 7 each kernel row's 14
    /// values are read at once (as 4-vectors where W is a multiple of 4, `row_vec.wgsl`) and
    /// its taps unrolled, and with stride and dilation 1 along y each invocation computes two
    /// output rows from kh + 1 input rows; with W_out a multiple of 4 the runs are stored as
    /// 4-vectors. For CPU adapters, where every load is a loop over the lanes.
    DirectRow8,
    /// Implicit GEMM with 4 x 4 register tiles (`conv2d_gemm.wgsl`); weights repacked at load.
    Gemm,
    /// The implicit GEMM with 8 x 4 tiles (entry `main8`): twice the multiply-adds per
    /// gathered input, which CPU adapters (lavapipe, SwiftShader) reward.
    Gemm8,
    /// `Gemm8` where a tile's 4 pixels are consecutive in one output row (entry `main8_row`):
    /// for each (kernel row, input channel) the kw + 3 input values the 4 windows cover are
    /// loaded once and reused across the kernel columns (instead of 4 * kw loads); needs
    /// sw = dw = 1 and kw > 1, other layers and tiles that straddle a row's end run `Gemm8`'s
    /// per-pixel path.
    Gemm8Row,
    /// `Gemm8Row` with 8 pixels per tile (entry `main8_row8`): each pair of weight 4-vectors
    /// feeds 64 multiply-adds instead of 32; tiles that are not 8 pixels of one row run two
    /// of `Gemm8`'s tiles.
    Gemm8Row8,
    /// A matrix multiply per group (`matmul.wgsl`): 1x1, stride 1, unpadded.
    Matmul,
    /// The matrix multiply with 8 x 4 tiles (`matmul8.wgsl`), for CPU adapters; weights
    /// repacked at load as for the implicit GEMM.
    Matmul8,
    /// `Matmul8` with 8 columns per invocation (entry `main_x8`): 64 multiply-adds per 16
    /// loads instead of 32 per 12, with twice the accumulators.
    Matmul8x8,
    /// `Gemm8` with a workgroup's 64 invocations on one 8-channel tile, whose weights each
    /// subgroup loads once and shares by broadcast (`conv2d_gemm_sg.wgsl`); needs subgroups.
    Gemm8Sg,
    /// `Gemm8Row8` with the weights shared by subgroup broadcast, every pixel tile a run of 8
    /// in one output row (`main8_row8_sg`): one input and one weight load per invocation per
    /// 64 multiply-adds; with stride s along x the kernel columns go in s phases, each a
    /// sliding window of its own. Where a group's last channel tile holds 4 or fewer channels
    /// it joins the tile before it in a second launch of 12-channel tiles (half tiles where
    /// the group has 4 or fewer outputs). Input rows are read as 4-vectors and runs stored as
    /// 4-vectors where the widths allow. Needs subgroups and dilation 1 along x (other layers
    /// run `Gemm8Sg`).
    Gemm8Row8Sg,
    /// `Matmul8` likewise (`matmul8_sg.wgsl`); needs subgroups.
    Matmul8Sg,
    /// `Matmul8x8` likewise (entry `main_sgt`, one tile): one weight gather and 8 input gathers per 64
    /// multiply-adds; needs subgroups.
    Matmul8x8Sg,
    /// `Matmul8x8Sg` with 16 output channels per invocation (`main_sgt`, two tiles): two weight
    /// gathers and 8 input gathers per 128 multiply-adds; needs subgroups.
    Matmul16x8Sg,
    /// `Matmul8x8Sg` with 32 output channels per invocation (`main_sgt`, four tiles): four weight
    /// gathers and 8 input gathers per 256 multiply-adds; needs subgroups.
    Matmul32x8Sg,
    /// The subgroup matmul with the operands' roles swapped (`main_sgc`): 8 output channels
    /// per invocation, whose weights are two aligned 4-vector loads, and 32 pixels of the whole
    /// batch shared by a workgroup row of invocations, each 8-pixel tile loaded once per
    /// subgroup and broadcast; for maps whose pixels are not 4-vectors (H * W not a multiple
    /// of 4), where `Matmul32x8Sg` reads its pixels one by one. Needs subgroups.
    MatmulColsSg,
    /// `Gemm8`'s tiles with K split over 2 slices of one workgroup (`conv2d_split.wgsl`),
    /// partial tiles added in workgroup memory: twice the invocations, for layers with few
    /// tiles and a long K on GPUs.
    Gemm8K2,
    /// `Gemm8K2` with 4 slices.
    Gemm8K4,
    /// `Gemm8K2` with 8 slices.
    Gemm8K8,
    /// The 8-channel tiles with as many K slices as the layer needs to fill the device, chosen
    /// at each launch from the layer's shape and batch ([`ConvParams::k_slices`]): `Gemm8K2`,
    /// `Gemm8K4` or `Gemm8K8` where a split is due, else `Gemm8`, or `Matmul8` for pointwise
    /// layers. Where the shared-memory tiles do not fit, the default on GPUs ([`Self::Tile`]).
    Gemm8Split,
    /// The implicit GEMM with shared-memory tiles (`conv2d_tile.wgsl`): a workgroup of 256
    /// invocations copies each K step's weights and inputs for a tile of 64 channels by 64
    /// pixels into workgroup memory once and each invocation computes 4 x 4 outputs from
    /// there; pointwise layers read the input rows directly. For GPUs.
    Tile64,
    /// `Tile64` with 128 channels per tile, 8 x 4 outputs per invocation.
    Tile128,
    /// `Tile64` with 32 channels by 128 pixels per tile, for groups with few outputs.
    Tile32,
    /// Shared-memory tiles of 32 channels by 32 pixels with K split over 4 slices of 64
    /// invocations (`main_ks`), partial tiles added in workgroup memory: for layers whose
    /// larger tiles are too few to fill a GPU.
    Tile32K4,
    /// The shared-memory tiles where the layer fills them, chosen at each launch
    /// ([`ConvParams::shared_tile_for`]), else what `Gemm8Split` takes. The default on GPUs.
    Tile,
    /// The subgroup matmul with as many output channels per invocation as pay, chosen at each
    /// launch from the layer's shape and batch ([`ConvParams::sg_tile`]): `Matmul32x8Sg`,
    /// `Matmul16x8Sg` or `Matmul8x8Sg` where the layer still makes enough invocations, else
    /// `Matmul8Sg`. All four read the same weight layout (MP = M rounded up to 8). The default
    /// for pointwise layers on CPU adapters with subgroups.
    MatmulSg,
}

/// Invocations below which [`ConvAlgorithm::MatmulSg`] takes fewer output channels per
/// invocation: on lavapipe (2 cores) at batch 1, GoogLeNet's 1x1 layers with fewer were up to
/// 2x faster with narrower tiles, those with more were not (docs/results/lavapipe-small-ops.txt).
pub const SG_MIN_INVOCATIONS: usize = 96;

/// The adapters a kernel is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Adapters {
    All,
    Cpu,
    Gpu,
}

/// What the rest of the crate needs to know about one [`ConvAlgorithm`]: adding a kernel means
/// one row in [`ConvAlgorithm::facts`], one place in [`ConvAlgorithm::ALL`] and its dispatch.
struct Facts {
    /// The name `DEEPROOTS_CONV`, the tuning cache and the reports use.
    name: &'static str,
    /// Output channels per register tile of the kernels that read repacked weights.
    tile_rows: Option<usize>,
    /// Runs only pointwise layers.
    matmul: bool,
    /// Needs a device with subgroups.
    subgroups: bool,
    /// The same tiles without subgroups.
    without_subgroups: ConvAlgorithm,
    /// K slices per workgroup of the split GEMMs with a fixed split.
    k_slices: Option<usize>,
    /// Where it is worth running: kernels written for CPU adapters were never faster on GPUs
    /// (docs/results/h200-split-k.txt, 8), the shared-memory tiles are 3.5-6x slower on lavapipe
    /// (its barriers); the tuner leaves them out elsewhere.
    adapters: Adapters,
    /// Channels per tile of the shared-memory tile kernels.
    shared_tile: Option<usize>,
}

impl ConvAlgorithm {
    /// This algorithm's facts, one row per kernel.
    #[rustfmt::skip]
    const fn facts(self) -> Facts {
        use Adapters::*;
        use ConvAlgorithm::*;
        // (name, tile rows, matmul only, needs subgroups, without subgroups, K slices, adapters,
        // channels per shared-memory tile)
        let (name, tile_rows, matmul, subgroups, without_subgroups, k_slices, adapters, shared_tile) =
            match self {
                Direct =>       ("direct",        None,     false, false, Direct,     None,    All, None),
                DirectRow =>    ("direct-row",    None,     false, false, DirectRow,  None,    All, None),
                DirectRow8 =>   ("direct-row8",   None,     false, false, DirectRow8, None,    All, None),
                Gemm =>         ("gemm",          Some(4),  false, false, Gemm,       None,    All, None),
                Gemm8 =>        ("gemm8",         Some(8),  false, false, Gemm8,      None,    All, None),
                Gemm8Row =>     ("gemm8-row",     Some(8),  false, false, Gemm8Row,   None,    All, None),
                Gemm8Row8 =>    ("gemm8-row8",    Some(8),  false, false, Gemm8Row8,  None,    All, None),
                Matmul =>       ("matmul",        None,     true,  false, Matmul,     None,    All, None),
                Matmul8 =>      ("matmul8",       Some(8),  true,  false, Matmul8,    None,    All, None),
                Matmul8x8 =>    ("matmul8x8",     Some(8),  true,  false, Matmul8x8,  None,    All, None),
                Gemm8Sg =>      ("gemm8-sg",      Some(8),  false, true,  Gemm8,      None,    All, None),
                Gemm8Row8Sg =>  ("gemm8-row8-sg", Some(8),  false, true,  Gemm8Row8,  None,    All, None),
                Matmul8Sg =>    ("matmul8-sg",    Some(8),  true,  true,  Matmul8,    None,    All, None),
                Matmul8x8Sg =>  ("matmul8x8-sg",  Some(8),  true,  true,  Matmul8x8,  None,    All, None),
                Matmul16x8Sg => ("matmul16x8-sg", Some(8),  true,  true,  Matmul8x8,  None,    Cpu, None),
                Matmul32x8Sg => ("matmul32x8-sg", Some(8),  true,  true,  Matmul8x8,  None,    Cpu, None),
                MatmulSg =>     ("matmul-sg",     Some(8),  true,  true,  Matmul8x8,  None,    Cpu, None),
                MatmulColsSg => ("matmul-cols-sg", Some(8), true,  true,  Matmul8x8,  None,    Cpu, None),
                Gemm8K2 =>      ("gemm8-k2",      Some(8),  false, false, Gemm8K2,    Some(2), All, None),
                Gemm8K4 =>      ("gemm8-k4",      Some(8),  false, false, Gemm8K4,    Some(4), All, None),
                Gemm8K8 =>      ("gemm8-k8",      Some(8),  false, false, Gemm8K8,    Some(8), All, None),
                Gemm8Split =>   ("gemm8-split",   Some(8),  false, false, Gemm8Split, None,    All, None),
                Tile32 =>       ("tile32",        Some(8),  false, false, Tile32,     None,    Gpu, Some(32)),
                Tile32K4 =>     ("tile32-k4",     Some(8),  false, false, Tile32K4,   None,    Gpu, Some(32)),
                Tile64 =>       ("tile64",        Some(8),  false, false, Tile64,     None,    Gpu, Some(64)),
                Tile128 =>      ("tile128",       Some(8),  false, false, Tile128,    None,    Gpu, Some(128)),
                Tile =>         ("tile",          Some(8),  false, false, Tile,       None,    Gpu, None),
            };
        Facts {
            name,
            tile_rows,
            matmul,
            subgroups,
            without_subgroups,
            k_slices,
            adapters,
            shared_tile,
        }
    }

    /// Channels per tile of the shared-memory tile kernels (`None` for the others).
    pub fn shared_tile(self) -> Option<usize> {
        self.facts().shared_tile
    }

    /// Output channels per register tile of the kernels that read repacked weights (`None` for
    /// the others).
    pub fn tile_rows(self) -> Option<usize> {
        self.facts().tile_rows
    }

    /// Runs only pointwise layers.
    pub fn is_matmul(self) -> bool {
        self.facts().matmul
    }

    /// Needs a device with subgroups.
    pub fn needs_subgroups(self) -> bool {
        self.facts().subgroups
    }

    /// The same tiles without subgroups.
    pub fn without_subgroups(self) -> Self {
        self.facts().without_subgroups
    }

    /// K slices per workgroup of the split GEMMs with a fixed split (`None` for the others).
    pub fn k_slices(self) -> Option<usize> {
        self.facts().k_slices
    }

    /// Worth running on a CPU adapter (`cpu`) or on a GPU: the kernels written for one kind
    /// were never faster on the other, and the tuner skips them there.
    pub fn suits(self, cpu: bool) -> bool {
        match self.facts().adapters {
            Adapters::All => true,
            Adapters::Cpu => cpu,
            Adapters::Gpu => !cpu,
        }
    }

    /// Every algorithm, in the order the tuner tries them.
    pub const ALL: [Self; 27] = [
        Self::MatmulSg,
        Self::Matmul32x8Sg,
        Self::MatmulColsSg,
        Self::Matmul16x8Sg,
        Self::Matmul8x8Sg,
        Self::Matmul8Sg,
        Self::Matmul8,
        Self::Matmul8x8,
        Self::Matmul,
        Self::Gemm8Sg,
        Self::Gemm8Row8Sg,
        Self::Gemm8,
        Self::Gemm8Row,
        Self::Gemm8Row8,
        Self::Gemm,
        Self::Gemm8Split,
        Self::Gemm8K2,
        Self::Gemm8K4,
        Self::Gemm8K8,
        Self::Tile,
        Self::Tile32,
        Self::Tile32K4,
        Self::Tile64,
        Self::Tile128,
        Self::DirectRow8,
        Self::DirectRow,
        Self::Direct,
    ];

    /// The name `DEEPROOTS_CONV`, the tuning cache and the reports use.
    pub fn name(self) -> &'static str {
        self.facts().name
    }

    /// Parses a [`Self::name`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == s)
    }

    /// The algorithm forced by `DEEPROOTS_CONV` (a [`Self::name`]), for experiments; `auto` or
    /// unset lets each layer choose.
    pub fn forced() -> Option<Self> {
        static FORCED: std::sync::OnceLock<Option<ConvAlgorithm>> = std::sync::OnceLock::new();
        *FORCED.get_or_init(|| {
            std::env::var("DEEPROOTS_CONV")
                .ok()
                .and_then(|s| Self::parse(&s))
        })
    }
}

impl serde::Serialize for ConvAlgorithm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A convolution layer's static facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvParams {
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Dilation `[dh, dw]`.
    pub dilation: [usize; 2],
    /// Zero padding `[top, left, bottom, right]`.
    pub padding: [usize; 4],
    /// Filter groups; `c_in` and `c_out` must both be divisible by it.
    pub groups: usize,
    /// Activation applied after the bias.
    pub activation: Activation,
}

impl ConvParams {
    /// A `k x k` convolution with stride 1, no padding, one group and no activation.
    pub fn new(c_in: usize, c_out: usize, k: usize) -> Self {
        Self {
            c_in,
            c_out,
            kernel: [k, k],
            stride: [1, 1],
            dilation: [1, 1],
            padding: [0; 4],
            groups: 1,
            activation: Activation::None,
        }
    }

    /// Checks the parameters on their own.
    pub fn validate(&self) -> Result<()> {
        let op = "conv2d";
        if self.c_in == 0 || self.c_out == 0 || self.groups == 0 {
            return Err(invalid(
                op,
                format!(
                    "channels and groups must be positive (c_in {}, c_out {}, groups {})",
                    self.c_in, self.c_out, self.groups
                ),
            ));
        }
        if self.kernel.contains(&0) || self.stride.contains(&0) || self.dilation.contains(&0) {
            return Err(invalid(
                op,
                format!(
                    "kernel {:?}, stride {:?} and dilation {:?} must be positive",
                    self.kernel, self.stride, self.dilation
                ),
            ));
        }
        if !self.c_in.is_multiple_of(self.groups) || !self.c_out.is_multiple_of(self.groups) {
            return Err(invalid(
                op,
                format!(
                    "groups {} must divide c_in {} and c_out {}",
                    self.groups, self.c_in, self.c_out
                ),
            ));
        }
        Ok(())
    }

    /// Weight shape `[c_out, c_in / groups, kh, kw]`.
    pub fn weight_shape(&self) -> [usize; 4] {
        [
            self.c_out,
            self.c_in / self.groups.max(1),
            self.kernel[0],
            self.kernel[1],
        ]
    }

    /// Output shape for an NCHW input, or why there is none.
    pub fn out_dims(&self, input: &[usize]) -> Result<[usize; 4]> {
        self.validate()?;
        let [n, c, h, w] = nchw("conv2d", input)?;
        if c != self.c_in {
            return Err(invalid(
                "conv2d",
                format!("input has {c} channels, the layer expects {}", self.c_in),
            ));
        }
        let [pt, pl, pb, pr] = self.padding;
        let span_h = self.dilation[0] * (self.kernel[0] - 1) + 1;
        let span_w = self.dilation[1] * (self.kernel[1] - 1) + 1;
        if h + pt + pb < span_h || w + pl + pr < span_w {
            return Err(invalid(
                "conv2d",
                format!(
                    "padded input {}x{} is smaller than the dilated kernel {span_h}x{span_w}",
                    h + pt + pb,
                    w + pl + pr
                ),
            ));
        }
        let ho = (h + pt + pb - span_h) / self.stride[0] + 1;
        let wo = (w + pl + pr - span_w) / self.stride[1] + 1;
        Ok([n, self.c_out, ho, wo])
    }

    /// True for a 1x1, stride 1, unpadded convolution: a matrix multiply per group.
    pub fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0; 4]
    }

    /// Whether the row kernels take a kernel row's 8 windows as 14 values from one start and
    /// unroll its taps: stride and dilation 1 along x, kw <= 7.
    fn row_windows(&self) -> bool {
        self.stride[1] == 1 && self.dilation[1] == 1 && self.kernel[1] <= 7
    }

    /// Whether gemm8-row8-sg takes a kernel row's 8 windows at stride 2 as 14 + kw values from
    /// one start and unrolls its taps (ROW_X2): stride 2 and dilation 1 along x, kw <= 7 (the
    /// 7x7 stems of GoogLeNet and ResNet).
    fn row_windows2(&self) -> bool {
        self.stride[1] == 2 && self.dilation[1] == 1 && self.kernel[1] <= 7
    }

    /// The overrides ROW_X, VEC_X, SHIFT, X4 and KW of the row kernels (`shaders/row_vec.wgsl`)
    /// for an input `w` wide, and with `stride2` (gemm8-row8-sg) ROW_X2: [`Self::row_windows`]
    /// (and [`Self::row_windows2`]); rows read as 4-vectors where W is a multiple of 4 and one of
    /// them holds; the first window's offset from the 4-aligned column below it; the 4-vectors
    /// the 8 windows cover (kw + 7 values, 14 + kw at stride 2); the kernel's width (for the
    /// unrolled taps).
    fn row_vectors(&self, w: usize, stride2: bool) -> Vec<(&'static str, f64)> {
        let two = stride2 && self.row_windows2();
        let shift = (4 - self.padding[1] % 4) % 4;
        let span = if two {
            14 + self.kernel[1]
        } else {
            self.kernel[1] + 7
        };
        let on = (self.row_windows() || two) && w.is_multiple_of(4);
        let mut c = vec![
            ("ROW_X", f64::from(u8::from(self.row_windows()))),
            ("VEC_X", f64::from(u8::from(on))),
            ("SHIFT", shift as f64),
            ("X4", (shift + span).div_ceil(4) as f64),
            ("KW", self.kernel[1] as f64),
        ];
        if stride2 {
            c.push(("ROW_X2", f64::from(u8::from(two))));
        }
        c
    }

    /// Multiply-adds per image: `C_out * H_out * W_out * (C_in / groups) * kh * kw`.
    pub fn multiply_adds(&self, out: [usize; 4]) -> u64 {
        let [_, c, h, w] = out;
        (c * h * w) as u64 * (self.c_in / self.groups * self.kernel[0] * self.kernel[1]) as u64
    }

    /// Parameters: weights plus `c_out` biases when there is a bias.
    pub fn params(&self, bias: bool) -> u64 {
        self.weight_shape().iter().product::<usize>() as u64
            + if bias { self.c_out as u64 } else { 0 }
    }

    /// The kernel this layer runs: `DEEPROOTS_CONV` when set (a matmul only where it applies,
    /// a subgroup kernel only where the device has subgroups); else on GPUs the shared-memory
    /// tiles where the launch fills them, the 8-channel tiles with K split as it needs
    /// otherwise ([`ConvAlgorithm::Tile`]), for pointwise layers and where a group has at
    /// least 4 output channels, the direct kernel with row runs otherwise (depthwise); on CPU
    /// adapters the matmul with 8 x 8 tiles for pointwise layers
    /// (with subgroups, the subgroup form with as many channels per invocation as the launch
    /// can use, [`ConvAlgorithm::MatmulSg`]), the 8 x 8 row-reuse implicit GEMM with subgroup
    /// weights where a group has at least 3 output channels, the device has subgroups, the
    /// window is wider than 1 and the dilation along x is 1; else the implicit GEMM where a
    /// group has at least 4 (where it has at least 8, 8-channel tiles: without subgroups the
    /// row-reuse form where also the stride along x is 1 and the window is at least 5 wide,
    /// else the subgroup form where the device has subgroups; else 4-channel tiles), and
    /// the direct kernel with row runs otherwise (runs of 8 on CPU adapters, of 4 on GPUs). The measurements
    /// behind the rule are in docs/results/; [`crate::tune`] replaces it by measurements on
    /// the device at hand.
    pub fn algorithm(&self, target: Target) -> ConvAlgorithm {
        use ConvAlgorithm::*;
        let per_group = self.c_out / self.groups.max(1);
        let sg = target.subgroup.is_some();
        let chosen = match ConvAlgorithm::forced() {
            // Every kernel runs a pointwise layer.
            Some(a) if self.is_pointwise() => a,
            None if self.is_pointwise() => match (target.cpu, sg) {
                (true, true) => MatmulSg,
                (true, false) => Matmul8x8,
                (false, _) => Tile,
            },
            // The matmuls run only pointwise layers: the others choose as if nothing was forced.
            Some(a) if !a.is_matmul() => a,
            // From 4 outputs per group (HALF tiles up to 4): 1.8-4.3x `gemm` on lavapipe
            // (docs/results/lavapipe-unrolled-rows.txt). At 3 (a half tile, one row idle)
            // 1.1-3.3x `direct-row8` on the five layers of docs/results/lavapipe-mesa25.txt,
            // on Mesa 22.3 and 25.0; at 2 it lost on 7 of 10 (five layers, two drivers).
            _ if target.cpu
                && per_group >= 3
                && sg
                && self.dilation[1] == 1
                && self.kernel[1] > 1 =>
            {
                Gemm8Row8Sg
            }
            _ if target.cpu && per_group >= 8 => {
                let row = self.stride[1] == 1 && self.dilation[1] == 1;
                if row && self.kernel[1] >= 5 {
                    Gemm8Row8
                } else if sg {
                    Gemm8Sg
                } else {
                    Gemm8
                }
            }
            _ if target.cpu && per_group >= 4 => Gemm,
            _ if per_group >= 4 => Tile,
            _ if target.cpu => DirectRow8,
            _ => DirectRow,
        };
        if sg {
            chosen
        } else {
            chosen.without_subgroups()
        }
    }

    /// The algorithms that can run this layer on `target`: the matmuls only pointwise layers,
    /// the subgroup kernels only on devices with subgroups, those written for CPU adapters or
    /// for GPUs only there ([`ConvAlgorithm::suits`]). With `DEEPROOTS_CONV` set, only the
    /// forced one (as [`Self::algorithm`] applies it).
    pub fn candidates(&self, target: Target) -> Vec<ConvAlgorithm> {
        if ConvAlgorithm::forced().is_some() {
            return vec![self.algorithm(target)];
        }
        ConvAlgorithm::ALL
            .into_iter()
            .filter(|a| self.is_pointwise() || !a.is_matmul())
            .filter(|a| target.subgroup.is_some() || !a.needs_subgroups())
            .filter(|a| a.suits(target.cpu))
            .collect()
    }

    /// K slices [`ConvAlgorithm::Gemm8Split`] takes for `n_pix` output pixels (batch x H_out x
    /// W_out): 1 where the layer's 8 x 4 tiles already make `target.min_workgroups` workgroups
    /// of 64 invocations (always on CPU adapters, which want none), else the fewest of 2, 4
    /// and 8 that make them, with at least 32 of K and one input channel per slice. The
    /// thresholds come from tuning NIN, ResNet-50, GoogLeNet and their root variants on an
    /// H200 (docs/results/h200-split-k.txt).
    pub fn k_slices(&self, n_pix: usize, target: Target) -> usize {
        let g = self.groups.max(1);
        let cin_g = self.c_in / g;
        let k = cin_g * self.kernel[0] * self.kernel[1];
        let tiles = g * (self.c_out / g).div_ceil(8) * n_pix.div_ceil(4);
        let want = target.min_workgroups * 64;
        let mut ks = 1;
        while ks < 8 && tiles * ks < want && k / (2 * ks) >= 32 && 2 * ks <= cin_g {
            ks *= 2;
        }
        ks
    }

    /// Output channels and pixels per invocation [`ConvAlgorithm::MatmulSg`] takes for `n_pix`
    /// output pixels: of 32, 16 and 8 channels by 8 pixels, those that still make
    /// [`SG_MIN_INVOCATIONS`] invocations, the one with the least estimated time (the outputs
    /// per group rounded up to the tile, since a taller tile computes its rows past them, times
    /// the time per row measured on lavapipe relative to 8-row tiles: 0.58 for 32, 0.72 for 16;
    /// ties to the taller), else 8 by 4.
    pub fn sg_tile(&self, n_pix: usize) -> (usize, usize) {
        let g = self.groups.max(1);
        let m = self.c_out / g;
        let invocations = |rows: usize, cols: usize| g * m.div_ceil(rows) * n_pix.div_ceil(cols);
        [(32, 58), (16, 72), (8, 100)]
            .into_iter()
            .filter(|&(rows, _)| invocations(rows, 8) >= SG_MIN_INVOCATIONS)
            .min_by_key(|&(rows, cost)| m.div_ceil(rows) * rows * cost)
            .map_or((8, 4), |(rows, _)| (rows, 8))
    }

    /// Whether [`ConvAlgorithm::MatmulSg`] takes the subgroup matmul with its operands' roles
    /// swapped ([`ConvAlgorithm::MatmulColsSg`]) on images of `pixels` pixels: where the pixels
    /// are not 4-vectors (a multiple of 4) and a group's outputs fill blocks of 64 channels (8
    /// lanes of 8) to at least 7/8. On lavapipe at batch 16, GoogLeNet's 15 x 15 layers with
    /// 64, 112, 128, 192 or 256 outputs were 1.14-1.26x faster than with `Matmul32x8Sg`, those
    /// with 96, 144 or 160 (a quarter or a sixth of the lanes idle) 0.95-1.03x. Not decided by
    /// the batch, so that a layer adds in the same order at every batch size.
    pub fn shares_columns(&self, pixels: usize) -> bool {
        let m = self.c_out / self.groups.max(1);
        let blocks = m.div_ceil(64) * 64;
        !pixels.is_multiple_of(4) && m >= 64 && 8 * (blocks - m) <= blocks
    }

    /// Whether the subgroup matmuls would leave more than half of each workgroup idle on images
    /// of `pixels` pixels: they take one image per workgroup (images are the dispatch's z),
    /// whose rows of `Params.wx` invocations each take an 8-row tile of the outputs per group
    /// and 8 pixels per invocation, so a layer with few outputs on a small image fills few of
    /// them (NIN's last 1x1 layer, 10 outputs on 8x8: 16 of 64 invocations; at batch 32 on
    /// lavapipe 2.05 ms, 0.37 ms with `Gemm8Row8Sg`, whose tiles run over the whole batch; at
    /// batch 1 0.15 and 0.19 ms). Not decided by the batch, so that a layer adds in the same
    /// order at every batch size.
    pub fn matmul_idles(&self, pixels: usize, target: Target) -> bool {
        let m_tiles = (self.c_out / self.groups.max(1)).div_ceil(8);
        let n_tiles = pixels.div_ceil(8);
        let wx = target.subgroup_row(n_tiles) as usize;
        let busy = m_tiles.min(64 / wx) * n_tiles.min(wx);
        target.subgroup.is_some() && 2 * busy < 64
    }

    /// The shared-memory tile kernel [`ConvAlgorithm::Tile`] takes for `n_pix` output pixels,
    /// if any (GPUs only): the tile height that the outputs per group `m` fill to at least
    /// three quarters (32 or 64 channels up to 64; 64 below 256; 128 from 256, else 64),
    /// where the layer makes at least 7/32 of `target.min_workgroups` workgroups of 256
    /// invocations (112 on GPUs; 128-channel tiles short of them fall back to 64); where it
    /// does not, `Tile32K4` if 32-channel tiles fill, K is at least 128 and its 32 x 32 tiles
    /// make that many. On an H100
    /// (docs/results/h100-tiles.txt) 64-channel tiles beat every other kernel on layers with
    /// 114 such workgroups or more and lost to the split-K GEMM on those with 104 or fewer;
    /// 128-channel tiles won from 256 outputs per group and lost at 128.
    pub fn shared_tile_for(&self, n_pix: usize, target: Target) -> Option<ConvAlgorithm> {
        use ConvAlgorithm::*;
        let g = self.groups.max(1);
        let m = self.c_out / g;
        let fills = |rows: usize| 4 * m >= 3 * m.div_ceil(rows) * rows;
        let enough = |a: ConvAlgorithm| {
            TileShape::of(a)
                .is_some_and(|t| 32 * t.workgroups(g, m, n_pix) >= 7 * target.min_workgroups)
        };
        // Too few tiles: 32 x 32 ones with K split over 4 slices, where 32-channel tiles fill
        // and each slice gets 4 steps of K.
        let k = self.c_in / g * self.kernel[0] * self.kernel[1];
        let k_split = || (m >= 24 && fills(32) && k >= 128 && enough(Tile32K4)).then_some(Tile32K4);
        let tile = match m {
            _ if target.cpu => return None,
            24..=32 => Tile32,
            48..=255 if fills(64) => Tile64,
            256.. if fills(128) => Tile128,
            256.. if fills(64) => Tile64,
            _ => return k_split(),
        };
        if enough(tile) {
            Some(tile)
        } else if tile == Tile128 && enough(Tile64) {
            Some(Tile64)
        } else {
            k_split()
        }
    }

    /// The kernel `algorithm` launches for `batch` images of `pixels` output pixels each:
    /// itself, except [`ConvAlgorithm::Gemm8Split`], which becomes one of the fixed splits,
    /// `Gemm8` or (pointwise layers) `Matmul8`, [`ConvAlgorithm::MatmulSg`], which becomes one
    /// of the fixed subgroup matmuls or, where those would leave most of each workgroup idle
    /// ([`Self::matmul_idles`]), `Gemm8Row8Sg`, [`ConvAlgorithm::Tile`], which becomes a
    /// shared-memory tile kernel or what `Gemm8Split` becomes, and `Gemm8Row8Sg`, which becomes
    /// `Gemm8Sg` where the dilation along x is not 1.
    pub fn launched(
        &self,
        algorithm: ConvAlgorithm,
        batch: usize,
        pixels: usize,
        target: Target,
    ) -> ConvAlgorithm {
        let n_pix = batch * pixels;
        if algorithm == ConvAlgorithm::MatmulSg && self.matmul_idles(pixels, target) {
            return self.launched(ConvAlgorithm::Gemm8Row8Sg, batch, pixels, target);
        }
        if algorithm == ConvAlgorithm::Gemm8Row8Sg {
            return if self.dilation[1] == 1 {
                algorithm
            } else {
                ConvAlgorithm::Gemm8Sg
            };
        }
        if algorithm == ConvAlgorithm::MatmulSg && self.shares_columns(pixels) {
            return ConvAlgorithm::MatmulColsSg;
        }
        if algorithm == ConvAlgorithm::MatmulSg {
            return match self.sg_tile(n_pix) {
                (32, _) => ConvAlgorithm::Matmul32x8Sg,
                (16, _) => ConvAlgorithm::Matmul16x8Sg,
                (_, 8) => ConvAlgorithm::Matmul8x8Sg,
                _ => ConvAlgorithm::Matmul8Sg,
            };
        }
        if algorithm == ConvAlgorithm::Tile {
            return self.shared_tile_for(n_pix, target).unwrap_or_else(|| {
                self.launched(ConvAlgorithm::Gemm8Split, batch, pixels, target)
            });
        }
        if algorithm != ConvAlgorithm::Gemm8Split {
            return algorithm;
        }
        match self.k_slices(n_pix, target) {
            1 if self.is_pointwise() => ConvAlgorithm::Matmul8,
            1 => ConvAlgorithm::Gemm8,
            2 => ConvAlgorithm::Gemm8K2,
            4 => ConvAlgorithm::Gemm8K4,
            _ => ConvAlgorithm::Gemm8K8,
        }
    }

    /// `direct-row8` computes two channels of a group per invocation: groups of 2 or 3 outputs.
    fn pairs(&self) -> bool {
        (2..=3).contains(&(self.c_out / self.groups.max(1)))
    }

    /// `direct-row8` and `gemm8-row8-sg` compute two output rows per invocation or pixel tile
    /// (ROWS2): where they take kernel rows as 14-value windows ([`Self::row_windows`]) and
    /// stride and dilation along y are 1, so that the second row's kernel rows are the
    /// first's moved down by one.
    fn row_pairs(&self) -> bool {
        self.row_windows() && self.stride[0] == 1 && self.dilation[0] == 1
    }

    /// Elements of [`Self::device_weight`]'s result.
    pub fn device_weight_len(&self, algorithm: ConvAlgorithm) -> usize {
        let k = self.c_in / self.groups * self.kernel[0] * self.kernel[1];
        match algorithm.tile_rows() {
            Some(rows) => self.groups * (self.c_out / self.groups).div_ceil(rows) * rows * k,
            None => self.c_out * k,
        }
    }

    /// The weight in the layout this layer's kernel reads: as given, or for the implicit GEMM
    /// repacked to `[groups, K, MP]` (K = C_in/groups * kh * kw, MP = C_out/groups rounded up
    /// to the tile height, 4 or 8, zero-filled) so a tile's output channels sit side by side.
    pub fn device_weight(&self, algorithm: ConvAlgorithm, weight: &Tensor) -> Result<Tensor> {
        check_weights(self, weight, None)?;
        let Some(rows) = algorithm.tile_rows() else {
            return Ok(weight.clone());
        };
        let g = self.groups;
        let m = self.c_out / g;
        let mp = m.div_ceil(rows) * rows;
        let k = self.c_in / g * self.kernel[0] * self.kernel[1];
        let mut packed = vec![0.0; self.device_weight_len(algorithm)];
        for co in 0..self.c_out {
            let (gi, mi) = (co / m, co % m);
            for ki in 0..k {
                packed[(gi * k + ki) * mp + mi] = weight.data()[co * k + ki];
            }
        }
        Tensor::new([g, k, mp], packed)
    }

    /// The dispatches computing `y` from `x`, weight `w` (in [`Self::device_weight`]'s
    /// layout) and bias `b`, given as buffer indices `[y, x, w, b]`.
    pub fn dispatches(
        &self,
        algorithm: ConvAlgorithm,
        label: &str,
        input: &[usize],
        [y, x, w, b]: [usize; 4],
        target: Target,
    ) -> Result<Vec<Dispatch>> {
        let out = self.out_dims(input)?;
        let [n, c_in, h, wd] = nchw("conv2d", input)?;
        let algorithm = self.launched(algorithm, n, out[2] * out[3], target);
        let matmul = algorithm.is_matmul();
        let subgroup = match (algorithm.needs_subgroups(), target.subgroup) {
            (false, _) => 0,
            (true, Some(s)) => s,
            (true, None) => {
                return Err(invalid(
                    label,
                    format!(
                        "the {} kernel needs a device with subgroups",
                        algorithm.name()
                    ),
                ))
            }
        };
        if matmul && !self.is_pointwise() {
            return Err(invalid(
                label,
                "the matmul kernel runs only 1x1, stride 1, unpadded convolutions",
            ));
        }
        if matmul {
            let hw = h * wd;
            let (m, k) = (self.c_out / self.groups, c_in / self.groups);
            use matmul::MatmulForm;
            let form = match algorithm {
                ConvAlgorithm::Matmul8 => MatmulForm::Wide { x8: false },
                ConvAlgorithm::Matmul8x8 => MatmulForm::Wide { x8: true },
                // `launched` resolves matmul-sg; were it not, its 8 x 4 form.
                ConvAlgorithm::Matmul8Sg | ConvAlgorithm::MatmulSg => {
                    MatmulForm::subgroup(subgroup)
                }
                ConvAlgorithm::Matmul8x8Sg => MatmulForm::cols8(subgroup, 8),
                ConvAlgorithm::Matmul16x8Sg => MatmulForm::cols8(subgroup, 16),
                ConvAlgorithm::Matmul32x8Sg => MatmulForm::cols8(subgroup, 32),
                ConvAlgorithm::MatmulColsSg => MatmulForm::shared_columns(subgroup),
                ConvAlgorithm::Matmul => MatmulForm::Tiles {
                    k_split: matmul::MatmulParams::split_for(
                        m,
                        hw,
                        k,
                        n * self.groups,
                        target.min_workgroups,
                    ),
                },
                other => {
                    return Err(invalid(
                        label,
                        format!("{} is not a matmul kernel", other.name()),
                    ))
                }
            };
            let mm = matmul::MatmulParams {
                m,
                n: hw,
                k,
                groups: self.groups,
                batches: n,
                b_strides: [c_in * hw, k * hw, hw, 1],
                c_strides: [self.c_out * hw, m * hw, hw, 1],
                activation: self.activation,
                form,
                warm_rows: false,
            }
            .planned(target);
            return mm.dispatches(label, y, x, w, b).map(|d| vec![d]);
        }
        let total = out.iter().product::<usize>();
        let u = |what: &str, v: usize| u32_of(label, what, v);
        // Layer facts both direct and implicit-GEMM kernels read, in their Params' order.
        let geometry = Geometry {
            n: u("batch", n)?,
            c_in: u("c_in", c_in)?,
            h: u("height", h)?,
            w: u("width", wd)?,
            c_out: u("c_out", self.c_out)?,
            ho: u("out height", out[2])?,
            wo: u("out width", out[3])?,
            groups: u("groups", self.groups)?,
            kh: u("kh", self.kernel[0])?,
            kw: u("kw", self.kernel[1])?,
            sh: u("sh", self.stride[0])?,
            sw: u("sw", self.stride[1])?,
            dh: u("dh", self.dilation[0])?,
            dw: u("dw", self.dilation[1])?,
            pt: u("pad top", self.padding[0])?,
            pl: u("pad left", self.padding[1])?,
        };
        if let Some(rows) = algorithm.tile_rows() {
            let m = self.c_out / self.groups;
            let n_pix = n * out[2] * out[3];
            let tiles_m = m.div_ceil(rows);
            let pixels_per_tile = if algorithm == ConvAlgorithm::Gemm8Row8 {
                8
            } else {
                4
            };
            let tiles = tiles_m * n_pix.div_ceil(pixels_per_tile);
            let params = GemmUniform {
                geometry,
                act: self.activation.code(),
                m: u("outputs per group", m)?,
                mp: u("outputs per group", tiles_m * rows)?,
                k: u("K", c_in / self.groups * self.kernel[0] * self.kernel[1])?,
                n: u("batch x pixels", n_pix)?,
                tiles_m: u("tiles", tiles_m)?,
                tiles: u("tiles", tiles)?,
                wx: 0,
            };
            if let Some(t) = TileShape::of(algorithm) {
                let pointwise = self.is_pointwise();
                let vec_b = pointwise && (out[2] * out[3]).is_multiple_of(4);
                return Ok(vec![Dispatch {
                    label: label.to_string(),
                    kernel: t.kernel,
                    constants: vec![
                        ("TM", t.tm as f64),
                        ("RT", t.rt as f64),
                        ("POINTWISE", f64::from(u8::from(pointwise))),
                        ("VEC_B", f64::from(u8::from(vec_b))),
                    ],
                    params: bytemuck::bytes_of(&params).to_vec(),
                    workgroups: [
                        u("pixel tiles", n_pix.div_ceil(t.pixels).min(65535))?,
                        u("channel tiles", m.div_ceil(t.channels))?,
                        u("groups", self.groups)?,
                    ],
                    output: y,
                    inputs: vec![x, w, b],
                    output_view: None,
                }]);
            }
            if let Some(ks) = algorithm.k_slices() {
                // 64 / ks tiles per workgroup, ks slices each.
                let [x_wg, y_wg, _] = grid(tiles.div_ceil(64 / ks) * 64);
                return Ok(vec![Dispatch {
                    label: label.to_string(),
                    kernel: &SPLIT_KERNEL,
                    constants: vec![("KS", ks as f64)],
                    params: bytemuck::bytes_of(&params).to_vec(),
                    workgroups: [x_wg, y_wg, u("groups", self.groups)?],
                    output: y,
                    inputs: vec![x, w, b],
                    output_view: None,
                }]);
            }
            if algorithm == ConvAlgorithm::Gemm8Row8Sg {
                // One 8-channel tile per workgroup row; pixel tiles are runs of 8 in a row (in
                // two rows with ROWS2). A last tile of 4 or fewer channels joins the one before
                // it in a launch of 12-channel tiles (WIDE); in groups of 4 or fewer outputs
                // (3 or 4 by the default rule, fewer where tuned or forced) the one launch
                // computes half tiles (HALF).
                // Row pairs halve the pixel tiles: not where that leaves fewer than 8 (a 7x7 map
                // at batch 1: 512 -> 512 3x3 9.7 ms with single rows, 15.6 with pairs on
                // lavapipe; 145 and 133 ms at batch 16).
                let rows2 = self.row_pairs() && n * out[2].div_ceil(2) * out[3].div_ceil(8) >= 8;
                let tiles_n = n * out[2].div_ceil(if rows2 { 2 } else { 1 }) * out[3].div_ceil(8);
                let short = (1..=4).contains(&(m % 8));
                let wide = short && m > 8;
                let half = short && !wide;
                let full = tiles_m - usize::from(half) - 2 * usize::from(wide);
                // Workgroup rows take (group, channel tile) pairs in order: rows = 64 / wx.
                let wx = target.subgroup_row(tiles_n);
                let rows = 64 / wx as usize;
                // Without row pairs, tiles of 16 channels where the layer's tiles pair up
                // (TALL): each kernel row's window, loaded once, feeds 16 channels. On lavapipe
                // GoogLeNet's 7x7 stride-2 stem 1.21x at batch 16, 1.23x at 1, a 7x7 map's 3x3
                // layer at batch 1 1.03x; with row pairs (256 accumulators per invocation) NIN's
                // first layer was 1.16x slower, so never with them.
                let tall = !short
                    && !rows2
                    && full.is_multiple_of(2)
                    && (self.row_windows() || self.row_windows2());
                let launch = |tiles_m: usize,
                              y_wg: usize,
                              half: bool,
                              wide: bool,
                              tall: bool|
                 -> Result<_> {
                    let params = GemmUniform {
                        wx,
                        tiles_m: u("tiles", tiles_m)?,
                        ..params
                    };
                    Ok(Dispatch {
                        label: label.to_string(),
                        kernel: &GEMM8_ROW8_SG_KERNEL,
                        constants: vec![
                            ("SUBGROUP", f64::from(subgroup.min(8))),
                            ("SX", f64::from(geometry.sw)),
                            ("HALF", f64::from(u8::from(half))),
                            ("WIDE", f64::from(u8::from(wide))),
                            ("TALL", f64::from(u8::from(tall))),
                            ("VEC_Y", f64::from(u8::from(out[3].is_multiple_of(4)))),
                            ("ROWS2", f64::from(u8::from(rows2))),
                        ]
                        .into_iter()
                        .chain(self.row_vectors(wd, true))
                        .collect(),
                        params: bytemuck::bytes_of(&params).to_vec(),
                        workgroups: [
                            u("pixel blocks", tiles_n.div_ceil(wx as usize).min(65535))?,
                            u("groups x tiles", y_wg)?,
                            1,
                        ],
                        output: y,
                        inputs: vec![x, w, b],
                        output_view: None,
                    })
                };
                let mut v = Vec::new();
                if full > 0 {
                    let per_row = if tall { full / 2 } else { full };
                    v.push(launch(
                        per_row,
                        (self.groups * per_row).div_ceil(rows),
                        false,
                        false,
                        tall,
                    )?);
                }
                if half || wide {
                    v.push(launch(
                        tiles_m,
                        self.groups.div_ceil(rows),
                        half,
                        wide,
                        false,
                    )?);
                }
                return Ok(v);
            }
            if subgroup > 0 {
                // One 8-channel tile per workgroup row, blocks of wx pixel tiles along x.
                let wx = target.subgroup_row(n_pix.div_ceil(4));
                let params = GemmUniform { wx, ..params };
                return Ok(vec![Dispatch {
                    label: label.to_string(),
                    kernel: &GEMM8_SG_KERNEL,
                    constants: vec![("SUBGROUP", f64::from(subgroup.min(8)))],
                    params: bytemuck::bytes_of(&params).to_vec(),
                    workgroups: [
                        u("pixel blocks", n_pix.div_ceil(4 * wx as usize).min(65535))?,
                        u(
                            "groups x tiles",
                            (self.groups * tiles_m).div_ceil(64 / wx as usize),
                        )?,
                        1,
                    ],
                    output: y,
                    inputs: vec![x, w, b],
                    output_view: None,
                }]);
            }
            let [x_wg, y_wg, _] = grid(tiles);
            return Ok(vec![Dispatch {
                label: label.to_string(),
                kernel: match algorithm {
                    ConvAlgorithm::Gemm8Row => &GEMM8_ROW_KERNEL,
                    ConvAlgorithm::Gemm8Row8 => &GEMM8_ROW8_KERNEL,
                    _ if rows == 8 => &GEMM8_KERNEL,
                    _ => &GEMM_KERNEL,
                },
                constants: vec![],
                params: bytemuck::bytes_of(&params).to_vec(),
                workgroups: [x_wg, y_wg, u("groups", self.groups)?],
                output: y,
                inputs: vec![x, w, b],
                output_view: None,
            }]);
        }
        let (kernel, total) = match algorithm {
            ConvAlgorithm::DirectRow => (&DIRECT_ROW_KERNEL, total / out[3] * out[3].div_ceil(4)),
            // Runs of 8 pixels; channel pairs per invocation (PAIR) for groups of 2 or 3
            // outputs, row pairs (ROWS2) where rows are read as 4-vectors with stride and
            // dilation 1 along y.
            ConvAlgorithm::DirectRow8 => {
                let planes = if self.pairs() {
                    self.groups * (self.c_out / self.groups).div_ceil(2)
                } else {
                    self.c_out
                };
                let rows = out[2].div_ceil(if self.row_pairs() { 2 } else { 1 });
                (
                    &DIRECT_ROW8_KERNEL,
                    out[0] * planes * rows * out[3].div_ceil(8),
                )
            }
            _ => (&KERNEL, total),
        };
        let params = ConvUniform {
            geometry,
            act: self.activation.code(),
            total: u("output size", total)?,
        };
        Ok(vec![Dispatch {
            label: label.to_string(),
            kernel,
            constants: if algorithm == ConvAlgorithm::DirectRow8 {
                vec![
                    ("SX", f64::from(geometry.sw)),
                    ("PAIR", f64::from(u8::from(self.pairs()))),
                    ("VEC_Y", f64::from(u8::from(out[3].is_multiple_of(4)))),
                    ("ROWS2", f64::from(u8::from(self.row_pairs()))),
                ]
                .into_iter()
                .chain(self.row_vectors(wd, false))
                .collect()
            } else {
                vec![]
            },
            params: bytemuck::bytes_of(&params).to_vec(),
            workgroups: grid(total),
            output: y,
            inputs: vec![x, w, b],
            output_view: None,
        }])
    }
}

/// How a shared-memory tile kernel (`conv2d_tile.wgsl`) is launched.
struct TileShape {
    kernel: &'static Kernel,
    /// Invocation rows (`RT`) and channels per invocation (`TM`) of `main`; `main_ks` reads
    /// its A rows as `main` does with 8 and 4.
    rt: usize,
    tm: usize,
    /// Output channels and pixels per workgroup.
    channels: usize,
    pixels: usize,
}

impl TileShape {
    fn of(algorithm: ConvAlgorithm) -> Option<Self> {
        let channels = algorithm.shared_tile()?;
        Some(match (algorithm, channels) {
            (ConvAlgorithm::Tile32K4, _) => Self {
                kernel: &TILE_KS_KERNEL,
                rt: 8,
                tm: 4,
                channels,
                pixels: 32,
            },
            (_, 128) => Self {
                kernel: &TILE_KERNEL,
                rt: 16,
                tm: 8,
                channels,
                pixels: 64,
            },
            // 256 / rt invocations of 4 pixels per row.
            _ => Self {
                kernel: &TILE_KERNEL,
                rt: channels / 4,
                tm: 4,
                channels,
                pixels: 4 * 256 / (channels / 4),
            },
        })
    }

    /// Workgroups for a layer with `groups` groups of `m` outputs and `n_pix` output pixels.
    fn workgroups(&self, groups: usize, m: usize, n_pix: usize) -> usize {
        groups * m.div_ceil(self.channels) * n_pix.div_ceil(self.pixels)
    }
}

/// The first sixteen fields of `Params` in shaders/conv2d.wgsl and shaders/conv2d_gemm.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Geometry {
    n: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    ho: u32,
    wo: u32,
    groups: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    dh: u32,
    dw: u32,
    pt: u32,
    pl: u32,
}

/// Mirrors `Params` in shaders/conv2d.wgsl, field for field.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ConvUniform {
    geometry: Geometry,
    act: u32,
    total: u32,
}

/// Mirrors `Params` in shaders/conv2d_gemm.wgsl, field for field.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GemmUniform {
    geometry: Geometry,
    act: u32,
    m: u32,
    mp: u32,
    k: u32,
    n: u32,
    tiles_m: u32,
    tiles: u32,
    /// Invocations per workgroup row of the subgroup kernels.
    wx: u32,
}

/// Checks weight and bias shapes against the params.
pub(crate) fn check_weights(p: &ConvParams, weight: &Tensor, bias: Option<&Tensor>) -> Result<()> {
    if weight.shape() != p.weight_shape() {
        return Err(invalid(
            "conv2d",
            format!(
                "weight has shape {:?}, expected {:?}",
                weight.shape(),
                p.weight_shape()
            ),
        ));
    }
    if let Some(b) = bias {
        if b.shape() != [p.c_out] {
            return Err(invalid(
                "conv2d",
                format!("bias has shape {:?}, expected [{}]", b.shape(), p.c_out),
            ));
        }
    }
    Ok(())
}

/// Runs one convolution on the GPU with the kernel it would run in a model (a missing bias is
/// zeros).
#[cfg(not(target_arch = "wasm32"))]
pub fn run(
    gpu: &Gpu,
    precision: Precision,
    p: &ConvParams,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    run_with(
        gpu,
        precision,
        p.algorithm(super::target(gpu)),
        p,
        x,
        weight,
        bias,
    )
}

/// Runs one convolution on the GPU with the given kernel.
#[cfg(not(target_arch = "wasm32"))]
pub fn run_with(
    gpu: &Gpu,
    precision: Precision,
    algorithm: ConvAlgorithm,
    p: &ConvParams,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    run_for(
        gpu,
        super::target(gpu),
        precision,
        algorithm,
        p,
        x,
        weight,
        bias,
    )
}

/// [`run_with`] launched as for `target` (e.g. a smaller subgroup than the device's, to test
/// every form of a kernel on one device).
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::too_many_arguments)]
pub fn run_for(
    gpu: &Gpu,
    target: Target,
    precision: Precision,
    algorithm: ConvAlgorithm,
    p: &ConvParams,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    check_weights(p, weight, bias)?;
    let out = p.out_dims(x.shape())?;
    let zeros = Tensor::zeros([p.c_out]);
    let b = bias.unwrap_or(&zeros);
    let d = p.dispatches(algorithm, "conv2d", x.shape(), [0, 1, 2, 3], target)?;
    let w = p.device_weight(algorithm, weight)?;
    super::run_single(gpu, precision, "conv2d", &[x, &w, b], &out, d)
}
