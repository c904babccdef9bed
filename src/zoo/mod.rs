//! The model zoo: the paper's architectures and their root, tree and column variants, built
//! with deterministic He-normal weights for timing (trained weights come from model files).
//!
//! Names: `nin`, `nin-root-8`, `nin-tree-4`, `nin-col-16`, `nin28-root-8` (NIN on 1x28x28),
//! `resnet50`, `resnet50-root-64`, `resnet200-root-32`, `googlenet`, `googlenet-root-16`, ...
//! The grouping rules are those of ../shared/reference/deep-roots-tables.md, quoted in each
//! builder. A single convolution can be named by its shape (`conv-192x32x32-160-k1`, see
//! [`LayerSpec`]) wherever a zoo name is taken, to time or tune one layer alone.

mod googlenet;
mod layer;
mod nin;
mod resnet;

pub use layer::LayerSpec;

use crate::error::{invalid, Result};
use crate::graph::builder::GraphBuilder;
use crate::graph::Cost;
use crate::Model;

/// A zoo architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// NIN for CIFAR-10, 3x32x32.
    Nin,
    /// NIN for Fashion-MNIST, 1x28x28.
    Nin28,
    /// ResNet-50 (bottleneck v1), 3x224x224.
    ResNet50,
    /// ResNet-200 (bottleneck v1), 3x224x224.
    ResNet200,
    /// GoogLeNet (Inception v1 with batch norm, no auxiliary heads), 3x224x224.
    GoogLeNet,
}

impl Arch {
    /// The name prefix (`nin`, `nin28`, `resnet50`, `resnet200`, `googlenet`).
    pub fn name(self) -> &'static str {
        match self {
            Arch::Nin => "nin",
            Arch::Nin28 => "nin28",
            Arch::ResNet50 => "resnet50",
            Arch::ResNet200 => "resnet200",
            Arch::GoogLeNet => "googlenet",
        }
    }

    /// Parses a name prefix.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Arch::Nin,
            Arch::Nin28,
            Arch::ResNet50,
            Arch::ResNet200,
            Arch::GoogLeNet,
        ]
        .into_iter()
        .find(|a| a.name() == s)
    }

    /// The variants the zoo offers for this architecture, baseline first.
    pub fn variants(self) -> Vec<Variant> {
        let gs: &[usize] = match self {
            Arch::Nin | Arch::Nin28 | Arch::GoogLeNet => &[2, 4, 8, 16],
            Arch::ResNet50 | Arch::ResNet200 => &[2, 4, 8, 16, 32, 64],
        };
        let mut v = vec![Variant::Orig];
        v.extend(gs.iter().map(|&g| Variant::Root(g)));
        if matches!(self, Arch::Nin | Arch::Nin28) {
            v.extend(gs.iter().map(|&g| Variant::Tree(g)));
            v.extend(gs.iter().map(|&g| Variant::Column(g)));
        }
        v
    }

    /// Default input side (CIFAR 32, Fashion-MNIST 28, ImageNet 224).
    pub fn input_size(self) -> usize {
        match self {
            Arch::Nin => 32,
            Arch::Nin28 => 28,
            _ => 224,
        }
    }
}

/// How the spatial convolutions are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Ungrouped baseline.
    Orig,
    /// Root-g: groups fall with depth.
    Root(usize),
    /// Tree-g: groups rise with depth (NIN only).
    Tree(usize),
    /// Column-g: the same groups throughout (NIN only).
    Column(usize),
}

impl Variant {
    /// `orig`, `root-8`, `tree-4`, `col-16`.
    pub fn name(self) -> String {
        match self {
            Variant::Orig => "orig".into(),
            Variant::Root(g) => format!("root-{g}"),
            Variant::Tree(g) => format!("tree-{g}"),
            Variant::Column(g) => format!("col-{g}"),
        }
    }

    /// The root-g group count the ImageNet builders scale per stage (1 for other variants).
    pub(crate) fn root_groups(self) -> usize {
        match self {
            Variant::Root(g) => g,
            _ => 1,
        }
    }

    /// Parses `orig`, `root-g`, `tree-g`, `col-g`.
    pub fn parse(s: &str) -> Option<Self> {
        if s == "orig" {
            return Some(Variant::Orig);
        }
        let (kind, g) = s.split_once('-')?;
        let g: usize = g.parse().ok().filter(|&g| g > 0)?;
        match kind {
            "root" => Some(Variant::Root(g)),
            "tree" => Some(Variant::Tree(g)),
            "col" | "column" => Some(Variant::Column(g)),
            _ => None,
        }
    }
}

