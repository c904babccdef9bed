//! The graph's JSON form, schema version 1 (docs/FORMAT.md): raw serde structs, and the
//! conversion between them and the typed [`Graph`](super::Graph).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The schema version this crate reads and writes.
pub const VERSION: u32 = 1;
/// The value of the `format` field.
pub const FORMAT: &str = "deeproots-graph";
/// The safetensors metadata key holding the graph.
pub const METADATA_KEY: &str = "deeproots.graph";

/// A graph as written in the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGraph {
    /// Always `deeproots-graph`.
    pub format: String,
    /// Schema version.
    pub version: u32,
    /// Model name.
    #[serde(default)]
    pub name: String,
    /// Graph inputs.
    pub inputs: Vec<RawInput>,
    /// Output value names.
    pub outputs: Vec<String>,
    /// Class names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Nodes, in any order.
    pub nodes: Vec<RawNode>,
}

/// A graph input as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    /// Value name.
    pub name: String,
    /// Shape without the batch dimension.
    pub shape: Vec<usize>,
    /// How an image becomes this input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocess: Option<Preprocess>,
}

/// How an image's pixels (0..255) become the model's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// `gray`, `rgb` or `bgr`.
    pub color: String,
    /// Subtracted per channel, in pixel units.
    pub mean: Vec<f32>,
    /// Divided by per channel, in pixel units.
    pub std: Vec<f32>,
    /// Shorter side resized to this many pixels first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<u32>,
    /// Centre square of this size taken after resizing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop: Option<u32>,
}

/// A node as written in the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    /// Node name = name of the value it produces.
    pub name: String,
    /// Op name.
    pub op: String,
    /// Input value names.
    pub inputs: Vec<String>,
    /// Op attributes.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attrs: Map<String, Value>,
    /// Weight role -> tensor name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<String, String>,
}
