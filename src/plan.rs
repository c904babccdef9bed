//! The memory plan of a graph for one batch size: which buffer ("slot") holds each value, from
//! value lifetimes, so values whose lifetimes do not overlap share memory, and which values are
//! written straight into their channel range of a concat's output, so the concat copies
//! nothing. Pure arithmetic: no GPU here; the executor turns slots into buffers.

use crate::error::{graph_err, Result};
use crate::graph::{Graph, Op};
use std::collections::HashMap;

/// When a value is alive, in steps: graph inputs are written at step 0, node `k` (in graph
/// order) runs at step `k + 1`; outputs live to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Step that writes the value.
    pub first: usize,
    /// Last step that reads it.
    pub last: usize,
}

impl Lifetime {
    /// True when the two lifetimes share no step.
    pub fn is_disjoint(&self, other: &Lifetime) -> bool {
        self.last < other.first || other.last < self.first
    }
}

/// Where every value of a graph lives for one batch size.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Batch size planned for.
    pub batch: usize,
    /// Slot sizes in elements.
    pub slots: Vec<usize>,
    /// Slot of each value (a flatten shares its input's slot).
    pub value_slot: HashMap<String, usize>,
    /// Lifetime of each value that owns its storage (flatten outputs are folded into their
    /// input's).
    pub lifetimes: HashMap<String, Lifetime>,
    /// Elements of each value.
    pub value_len: HashMap<String, usize>,
    /// Values that live in their channel range of a concat's output (and share its slot): the
    /// concat copies only its other inputs.
    pub in_place: HashMap<String, InPlace>,
}

/// Where a value written in place into a concat's output lies, per item (image), in elements:
/// item `n` of the value starts at `offset + n * stride` of the concat's slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InPlace {
    /// The concat.
    pub concat: String,
    /// Elements per item of the value.
    pub item: usize,
    /// Elements per item of the concat's output.
    pub stride: usize,
    /// Where the value's channels start in each item of the concat's output.
    pub offset: usize,
}

/// The concat inputs that can be written in place: produced by a node that is neither a
/// flatten nor a concat, read by nothing but that one concat (once), and not a graph output.
fn concat_in_place(graph: &Graph) -> HashMap<String, InPlace> {
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for v in graph
        .nodes
        .iter()
        .flat_map(|n| &n.inputs)
        .chain(&graph.outputs)
    {
        *uses.entry(v.as_str()).or_default() += 1;
    }
    let mut out = HashMap::new();
    for c in graph.nodes.iter().filter(|n| n.op == Op::Concat) {
        let stride = graph.elements_per_image(&c.name);
        let mut offset = 0;
        for v in &c.inputs {
            let item = graph.elements_per_image(v);
            let produced = graph
                .nodes
                .iter()
                .any(|n| &n.name == v && !matches!(n.op, Op::Flatten | Op::Concat));
            if produced && uses.get(v.as_str()) == Some(&1) {
                out.insert(
                    v.clone(),
                    InPlace {
                        concat: c.name.clone(),
                        item,
                        stride,
                        offset,
                    },
                );
            }
            offset += item;
        }
    }
    out
}

/// The value whose storage `value` uses: itself, or what a chain of flattens reads.
fn root<'a>(graph: &'a Graph, value: &'a str) -> &'a str {
    let mut v = value;
    while let Some(n) = graph
        .nodes
        .iter()
        .find(|n| n.name == v && n.op == Op::Flatten)
    {
        v = &n.inputs[0];
    }
    v
}

impl Plan {
    /// Plans `graph` for `batch` images.
    pub fn new(graph: &Graph, batch: usize) -> Result<Self> {
        if batch == 0 {
            return Err(graph_err("(plan)", "batch size must be at least 1"));
        }
        let end = graph.nodes.len() + 1;
        let mut lifetimes: HashMap<String, Lifetime> = HashMap::new();
        let mut value_len = HashMap::new();
        for i in &graph.inputs {
            lifetimes.insert(i.name.clone(), Lifetime { first: 0, last: 0 });
            value_len.insert(i.name.clone(), graph.elements_per_image(&i.name) * batch);
        }
        for (k, n) in graph.nodes.iter().enumerate() {
            value_len.insert(n.name.clone(), graph.elements_per_image(&n.name) * batch);
            for i in &n.inputs {
                if let Some(l) = lifetimes.get_mut(root(graph, i)) {
                    l.last = l.last.max(k + 1);
                }
            }
            if n.op != Op::Flatten {
                lifetimes.insert(
                    n.name.clone(),
                    Lifetime {
                        first: k + 1,
                        last: k + 1,
                    },
                );
            }
        }
        for o in &graph.outputs {
            if let Some(l) = lifetimes.get_mut(root(graph, o)) {
                l.last = end;
            }
        }
        // A value written in place has no storage of its own: its concat's output lives from
        // the first such write.
        let in_place = concat_in_place(graph);
        for (v, p) in &in_place {
            if let Some(first) = lifetimes.remove(v).map(|l| l.first) {
                if let Some(c) = lifetimes.get_mut(&p.concat) {
                    c.first = c.first.min(first);
                }
            }
        }
        // Greedy assignment in step order: a value takes the smallest free slot that holds
        // it, else grows the largest free slot, else opens a new one. Slots are released only
        // after the step's output is placed, so an op never writes over its own input.
        let mut slots: Vec<usize> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut value_slot = HashMap::new();
        let mut order: Vec<(&String, &Lifetime)> = lifetimes.iter().collect();
        order.sort_by_key(|(name, l)| (l.first, graph.nodes.iter().position(|n| &n.name == *name)));
        for step in 0..=end {
            for (name, l) in order.iter().filter(|(_, l)| l.first == step) {
                let need = value_len[*name];
                let pick = free
                    .iter()
                    .enumerate()
                    .filter(|(_, &s)| slots[s] >= need)
                    .min_by_key(|(_, &s)| slots[s])
                    .or_else(|| free.iter().enumerate().max_by_key(|(_, &s)| slots[s]))
                    .map(|(i, _)| i);
                let slot = match pick {
                    Some(i) => free.swap_remove(i),
                    None => {
                        slots.push(0);
                        slots.len() - 1
                    }
                };
                slots[slot] = slots[slot].max(need);
                value_slot.insert((*name).clone(), slot);
                let _ = l;
            }
            for (name, l) in &order {
                if l.last == step {
                    free.push(value_slot[*name]);
                }
            }
        }
        for (v, p) in &in_place {
            value_slot.insert(v.clone(), value_slot[&p.concat]);
        }
        for n in &graph.nodes {
            if n.op == Op::Flatten {
                let r = root(graph, &n.name);
                value_slot.insert(n.name.clone(), value_slot[r]);
            }
        }
        Ok(Self {
            batch,
            slots,
            value_slot,
            lifetimes,
            value_len,
            in_place,
        })
    }

    /// Elements held by all slots together: the activation memory with reuse.
    pub fn pooled_elements(&self) -> usize {
        self.slots.iter().sum()
    }

    /// Elements the values would take with one buffer each (no reuse).
    pub fn unpooled_elements(&self) -> usize {
        self.lifetimes.keys().map(|v| self.value_len[v]).sum()
    }
}
