//! Builds models in code: nodes are appended with shapes tracked as they go, and weights are
//! drawn He-normal from a seed (for timing and tests; trained weights come from files).

use super::json::{Preprocess, RawGraph, RawInput, RawNode, FORMAT, VERSION};
use crate::error::{invalid, Result};
use crate::model::Model;
use crate::ops::conv2d::ConvParams;
use crate::ops::pool::{PoolKind, PoolParams};
use crate::ops::{nchw, Activation};
use crate::Tensor;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Appends nodes to a graph under construction.
pub struct GraphBuilder {
    raw: RawGraph,
    weights: BTreeMap<String, Tensor>,
    shapes: HashMap<String, Vec<usize>>,
    rng: SmallRng,
    zero_weights: bool,
}

/// A convolution to add: the layer's facts without its input channels.
#[derive(Debug, Clone)]
pub struct Conv {
    /// Output channels.
    pub c_out: usize,
    /// Kernel `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride.
    pub stride: [usize; 2],
    /// Padding `[top, left, bottom, right]`.
    pub padding: [usize; 4],
    /// Dilation.
    pub dilation: [usize; 2],
    /// Filter groups.
    pub groups: usize,
    /// Activation (after the batch norm when there is one).
    pub activation: Activation,
    /// Follow the conv with a batch norm node.
    pub batch_norm: bool,
    /// Give the conv a bias.
    pub bias: bool,
}

impl Conv {
    /// A square `k x k` conv with "same" padding for odd k, stride 1, one group, bias, no
    /// batch norm, ReLU.
    pub fn new(c_out: usize, k: usize) -> Self {
        Self {
            c_out,
            kernel: [k, k],
            stride: [1, 1],
            padding: [k / 2; 4],
            dilation: [1, 1],
            groups: 1,
            activation: Activation::Relu,
            batch_norm: false,
            bias: true,
        }
    }

    /// With `g` filter groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }

    /// With stride `s` in both directions.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = [s, s];
        self
    }

    /// With padding `p` on every side.
    pub fn pad(mut self, p: usize) -> Self {
        self.padding = [p; 4];
        self
    }

    /// With this activation.
    pub fn act(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }

    /// With a batch norm after the conv (the activation moves after the norm).
    pub fn bn(mut self) -> Self {
        self.batch_norm = true;
        self
    }

    /// Without a bias.
    pub fn no_bias(mut self) -> Self {
        self.bias = false;
        self
    }
}

fn act(a: Activation) -> Value {
    json!(match a {
        Activation::None => "none",
        Activation::Relu => "relu",
        Activation::Relu6 => "relu6",
    })
}

impl GraphBuilder {
    /// A new graph named `name` whose weights are drawn from `seed`.
    pub fn new(name: &str, seed: u64) -> Self {
        Self {
            raw: RawGraph {
                format: FORMAT.into(),
                version: VERSION,
                name: name.into(),
                inputs: vec![],
                outputs: vec![],
                labels: vec![],
                nodes: vec![],
            },
            weights: BTreeMap::new(),
            shapes: HashMap::new(),
            rng: SmallRng::seed_from_u64(seed),
            zero_weights: false,
        }
    }

    /// Fills every weight with zeros instead of drawing it: for counting costs quickly.
    pub fn with_zero_weights(mut self) -> Self {
        self.zero_weights = true;
        self
    }

    /// Adds a graph input of shape `[C, H, W]` (without batch).
    pub fn input(&mut self, name: &str, shape: &[usize], preprocess: Option<Preprocess>) -> String {
        self.raw.inputs.push(RawInput {
            name: name.into(),
            shape: shape.to_vec(),
            preprocess,
        });
        self.shapes.insert(name.into(), [&[1][..], shape].concat());
        name.into()
    }

    /// Sets the class names.
    pub fn labels(&mut self, labels: Vec<String>) {
        self.raw.labels = labels;
    }

    /// Shape of a value for a batch of one.
    pub fn shape(&self, value: &str) -> Result<&[usize]> {
        self.shapes
            .get(value)
            .map(Vec::as_slice)
            .ok_or_else(|| invalid(value, "no such value"))
    }

