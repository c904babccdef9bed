//! The graph IR: typed nodes over named values, validated, topologically ordered, with shapes
//! inferred and costs counted. It knows nothing about the GPU.

pub mod builder;
pub mod json;

use crate::error::{graph_err, Error, Result};
use crate::ops::{
    add, concat,
    conv2d::ConvParams,
    flatten, global_avg_pool,
    linear::LinearParams,
    pool::{PoolKind, PoolParams},
    softmax, Activation,
};
use json::{RawGraph, RawInput, RawNode};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What a node computes, with the names of the tensors it reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Convolution; `weight` `[C_out, C_in/groups, kh, kw]`, optional `bias` `[C_out]`.
    Conv2d {
        /// Static facts.
        params: ConvParams,
        /// Weight tensor name.
        weight: String,
        /// Bias tensor name.
        bias: Option<String>,
    },
    /// Inference batch norm (folded into a conv before it at load where possible).
    BatchNorm {
        /// Added to the variance.
        eps: f64,
        /// Activation after the norm.
        activation: Activation,
        /// Tensor names: gamma, beta, mean, var.
        tensors: [String; 4],
    },
    /// Max or average pooling.
    Pool(PoolParams),
    /// Mean over H x W.
    GlobalAvgPool,
    /// Element-wise add of two inputs.
    Add {
        /// Activation after the add.
        activation: Activation,
    },
    /// Channel concatenation of its inputs.
    Concat,
    /// Fully connected; `weight` `[out, in]`, optional `bias` `[out]`.
    Linear {
        /// Static facts.
        params: LinearParams,
        /// Weight tensor name.
        weight: String,
        /// Bias tensor name.
        bias: Option<String>,
    },
    /// Softmax over channels.
    Softmax,
    /// `[N, ...]` to `[N, rest]`.
    Flatten,
}

impl Op {
    /// The op's name in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Conv2d { .. } => "conv2d",
            Op::BatchNorm { .. } => "batch_norm",
            Op::Pool(p) if p.kind == PoolKind::Max => "max_pool",
            Op::Pool(_) => "avg_pool",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::Add { .. } => "add",
            Op::Concat => "concat",
            Op::Linear { .. } => "linear",
            Op::Softmax => "softmax",
            Op::Flatten => "flatten",
        }
    }

    /// Tensor names this op reads.
    pub fn tensors(&self) -> Vec<&str> {
        match self {
            Op::Conv2d { weight, bias, .. } | Op::Linear { weight, bias, .. } => {
                std::iter::once(weight.as_str())
                    .chain(bias.as_deref())
                    .collect()
            }
            Op::BatchNorm { tensors, .. } => tensors.iter().map(String::as_str).collect(),
            _ => vec![],
        }
    }
}

/// A node: its name is also the name of the value it produces.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Node and output value name.
    pub name: String,
    /// What it computes.
    pub op: Op,
    /// Input value names.
    pub inputs: Vec<String>,
}

/// Multiply-adds and parameters of one node, per image.
///
/// Counted: conv and linear multiply-adds (`C_out * H_out * W_out * C_in/groups * kh * kw`,
/// `in * out`); parameters = conv and linear weights plus biases. Not counted: batch norm
/// (folded into the conv at inference), pooling, add, concat, softmax.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cost {
    /// Multiply-adds per image.
    pub multiply_adds: u64,
    /// Parameters.
    pub params: u64,
}

/// A validated graph: nodes in execution order and the per-image shape of every value.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// Model name.
    pub name: String,
    /// Graph inputs (shape without batch).
    pub inputs: Vec<RawInput>,
    /// Output value names.
    pub outputs: Vec<String>,
    /// Class names, index = class.
    pub labels: Vec<String>,
    /// Nodes in a valid execution order.
    pub nodes: Vec<Node>,
    /// Shape of every value for a batch of one (`[1, ...]`).
    shapes: HashMap<String, Vec<usize>>,
}