/// torchvision's ImageNet input: RGB, shorter side 256, centre 224, per-channel mean and std.
fn imagenet_preprocess() -> crate::graph::json::Preprocess {
    crate::graph::json::Preprocess {
        color: "rgb".into(),
        mean: vec![123.675, 116.28, 103.53],
        std: vec![58.395, 57.12, 57.375],
        resize: Some(256),
        crop: Some(224),
    }
}

/// The zoo name of an architecture and variant (`nin`, `nin-root-8`).
pub fn model_name(arch: Arch, variant: Variant) -> String {
    match variant {
        Variant::Orig => arch.name().to_string(),
        v => format!("{}-{}", arch.name(), v.name()),
    }
}

/// Splits a zoo name into architecture and variant.
pub fn parse_name(name: &str) -> Result<(Arch, Variant)> {
    let unknown = || {
        invalid(
            "zoo",
            format!("unknown model '{name}' (see `deeproots zoo list`)"),
        )
    };
    let (arch, variant) = match name.split_once('-') {
        None => (Arch::parse(name).ok_or_else(unknown)?, Variant::Orig),
        Some((a, v)) => (
            Arch::parse(a).ok_or_else(unknown)?,
            Variant::parse(v).ok_or_else(unknown)?,
        ),
    };
    if !arch.variants().contains(&variant) {
        return Err(unknown());
    }
    Ok((arch, variant))
}

/// Every zoo model name.
pub fn names() -> Vec<String> {
    [
        Arch::Nin,
        Arch::Nin28,
        Arch::ResNet50,
        Arch::ResNet200,
        Arch::GoogLeNet,
    ]
    .into_iter()
    .flat_map(|a| a.variants().into_iter().map(move |v| model_name(a, v)))
    .collect()
}

/// Builds a zoo model at its native input size, weights He-normal from `seed`, batch norms
/// not yet folded (as a trained model's file would have them).
pub fn build(name: &str, seed: u64) -> Result<Model> {
    make(name, Some(seed), None, false)
}

/// Builds a zoo model for a square input of side `size` (the channel and group structure are
/// unchanged; smaller inputs make the CPU reference affordable in tests). A layer name keeps
/// the input size it names.
pub fn build_at(name: &str, seed: u64, size: usize) -> Result<Model> {
    make(name, Some(seed), Some(size), false)
}

/// GoogLeNet with its two auxiliary training heads as extra outputs: the network the
/// published GoogLeNet figures describe.
pub fn build_googlenet_with_aux_heads(name: &str, seed: u64) -> Result<Model> {
    match parse_name(name)? {
        (Arch::GoogLeNet, _) => make(name, Some(seed), Some(224), true),
        _ => Err(invalid("zoo", format!("'{name}' is not a GoogLeNet"))),
    }
}

/// Multiply-adds and parameters per image of a zoo model as it runs (batch norms folded),
/// without drawing weights.
pub fn cost(name: &str) -> Result<Cost> {
    Ok(make(name, None, None, false)?
        .fold_batch_norms()?
        .graph
        .total_cost())
}

/// `seed: None` builds with zero weights (costs only). `size`: the input's side, `None` for the
/// architecture's own (a layer name keeps the size it names).
fn make(name: &str, seed: Option<u64>, size: Option<usize>, aux: bool) -> Result<Model> {
    let mut b = GraphBuilder::new(name, seed.unwrap_or(0));
    if seed.is_none() {
        b = b.with_zero_weights();
    }
    if let Some(spec) = LayerSpec::parse(name) {
        // The builder's error names the node ("conv"); say which layer it was.
        return spec?
            .build(b)
            .map_err(|e| invalid(name, format!("cannot build the layer: {e}")));
    }
    let (arch, variant) = parse_name(name)?;
    let size = size.unwrap_or(arch.input_size());
    match arch {
        Arch::Nin => nin::build(b, 3, size, variant),
        Arch::Nin28 => nin::build(b, 1, size, variant),
        Arch::ResNet50 => resnet::build(b, &[3, 4, 6, 3], size, variant),
        Arch::ResNet200 => resnet::build(b, &[3, 24, 36, 3], size, variant),
        Arch::GoogLeNet => googlenet::build(b, size, variant, aux),
    }
}