    fn normal(&mut self, n: usize, std: f64) -> Vec<f32> {
        if self.zero_weights {
            return vec![0.0; n];
        }
        // Box-Muller: two uniforms give one standard normal.
        (0..n)
            .map(|_| {
                let u1: f64 = self.rng.random_range(f64::EPSILON..1.0);
                let u2: f64 = self.rng.random_range(0.0..1.0);
                ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * std) as f32
            })
            .collect()
    }

    fn uniform(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        if self.zero_weights {
            return vec![0.0; n];
        }
        (0..n).map(|_| self.rng.random_range(lo..hi)).collect()
    }

    fn push(
        &mut self,
        name: &str,
        op: &str,
        inputs: &[&str],
        attrs: Map<String, Value>,
        weights: &[(&str, String)],
        shape: Vec<usize>,
    ) -> String {
        self.raw.nodes.push(RawNode {
            name: name.into(),
            op: op.into(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            attrs,
            weights: weights
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        });
        self.shapes.insert(name.into(), shape);
        name.into()
    }

    fn tensor(&mut self, name: String, shape: Vec<usize>, data: Vec<f32>) -> Result<String> {
        self.weights.insert(name.clone(), Tensor::new(shape, data)?);
        Ok(name)
    }

    /// Adds a conv (and its batch norm, named `<name>_bn`); returns the output value.
    /// Sizes past the bounds a graph file is held to ([`super::MAX_ELEMENTS`],
    /// [`super::MAX_ATTRIBUTE`]) are refused before any weight is drawn.
    pub fn conv(&mut self, name: &str, input: &str, c: &Conv) -> Result<String> {
        let in_shape = self.shape(input)?;
        let [_, c_in, _, _] = nchw(name, in_shape)?;
        let mut attributes = [c.kernel, c.stride, c.dilation, [c.groups, c.c_out]]
            .into_iter()
            .flatten()
            .chain(c.padding);
        if attributes.any(|v| v as u64 > super::MAX_ATTRIBUTE) {
            return Err(invalid(
                name,
                format!(
                    "kernel, stride, padding, dilation, groups and output channels must be at most {}",
                    super::MAX_ATTRIBUTE
                ),
            ));
        }
        if super::bounded_elements(in_shape).is_none() {
            return Err(invalid(
                name,
                format!("input has more than {} elements", super::MAX_ELEMENTS),
            ));
        }
        let p = ConvParams {
            c_in,
            c_out: c.c_out,
            kernel: c.kernel,
            stride: c.stride,
            dilation: c.dilation,
            padding: c.padding,
            groups: c.groups,
            activation: if c.batch_norm {
                Activation::None
            } else {
                c.activation
            },
        };
        let out = p
            .out_dims(in_shape)
            .map_err(|e| invalid(name, e.to_string()))?;
        let ws = p.weight_shape();
        if super::bounded_elements(&ws).is_none() || super::bounded_elements(&out).is_none() {
            return Err(invalid(
                name,
                format!(
                    "weight {ws:?} or output {out:?} has more than {} elements",
                    super::MAX_ELEMENTS
                ),
            ));
        }
        let fan_in = ws[1] * ws[2] * ws[3];
        let wdata = self.normal(ws.iter().product(), (2.0 / fan_in as f64).sqrt());
        let mut weights = vec![(
            "weight",
            self.tensor(format!("{name}.weight"), ws.to_vec(), wdata)?,
        )];
        if c.bias {
            let b = self.uniform(c.c_out, -0.1, 0.1);
            weights.push((
                "bias",
                self.tensor(format!("{name}.bias"), vec![c.c_out], b)?,
            ));
        }
        let mut attrs = Map::new();
        attrs.insert("kernel".into(), json!(p.kernel));
        attrs.insert("stride".into(), json!(p.stride));
        attrs.insert("padding".into(), json!(p.padding));
        attrs.insert("dilation".into(), json!(p.dilation));
        attrs.insert("groups".into(), json!(p.groups));
        attrs.insert("activation".into(), act(p.activation));
        let y = self.push(name, "conv2d", &[input], attrs, &weights, out.to_vec());
        if !c.batch_norm {
            return Ok(y);
        }
        let bn = format!("{name}_bn");
        let n = c.c_out;
        let (g, b, m, v) = (
            self.uniform(n, 0.8, 1.2),
            self.uniform(n, -0.1, 0.1),
            self.uniform(n, -0.1, 0.1),
            self.uniform(n, 0.8, 1.2),
        );
        let weights = [
            ("gamma", self.tensor(format!("{bn}.gamma"), vec![n], g)?),
            ("beta", self.tensor(format!("{bn}.beta"), vec![n], b)?),
            ("mean", self.tensor(format!("{bn}.mean"), vec![n], m)?),
            ("var", self.tensor(format!("{bn}.var"), vec![n], v)?),
        ];
        let mut attrs = Map::new();
        attrs.insert("eps".into(), json!(1e-5));
        attrs.insert("activation".into(), act(c.activation));
        Ok(self.push(&bn, "batch_norm", &[&y], attrs, &weights, out.to_vec()))
    }

    /// Adds a max or average pool.
    pub fn pool(&mut self, name: &str, input: &str, p: &PoolParams) -> Result<String> {
        let out = p
            .out_dims(self.shape(input)?)
            .map_err(|e| invalid(name, e.to_string()))?;
        let mut attrs = Map::new();
        attrs.insert("kernel".into(), json!(p.kernel));
        attrs.insert("stride".into(), json!(p.stride));
        attrs.insert("padding".into(), json!(p.padding));
        attrs.insert("ceil_mode".into(), json!(p.ceil_mode));
        let op = match p.kind {
            PoolKind::Max => "max_pool",
            PoolKind::Avg { count_include_pad } => {
                attrs.insert("count_include_pad".into(), json!(count_include_pad));
                "avg_pool"
            }
        };
        Ok(self.push(name, op, &[input], attrs, &[], out.to_vec()))
    }

    /// Adds a global average pool.
    pub fn global_avg_pool(&mut self, name: &str, input: &str) -> Result<String> {
        let out = crate::ops::global_avg_pool::out_dims(self.shape(input)?)?;
        Ok(self.push(
            name,
            "global_avg_pool",
            &[input],
            Map::new(),
            &[],
            out.to_vec(),
        ))
    }

    /// Adds `act(a + b)`.
    pub fn add(&mut self, name: &str, a: &str, b: &str, activation: Activation) -> Result<String> {
        let out = crate::ops::add::out_dims(self.shape(a)?, self.shape(b)?)?;
        let mut attrs = Map::new();
        attrs.insert("activation".into(), act(activation));
        Ok(self.push(name, "add", &[a, b], attrs, &[], out))
    }

    /// Adds a channel concat.
    pub fn concat(&mut self, name: &str, inputs: &[&str]) -> Result<String> {
        let shapes = inputs
            .iter()
            .map(|i| self.shape(i))
            .collect::<Result<Vec<_>>>()?;
        let out = crate::ops::concat::out_dims(&shapes)?;
        Ok(self.push(name, "concat", inputs, Map::new(), &[], out.to_vec()))
    }

    /// Adds a flatten.
    pub fn flatten(&mut self, name: &str, input: &str) -> Result<String> {
        let out = crate::ops::flatten::out_dims(self.shape(input)?)?;
        Ok(self.push(name, "flatten", &[input], Map::new(), &[], out.to_vec()))
    }

    /// Adds a linear layer with bias.
    pub fn linear(
        &mut self,
        name: &str,
        input: &str,
        out_features: usize,
        activation: Activation,
    ) -> Result<String> {
        let in_features: usize = self.shape(input)?[1..].iter().product();
        let w = self.normal(
            in_features * out_features,
            (1.0 / in_features as f64).sqrt(),
        );
        let b = self.uniform(out_features, -0.1, 0.1);
        let weights = [
            (
                "weight",
                self.tensor(format!("{name}.weight"), vec![out_features, in_features], w)?,
            ),
            (
                "bias",
                self.tensor(format!("{name}.bias"), vec![out_features], b)?,
            ),
        ];
        let mut attrs = Map::new();
        attrs.insert("activation".into(), act(activation));
        Ok(self.push(
            name,
            "linear",
            &[input],
            attrs,
            &weights,
            vec![1, out_features],
        ))
    }

    /// Adds a softmax over channels.
    pub fn softmax(&mut self, name: &str, input: &str) -> Result<String> {
        let out = self.shape(input)?.to_vec();
        Ok(self.push(name, "softmax", &[input], Map::new(), &[], out))
    }

    /// Finishes the graph with these outputs; batch norms stay unfolded.
    pub fn finish(mut self, outputs: &[&str]) -> Result<Model> {
        self.raw.outputs = outputs.iter().map(|s| s.to_string()).collect();
        Model::new(&self.raw, self.weights)
    }
}