/// The most elements a tensor or a value (per image) may have. Larger ones are refused when the
/// graph is read, so no shape arithmetic can overflow: no device binds that much anyway.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// The largest integer attribute (kernel, stride, padding, dilation, groups).
pub const MAX_ATTRIBUTE: u64 = 1 << 24;

/// Elements of `shape`, or `None` past [`MAX_ELEMENTS`].
pub(crate) fn bounded_elements(shape: &[usize]) -> Option<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
}

fn attr_err(node: &str, key: &str, want: &str, got: &Value) -> Error {
    graph_err(node, format!("attribute '{key}' must be {want}, got {got}"))
}

struct Attrs<'a> {
    node: &'a str,
    map: &'a Map<String, Value>,
    used: HashSet<&'a str>,
}

impl<'a> Attrs<'a> {
    fn get(&mut self, key: &'a str) -> Option<&'a Value> {
        self.used.insert(key);
        self.map.get(key)
    }

    fn usizes<const N: usize>(
        &mut self,
        key: &'a str,
        default: Option<[usize; N]>,
    ) -> Result<[usize; N]> {
        let node = self.node;
        match self.get(key) {
            None => default.ok_or_else(|| graph_err(node, format!("missing attribute '{key}'"))),
            Some(v) => {
                let want = format!("a list of {N} integers from 0 to {MAX_ATTRIBUTE}");
                let list = v
                    .as_array()
                    .filter(|a| a.len() == N)
                    .ok_or_else(|| attr_err(node, key, &want, v))?;
                let mut out = [0; N];
                for (o, x) in out.iter_mut().zip(list) {
                    *o = x
                        .as_u64()
                        .filter(|&x| x <= MAX_ATTRIBUTE)
                        .ok_or_else(|| attr_err(node, key, &want, v))?
                        as usize;
                }
                Ok(out)
            }
        }
    }

    fn usize(&mut self, key: &'a str, default: usize) -> Result<usize> {
        let node = self.node;
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .filter(|&x| x <= MAX_ATTRIBUTE)
                .map(|x| x as usize)
                .ok_or_else(|| {
                    attr_err(
                        node,
                        key,
                        &format!("an integer from 0 to {MAX_ATTRIBUTE}"),
                        v,
                    )
                }),
        }
    }

    fn bool(&mut self, key: &'a str, default: bool) -> Result<bool> {
        let node = self.node;
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| attr_err(node, key, "true or false", v)),
        }
    }

    fn f64(&mut self, key: &'a str, default: f64) -> Result<f64> {
        let node = self.node;
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| attr_err(node, key, "a number", v)),
        }
    }

    fn activation(&mut self) -> Result<Activation> {
        let node = self.node;
        match self.get("activation") {
            None => Ok(Activation::None),
            Some(v) => v
                .as_str()
                .and_then(Activation::parse)
                .ok_or_else(|| attr_err(node, "activation", "one of none, relu, relu6", v)),
        }
    }

    fn finish(self) -> Result<()> {
        match self.map.keys().find(|k| !self.used.contains(k.as_str())) {
            Some(k) => Err(graph_err(self.node, format!("unknown attribute '{k}'"))),
            None => Ok(()),
        }
    }
}

fn tensor_shape<'a>(
    node: &str,
    name: &str,
    tensors: &'a HashMap<String, Vec<usize>>,
) -> Result<&'a [usize]> {
    let shape = tensors
        .get(name)
        .map(Vec::as_slice)
        .ok_or_else(|| graph_err(node, format!("tensor '{name}' is not in the file")))?;
    if bounded_elements(shape).is_none() {
        return Err(graph_err(
            node,
            format!("tensor '{name}' has shape {shape:?}, more than {MAX_ELEMENTS} elements"),
        ));
    }
    Ok(shape)
}

