//! The model file: one safetensors file holding the weights, with the graph as JSON in the
//! header's `__metadata__` under `deeproots.graph` (docs/FORMAT.md).

use crate::error::{graph_err, Error, Result};
use crate::graph::json::{RawGraph, METADATA_KEY};
use crate::graph::{Graph, Op};
use crate::ops::batch_norm::BatchNorm;
use crate::ops::Activation;
use crate::Tensor;
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// How weights are stored in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightDtype {
    /// 32-bit floats.
    #[default]
    F32,
    /// 16-bit floats (half the size).
    F16,
}

/// A graph and its weights, on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The validated graph.
    pub graph: Graph,
    /// Weights by tensor name, as f32.
    pub weights: BTreeMap<String, Tensor>,
}

/// The shape of every tensor, by name (what [`Graph::from_raw`] checks the graph against).
fn tensor_shapes(weights: &BTreeMap<String, Tensor>) -> HashMap<String, Vec<usize>> {
    weights
        .iter()
        .map(|(k, t)| (k.clone(), t.shape().to_vec()))
        .collect()
}

impl Model {
    /// The shape of every weight tensor, by name.
    pub fn tensor_shapes(&self) -> HashMap<String, Vec<usize>> {
        tensor_shapes(&self.weights)
    }

    /// Reads a model file and folds its batch norms into the convolutions before them.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| Error::ModelFile(format!("{}: {e}", path.display())))?;
        Self::from_bytes(&bytes)?.fold_batch_norms()
    }

    /// Parses a model file exactly as written (batch norms not folded).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::ModelFile(format!("not a valid safetensors file: {e}")))?;
        let (_, meta) =
            SafeTensors::read_metadata(bytes).map_err(|e| Error::ModelFile(e.to_string()))?;
        let json = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get(METADATA_KEY))
            .ok_or_else(|| {
                Error::ModelFile(format!(
                    "no graph: the header's __metadata__ has no '{METADATA_KEY}' key"
                ))
            })?;
        let raw: RawGraph =
            serde_json::from_str(json).map_err(|e| Error::ModelFile(format!("graph JSON: {e}")))?;
        let mut weights = BTreeMap::new();
        for (name, view) in st.iter() {
            weights.insert(name.to_string(), decode(name, &view)?);
        }
        Self::new(&raw, weights)
    }

    /// Builds a model from a raw graph and weights, checking that every tensor is used and
    /// every node's tensors exist with the right shapes.
    pub fn new(raw: &RawGraph, weights: BTreeMap<String, Tensor>) -> Result<Self> {
        let graph = Graph::from_raw(raw, &tensor_shapes(&weights))?;
        let used: std::collections::HashSet<&str> =
            graph.nodes.iter().flat_map(|n| n.op.tensors()).collect();
        if let Some(unused) = weights.keys().find(|k| !used.contains(k.as_str())) {
            return Err(graph_err(
                "(graph)",
                format!("tensor '{unused}' is in the file but no node uses it"),
            ));
        }
        Ok(Self { graph, weights })
    }

    /// The model file's bytes, weights stored as `dtype`.
    pub fn to_bytes(&self, dtype: WeightDtype) -> Result<Vec<u8>> {
        let json = serde_json::to_string(&self.graph.to_raw())
            .map_err(|e| Error::ModelFile(e.to_string()))?;
        let data: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = self
            .weights
            .iter()
            .map(|(k, t)| {
                let (dt, bytes) = match dtype {
                    WeightDtype::F32 => (
                        Dtype::F32,
                        t.data().iter().flat_map(|v| v.to_le_bytes()).collect(),
                    ),
                    WeightDtype::F16 => (
                        Dtype::F16,
                        t.data()
                            .iter()
                            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                            .collect(),
                    ),
                };
                (k.clone(), dt, t.shape().to_vec(), bytes)
            })
            .collect();
        let views = data
            .iter()
            .map(|(k, dt, s, b)| TensorView::new(*dt, s.clone(), b).map(|v| (k.clone(), v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::ModelFile(e.to_string()))?;
        let meta = HashMap::from([(METADATA_KEY.to_string(), json)]);
        safetensors::serialize(views, Some(meta)).map_err(|e| Error::ModelFile(e.to_string()))
    }

    /// Writes the model file.
    pub fn save(&self, path: impl AsRef<Path>, dtype: WeightDtype) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_bytes(dtype)?)
            .map_err(|e| Error::ModelFile(format!("{}: {e}", path.display())))
    }

    /// Folds every batch norm whose input is a conv with no activation, read by nothing else
    /// and not a graph output, into that conv's weight and bias; the norm's activation moves to
    /// the conv. Other batch norms stay and run as their own kernel.
    pub fn fold_batch_norms(mut self) -> Result<Self> {
        let mut i = 0;
        while i < self.graph.nodes.len() {
            let bn = &self.graph.nodes[i];
            let Op::BatchNorm {
                eps,
                activation,
                tensors,
            } = &bn.op
            else {
                i += 1;
                continue;
            };
            let src = &bn.inputs[0];
            let foldable = self.graph.consumers(src).count() == 1
                && !self.graph.outputs.contains(src)
                && self.graph.nodes.iter().any(|n| &n.name == src && matches!(&n.op, Op::Conv2d { params, .. } if params.activation == Activation::None));
            if !foldable {
                i += 1;
                continue;
            }
            let (eps, activation, tensors, bn_name, src) = (
                *eps,
                *activation,
                tensors.clone(),
                bn.name.clone(),
                src.clone(),
            );
            let get = |k: &str| {
                self.weights
                    .get(k)
                    .map(|t| t.data().to_vec())
                    .ok_or_else(|| graph_err(&bn_name, format!("tensor '{k}' missing")))
            };
            let norm = BatchNorm {
                gamma: get(&tensors[0])?,
                beta: get(&tensors[1])?,
                mean: get(&tensors[2])?,
                var: get(&tensors[3])?,
                eps,
            };
            let ci = self
                .graph
                .nodes
                .iter()
                .position(|n| n.name == src)
                .ok_or_else(|| graph_err(&src, "vanished"))?;
            let uses = |graph: &Graph, t: &str| {
                graph
                    .nodes
                    .iter()
                    .flat_map(|n| n.op.tensors())
                    .filter(|u| *u == t)
                    .count()
            };
            let Op::Conv2d {
                params,
                weight,
                bias,
            } = &self.graph.nodes[ci].op
            else {
                return Err(graph_err(&src, "expected a conv"));
            };
            let (w, b) = norm
                .fold_into_conv(
                    params,
                    &self.weights[weight.as_str()],
                    bias.as_ref().map(|b| &self.weights[b.as_str()]),
                )
                .map_err(|e| graph_err(&bn_name, e.to_string()))?;
            // A tensor shared with another node keeps its values; the folded one gets a new name.
            let weight_name = if uses(&self.graph, weight) > 1 {
                format!("{bn_name}.folded_weight")
            } else {
                weight.clone()
            };
            let bias_name = match bias {
                Some(b) if uses(&self.graph, b) == 1 => b.clone(),
                _ => format!("{bn_name}.folded_bias"),
            };
            self.weights.insert(weight_name.clone(), w);
            self.weights.insert(bias_name.clone(), b);
            if let Op::Conv2d {
                params,
                weight,
                bias,
            } = &mut self.graph.nodes[ci].op
            {
                params.activation = activation;
                *weight = weight_name;
                *bias = Some(bias_name);
            }
            // The conv now produces what the norm produced: rename it and drop the norm.
            self.graph.nodes[ci].name = bn_name.clone();
            self.graph.nodes.remove(i);
        }
        let used: std::collections::HashSet<String> = self
            .graph
            .nodes
            .iter()
            .flat_map(|n| n.op.tensors())
            .map(String::from)
            .collect();
        self.weights.retain(|k, _| used.contains(k));
        self.graph = self.graph.rebuild(&self.tensor_shapes())?;
        Ok(self)
    }
}

/// Reads the tensor `name` (F32 or F16) from the bytes of a safetensors file.
pub fn read_tensor(file: &[u8], name: &str) -> Result<Tensor> {
    let st = SafeTensors::deserialize(file)
        .map_err(|e| Error::ModelFile(format!("not a valid safetensors file: {e}")))?;
    let view = st
        .tensor(name)
        .map_err(|_| Error::ModelFile(format!("no tensor named '{name}'")))?;
    decode(name, &view)
}

fn decode(name: &str, view: &TensorView<'_>) -> Result<Tensor> {
    let data: Vec<f32> = match view.dtype() {
        Dtype::F32 => view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => view
            .data()
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => {
            return Err(Error::ModelFile(format!(
                "tensor '{name}' has dtype {other:?}, expected F32 or F16"
            )))
        }
    };
    Tensor::new(view.shape().to_vec(), data)
        .map_err(|e| Error::ModelFile(format!("tensor '{name}': {e}")))
}
