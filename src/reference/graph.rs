//! The whole-graph CPU executor over the reference ops: runs any model file, folded or not.

use crate::error::{graph_err, invalid, Result};
use crate::graph::Op;
use crate::model::Model;
use crate::ops::batch_norm::BatchNorm;
use crate::Tensor;
use std::collections::HashMap;

/// Runs `model` on the CPU: one NCHW batch per graph input, one tensor per graph output.
pub fn run(model: &Model, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    let g = &model.graph;
    if inputs.len() != g.inputs.len() {
        return Err(invalid(
            &g.name,
            format!(
                "the model takes {} input(s), got {}",
                g.inputs.len(),
                inputs.len()
            ),
        ));
    }
    let mut values: HashMap<&str, Tensor> = HashMap::new();
    for (spec, t) in g.inputs.iter().zip(inputs) {
        values.insert(&spec.name, (*t).clone());
    }
    let weight = |n: &str| {
        model
            .weights
            .get(n)
            .ok_or_else(|| graph_err(n, "tensor missing"))
    };
    for n in &g.nodes {
        let ins: Vec<&Tensor> = n
            .inputs
            .iter()
            .map(|i| {
                values
                    .get(i.as_str())
                    .ok_or_else(|| graph_err(&n.name, format!("input '{i}' not computed")))
            })
            .collect::<Result<_>>()?;
        let x = ins[0];
        let y = match &n.op {
            Op::Conv2d {
                params,
                weight: w,
                bias,
            } => super::conv2d(
                params,
                x,
                weight(w)?,
                bias.as_deref().map(weight).transpose()?,
            )?,
            Op::Linear {
                params,
                weight: w,
                bias,
            } => super::linear(
                params,
                x,
                weight(w)?,
                bias.as_deref().map(weight).transpose()?,
            )?,
            Op::BatchNorm {
                eps,
                activation,
                tensors,
            } => {
                let get = |k: &String| weight(k).map(|t| t.data().to_vec());
                let bn = BatchNorm {
                    gamma: get(&tensors[0])?,
                    beta: get(&tensors[1])?,
                    mean: get(&tensors[2])?,
                    var: get(&tensors[3])?,
                    eps: *eps,
                };
                super::batch_norm(&bn, x, *activation)?
            }
            Op::Pool(p) => super::pool(p, x)?,
            Op::GlobalAvgPool => super::global_avg_pool(x)?,
            Op::Add { activation } => super::add(x, ins[1], *activation)?,
            Op::Concat => super::concat(&ins)?,
            Op::Softmax => super::softmax(x)?,
            Op::Flatten => super::flatten(x)?,
        };
        values.insert(&n.name, y);
    }
    g.outputs
        .iter()
        .map(|o| {
            values
                .get(o.as_str())
                .cloned()
                .ok_or_else(|| graph_err(o, "output not computed"))
        })
        .collect()
}