fn weight_names<const N: usize>(
    raw: &RawNode,
    required: [&str; N],
    optional: &[&str],
) -> Result<(Vec<String>, Vec<Option<String>>)> {
    for k in raw.weights.keys() {
        if !required.contains(&k.as_str()) && !optional.contains(&k.as_str()) {
            return Err(graph_err(
                &raw.name,
                format!("unknown weight role '{k}' for op {}", raw.op),
            ));
        }
    }
    let req = required
        .iter()
        .map(|r| {
            raw.weights
                .get(*r)
                .cloned()
                .ok_or_else(|| graph_err(&raw.name, format!("missing weight '{r}'")))
        })
        .collect::<Result<_>>()?;
    Ok((
        req,
        optional
            .iter()
            .map(|o| raw.weights.get(*o).cloned())
            .collect(),
    ))
}

fn parse_node(raw: &RawNode, tensors: &HashMap<String, Vec<usize>>) -> Result<Node> {
    let name = raw.name.as_str();
    let mut a = Attrs {
        node: name,
        map: &raw.attrs,
        used: HashSet::new(),
    };
    let arity = |want: usize| -> Result<()> {
        if raw.inputs.len() != want {
            return Err(graph_err(
                name,
                format!("{} takes {want} input(s), got {}", raw.op, raw.inputs.len()),
            ));
        }
        Ok(())
    };
    let no_weights = || -> Result<()> {
        match raw.weights.keys().next() {
            Some(k) => Err(graph_err(
                name,
                format!("{} takes no weights, got '{k}'", raw.op),
            )),
            None => Ok(()),
        }
    };
    let op = match raw.op.as_str() {
        "conv2d" => {
            arity(1)?;
            let (req, opt) = weight_names(raw, ["weight"], &["bias"])?;
            let ws = tensor_shape(name, &req[0], tensors)?;
            let &[c_out, c_in_g, kh, kw] = ws else {
                return Err(graph_err(
                    name,
                    format!(
                        "weight '{}' has shape {ws:?}, expected [C_out, C_in/groups, kh, kw]",
                        req[0]
                    ),
                ));
            };
            let kernel = a.usizes("kernel", None)?;
            if kernel != [kh, kw] {
                return Err(graph_err(
                    name,
                    format!("kernel {kernel:?} does not match weight shape {ws:?}"),
                ));
            }
            let groups = a.usize("groups", 1)?;
            let params = ConvParams {
                // Both factors are bounded (MAX_ELEMENTS, MAX_ATTRIBUTE): no overflow.
                c_in: c_in_g * groups,
                c_out,
                kernel,
                stride: a.usizes("stride", Some([1, 1]))?,
                dilation: a.usizes("dilation", Some([1, 1]))?,
                padding: a.usizes("padding", Some([0; 4]))?,
                groups,
                activation: a.activation()?,
            };
            if groups == 0 || c_out % groups != 0 {
                return Err(graph_err(
                    name,
                    format!("groups {groups} does not divide the {c_out} output channels"),
                ));
            }
            params
                .validate()
                .map_err(|e| graph_err(name, e.to_string()))?;
            if let Some(b) = &opt[0] {
                let bs = tensor_shape(name, b, tensors)?;
                if bs != [c_out] {
                    return Err(graph_err(
                        name,
                        format!("bias '{b}' has shape {bs:?}, expected [{c_out}]"),
                    ));
                }
            }
            Op::Conv2d {
                params,
                weight: req[0].clone(),
                bias: opt[0].clone(),
            }
        }
        "batch_norm" => {
            arity(1)?;
            let (req, _) = weight_names(raw, ["gamma", "beta", "mean", "var"], &[])?;
            let c = tensor_shape(name, &req[0], tensors)?.to_vec();
            for t in &req {
                let s = tensor_shape(name, t, tensors)?;
                if s.len() != 1 || s != c.as_slice() {
                    return Err(graph_err(name, format!("tensor '{t}' has shape {s:?}, expected one [C] shape shared by gamma, beta, mean and var")));
                }
            }
            Op::BatchNorm {
                eps: a.f64("eps", 1e-5)?,
                activation: a.activation()?,
                tensors: [
                    req[0].clone(),
                    req[1].clone(),
                    req[2].clone(),
                    req[3].clone(),
                ],
            }
        }
        "max_pool" | "avg_pool" => {
            arity(1)?;
            no_weights()?;
            let kernel = a.usizes("kernel", None)?;
            let kind = if raw.op == "max_pool" {
                PoolKind::Max
            } else {
                PoolKind::Avg {
                    count_include_pad: a.bool("count_include_pad", true)?,
                }
            };
            Op::Pool(PoolParams {
                kind,
                kernel,
                stride: a.usizes("stride", Some(kernel))?,
                padding: a.usizes("padding", Some([0; 4]))?,
                ceil_mode: a.bool("ceil_mode", false)?,
            })
        }
        "global_avg_pool" => {
            arity(1)?;
            no_weights()?;
            Op::GlobalAvgPool
        }
        "add" => {
            arity(2)?;
            no_weights()?;
            Op::Add {
                activation: a.activation()?,
            }
        }
        "concat" => {
            if raw.inputs.len() < 2 {
                return Err(graph_err(name, "concat takes 2 or more inputs"));
            }
            no_weights()?;
            Op::Concat
        }
        "linear" => {
            arity(1)?;
            let (req, opt) = weight_names(raw, ["weight"], &["bias"])?;
            let ws = tensor_shape(name, &req[0], tensors)?;
            let &[out, inp] = ws else {
                return Err(graph_err(
                    name,
                    format!("weight '{}' has shape {ws:?}, expected [out, in]", req[0]),
                ));
            };
            if let Some(b) = &opt[0] {
                let bs = tensor_shape(name, b, tensors)?;
                if bs != [out] {
                    return Err(graph_err(
                        name,
                        format!("bias '{b}' has shape {bs:?}, expected [{out}]"),
                    ));
                }
            }
            let params = LinearParams {
                in_features: inp,
                out_features: out,
                activation: a.activation()?,
            };
            Op::Linear {
                params,
                weight: req[0].clone(),
                bias: opt[0].clone(),
            }
        }
        "softmax" => {
            arity(1)?;
            no_weights()?;
            Op::Softmax
        }
        "flatten" => {
            arity(1)?;
            no_weights()?;
            Op::Flatten
        }
        other => return Err(graph_err(name, format!("unknown op '{other}'"))),
    };
    a.finish()?;
    Ok(Node {
        name: raw.name.clone(),
        op,
        inputs: raw.inputs.clone(),
    })
}

/// The output shape of `node` given its input shapes.
fn infer(node: &Node, ins: &[&[usize]]) -> Result<Vec<usize>> {
    let at = |e: Error| graph_err(&node.name, e.to_string());
    let out = match &node.op {
        Op::Conv2d { params, .. } => {
            if let Some(&c) = ins[0].get(1) {
                if c % params.groups != 0 {
                    return Err(graph_err(
                        &node.name,
                        format!(
                            "groups {} does not divide the {c} input channels",
                            params.groups
                        ),
                    ));
                }
            }
            params.out_dims(ins[0]).map_err(at)?.to_vec()
        }
        Op::BatchNorm { .. } => crate::ops::nchw(&node.name, ins[0]).map_err(at)?.to_vec(),
        Op::Pool(p) => p.out_dims(ins[0]).map_err(at)?.to_vec(),
        Op::GlobalAvgPool => global_avg_pool::out_dims(ins[0]).map_err(at)?.to_vec(),
        Op::Add { .. } => add::out_dims(ins[0], ins[1]).map_err(at)?,
        Op::Concat => concat::out_dims(ins).map_err(at)?.to_vec(),
        Op::Linear { params, .. } => params.out_dims(ins[0]).map_err(at)?.to_vec(),
        Op::Softmax => {
            softmax::split(ins[0]).map_err(at)?;
            ins[0].to_vec()
        }
        Op::Flatten => flatten::out_dims(ins[0]).map_err(at)?.to_vec(),
    };
    Ok(out)
}

impl Graph {
    /// Validates a raw graph against the shapes of the tensors in its file: op names, schema
    /// version, attributes, weight shapes, connectivity (no cycle, every input produced, every
    /// output existing) and shapes. Refusals name the node.
    pub fn from_raw(raw: &RawGraph, tensors: &HashMap<String, Vec<usize>>) -> Result<Self> {
        if raw.format != json::FORMAT {
            return Err(graph_err(
                "(graph)",
                format!("format is '{}', expected '{}'", raw.format, json::FORMAT),
            ));
        }
        if raw.version != json::VERSION {
            return Err(graph_err(
                "(graph)",
                format!(
                    "schema version {} is not supported (this build reads version {})",
                    raw.version,
                    json::VERSION
                ),
            ));
        }
        let mut shapes: HashMap<String, Vec<usize>> = HashMap::new();
        for i in &raw.inputs {
            if i.shape.is_empty() || i.shape.contains(&0) || bounded_elements(&i.shape).is_none() {
                return Err(graph_err(
                    &i.name,
                    format!(
                        "graph input has shape {:?}, expected non-zero dimensions and at most {MAX_ELEMENTS} elements",
                        i.shape
                    ),
                ));
            }
            if shapes
                .insert(i.name.clone(), [&[1][..], &i.shape].concat())
                .is_some()
            {
                return Err(graph_err(&i.name, "graph input named twice"));
            }
        }
        let mut pending: Vec<Node> = Vec::with_capacity(raw.nodes.len());
        let mut names = HashSet::new();
        for rn in &raw.nodes {
            if shapes.contains_key(&rn.name) || !names.insert(rn.name.clone()) {
                return Err(graph_err(&rn.name, "a value with this name already exists"));
            }
            pending.push(parse_node(rn, tensors)?);
        }
        for n in &pending {
            for i in &n.inputs {
                if !shapes.contains_key(i) && !names.contains(i) {
                    return Err(graph_err(
                        &n.name,
                        format!("input '{i}' is produced by nothing"),
                    ));
                }
            }
        }
        // Kahn's order, stable with respect to the file's order.
        let mut nodes = Vec::with_capacity(pending.len());
        while !pending.is_empty() {
            let ready = pending
                .iter()
                .position(|n| n.inputs.iter().all(|i| shapes.contains_key(i)));
            let Some(k) = ready else {
                let stuck: Vec<&str> = pending.iter().map(|n| n.name.as_str()).collect();
                return Err(graph_err(stuck[0], format!("cycle among nodes {stuck:?}")));
            };
            let n = pending.remove(k);
            let ins: Vec<&[usize]> = n.inputs.iter().map(|i| shapes[i].as_slice()).collect();
            let out = infer(&n, &ins)?;
            if bounded_elements(&out).is_none() {
                return Err(graph_err(
                    &n.name,
                    format!("output shape {out:?} has more than {MAX_ELEMENTS} elements"),
                ));
            }
            shapes.insert(n.name.clone(), out);
            nodes.push(n);
        }
        if raw.outputs.is_empty() {
            return Err(graph_err("(graph)", "no outputs"));
        }
        for o in &raw.outputs {
            if !shapes.contains_key(o) {
                return Err(graph_err(o, "graph output does not exist"));
            }
        }
        Ok(Self {
            name: raw.name.clone(),
            inputs: raw.inputs.clone(),
            outputs: raw.outputs.clone(),
            labels: raw.labels.clone(),
            nodes,
            shapes,
        })
    }

    /// This graph with every 1x1 convolution of stride > 1 and no padding split into a
    /// subsampling node (`<conv>_subsample`: a 1x1 average pool with the convolution's stride,
    /// which copies the pixels the convolution reads) and the same convolution with stride 1,
    /// which kernels for pointwise layers can run. The results are the same. `tensors`: the
    /// weight shapes, as for [`Graph::from_raw`].
    pub fn with_strided_pointwise_split(
        &self,
        tensors: &HashMap<String, Vec<usize>>,
    ) -> Result<Self> {
        let taken: HashSet<&str> = self
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .chain(self.inputs.iter().map(|i| i.name.as_str()))
            .collect();
        let mut nodes = Vec::with_capacity(self.nodes.len());
        // One subsample per (input, stride), shared by the convolutions that read it (as the two
        // branches of a ResNet downsampling block do).
        let mut subsamples: HashMap<(&str, [usize; 2]), String> = HashMap::new();
        for n in &self.nodes {
            let sub = format!("{}_subsample", n.name);
            match &n.op {
                Op::Conv2d {
                    params,
                    weight,
                    bias,
                } if params.kernel == [1, 1]
                    && params.padding == [0; 4]
                    && params.stride != [1, 1]
                    && !taken.contains(sub.as_str()) =>
                {
                    let conv = |input: String| Node {
                        name: n.name.clone(),
                        op: Op::Conv2d {
                            params: ConvParams {
                                stride: [1, 1],
                                ..params.clone()
                            },
                            weight: weight.clone(),
                            bias: bias.clone(),
                        },
                        inputs: vec![input],
                    };
                    let key = (n.inputs[0].as_str(), params.stride);
                    if let Some(shared) = subsamples.get(&key) {
                        nodes.push(conv(shared.clone()));
                        continue;
                    }
                    subsamples.insert(key, sub.clone());
                    nodes.push(Node {
                        name: sub.clone(),
                        op: Op::Pool(PoolParams {
                            kind: PoolKind::Avg {
                                count_include_pad: false,
                            },
                            kernel: [1, 1],
                            stride: params.stride,
                            padding: [0; 4],
                            ceil_mode: false,
                        }),
                        inputs: n.inputs.clone(),
                    });
                    nodes.push(conv(sub));
                }
                _ => nodes.push(n.clone()),
            }
        }
        if nodes.len() == self.nodes.len() {
            return Ok(self.clone());
        }
        Graph {
            nodes,
            ..self.clone()
        }
        .rebuild(tensors)
    }

    /// Rebuilds the graph after its nodes changed (shapes re-inferred).
    pub(crate) fn rebuild(&self, tensors: &HashMap<String, Vec<usize>>) -> Result<Self> {
        Self::from_raw(&self.to_raw(), tensors)
    }

    /// The graph in its file form.
    pub fn to_raw(&self) -> RawGraph {
        RawGraph {
            format: json::FORMAT.to_string(),
            version: json::VERSION,
            name: self.name.clone(),
            inputs: self.inputs.clone(),
            outputs: self.outputs.clone(),
            labels: self.labels.clone(),
            nodes: self.nodes.iter().map(node_to_raw).collect(),
        }
    }

    /// Shape of `value` for a batch of `batch`.
    pub fn shape(&self, value: &str, batch: usize) -> Option<Vec<usize>> {
        self.shapes.get(value).map(|s| {
            let mut s = s.clone();
            s[0] = batch;
            s
        })
    }

    /// Elements of `value` per image.
    pub fn elements_per_image(&self, value: &str) -> usize {
        self.shapes.get(value).map_or(0, |s| s.iter().product())
    }

    /// The cost of one node per image (see [`Cost`] for what is counted).
    pub fn cost(&self, node: &Node) -> Cost {
        let out = self.shapes.get(&node.name).cloned().unwrap_or_default();
        match &node.op {
            Op::Conv2d { params, bias, .. } => Cost {
                multiply_adds: <[usize; 4]>::try_from(out.as_slice())
                    .map_or(0, |o| params.multiply_adds(o)),
                params: params.params(bias.is_some()),
            },
            Op::Linear { params, bias, .. } => Cost {
                multiply_adds: params.multiply_adds(),
                params: params.multiply_adds()
                    + if bias.is_some() {
                        params.out_features as u64
                    } else {
                        0
                    },
            },
            _ => Cost::default(),
        }
    }

    /// Total multiply-adds and parameters per image.
    pub fn total_cost(&self) -> Cost {
        self.nodes
            .iter()
            .map(|n| self.cost(n))
            .fold(Cost::default(), |a, c| Cost {
                multiply_adds: a.multiply_adds.saturating_add(c.multiply_adds),
                params: a.params.saturating_add(c.params),
            })
    }

    /// Nodes reading `value`.
    pub fn consumers<'a>(&'a self, value: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.nodes
            .iter()
            .filter(move |n| n.inputs.iter().any(|i| i == value))
    }
}

fn act_name(a: Activation) -> &'static str {
    match a {
        Activation::None => "none",
        Activation::Relu => "relu",
        Activation::Relu6 => "relu6",
    }
}

fn node_to_raw(n: &Node) -> RawNode {
    let mut attrs = Map::new();
    let mut weights = BTreeMap::new();
    match &n.op {
        Op::Conv2d {
            params: p,
            weight,
            bias,
        } => {
            attrs.insert("kernel".into(), json!(p.kernel));
            attrs.insert("stride".into(), json!(p.stride));
            attrs.insert("padding".into(), json!(p.padding));
            attrs.insert("dilation".into(), json!(p.dilation));
            attrs.insert("groups".into(), json!(p.groups));
            attrs.insert("activation".into(), json!(act_name(p.activation)));
            weights.insert("weight".into(), weight.clone());
            if let Some(b) = bias {
                weights.insert("bias".into(), b.clone());
            }
        }
        Op::BatchNorm {
            eps,
            activation,
            tensors,
        } => {
            attrs.insert("eps".into(), json!(eps));
            attrs.insert("activation".into(), json!(act_name(*activation)));
            for (role, t) in ["gamma", "beta", "mean", "var"].iter().zip(tensors) {
                weights.insert(role.to_string(), t.clone());
            }
        }
        Op::Pool(p) => {
            attrs.insert("kernel".into(), json!(p.kernel));
            attrs.insert("stride".into(), json!(p.stride));
            attrs.insert("padding".into(), json!(p.padding));
            attrs.insert("ceil_mode".into(), json!(p.ceil_mode));
            if let PoolKind::Avg { count_include_pad } = p.kind {
                attrs.insert("count_include_pad".into(), json!(count_include_pad));
            }
        }
        Op::Add { activation } => {
            attrs.insert("activation".into(), json!(act_name(*activation)));
        }
        Op::Linear {
            params,
            weight,
            bias,
        } => {
            attrs.insert("activation".into(), json!(act_name(params.activation)));
            weights.insert("weight".into(), weight.clone());
            if let Some(b) = bias {
                weights.insert("bias".into(), b.clone());
            }
        }
        Op::GlobalAvgPool | Op::Concat | Op::Softmax | Op::Flatten => {}
    }
    RawNode {
        name: n.name.clone(),
        op: n.op.kind().to_string(),
        inputs: n.inputs.clone(),
        attrs,
        weights,
    }
}

/// One row of a graph's per-layer report (`deeproots inspect`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerRow {
    /// Node name.
    pub name: String,
    /// Op name.
    pub op: String,
    /// Input value names.
    pub inputs: Vec<String>,
    /// Output shape for one image.
    pub output_shape: Vec<usize>,
    /// Kernel `[kh, kw]` for convs and pools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<[usize; 2]>,
    /// Stride for convs and pools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stride: Option<[usize; 2]>,
    /// Filter groups for convs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<usize>,
    /// Multiply-adds per image.
    pub multiply_adds: u64,
    /// Parameters.
    pub params: u64,
}

impl Graph {
    /// The per-layer report, in execution order.
    pub fn layer_rows(&self) -> Vec<LayerRow> {
        self.nodes
            .iter()
            .map(|n| {
                let cost = self.cost(n);
                let (kernel, stride, groups) = match &n.op {
                    Op::Conv2d { params, .. } => (
                        Some(params.kernel),
                        Some(params.stride),
                        Some(params.groups),
                    ),
                    Op::Pool(p) => (Some(p.kernel), Some(p.stride), None),
                    _ => (None, None, None),
                };
                LayerRow {
                    name: n.name.clone(),
                    op: n.op.kind().to_string(),
                    inputs: n.inputs.clone(),
                    output_shape: self.shape(&n.name, 1).unwrap_or_default(),
                    kernel,
                    stride,
                    groups,
                    multiply_adds: cost.multiply_adds,
                    params: cost.params,
                }
            })
            .collect()
    }
}
