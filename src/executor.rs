//! The engine and the executor: weights uploaded once per precision; for each batch size a
//! plan, pooled activation buffers, pipelines and bind groups made once; a run is one encoder,
//! one submit and one readback. A batch larger than the device's buffers allow is split into
//! chunks.

use crate::error::{graph_err, invalid, Error, Result};
use crate::gpu::{Dispatch, Gpu, GpuBuffer, GpuOptions, OutputView, Program, Timing};
use crate::graph::{Graph, Op};
use crate::model::Model;
use crate::ops::conv2d::{ConvAlgorithm, ConvParams};
use crate::ops::linear::LinearKernel;
use crate::ops::{add, batch_norm, concat, global_avg_pool, softmax};
use crate::plan::Plan;
use crate::tune::{TuneCache, Tuning};
use crate::{Precision, Tensor};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// An open GPU device ready to load models. Cheap to clone; models loaded from one engine
/// share its device and pipeline cache.
#[derive(Debug, Clone)]
pub struct Engine {
    gpu: Arc<Gpu>,
}

impl Engine {
    /// Opens the best adapter for `options`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(options: &GpuOptions) -> Result<Self> {
        pollster::block_on(Self::new_async(options))
    }

    /// The async form of [`Engine::new`] (the only one in a browser).
    pub async fn new_async(options: &GpuOptions) -> Result<Self> {
        Ok(Self {
            gpu: Arc::new(Gpu::new_async(options).await?),
        })
    }

    /// Opens the adapter named by `DEEPROOTS_BACKEND` (the best one when unset).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_env() -> Result<Self> {
        Self::new(&GpuOptions::from_env()?)
    }

    /// An engine on an already open device.
    pub fn from_gpu(gpu: impl Into<Arc<Gpu>>) -> Self {
        Self { gpu: gpu.into() }
    }

    /// The device.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Uploads `model`'s weights for `precision` and returns an executor for it. Each
    /// convolution runs the kernel [`ConvParams::algorithm`]'s rule picks for this adapter.
    pub fn load(&self, model: &Model, precision: Precision) -> Result<Executor> {
        let graph = execution_graph(&self.gpu, model)?;
        Executor::new(self.gpu.clone(), model, graph, precision, &HashMap::new())
    }

    /// [`Engine::load`] with the kernels [`crate::tune`] measures fastest on this device for
    /// `batch` images (looked up in `cache` first, measured and added to it otherwise).
    /// `progress(done, total)` counts convolutions.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_tuned(
        &self,
        model: &Model,
        precision: Precision,
        batch: usize,
        cache: &mut TuneCache,
        progress: &mut (dyn FnMut(usize, usize) + Send),
    ) -> Result<(Executor, Tuning)> {
        pollster::block_on(self.load_tuned_async(model, precision, batch, cache, progress))
    }

    /// The async form of [`Engine::load_tuned`].
    pub async fn load_tuned_async(
        &self,
        model: &Model,
        precision: Precision,
        batch: usize,
        cache: &mut TuneCache,
        progress: &mut (dyn FnMut(usize, usize) + Send),
    ) -> Result<(Executor, Tuning)> {
        // Tuned for the batch that really runs: at most one chunk.
        let storage = self.gpu.storage(precision);
        let chunk = batch.min(max_chunk(&self.gpu, &model.graph, storage)?);
        let graph = execution_graph(&self.gpu, model)?;
        let tuning =
            crate::tune::tune_async(&self.gpu, &graph, precision, chunk, cache, progress).await?;
        let exec = Executor::new(self.gpu.clone(), model, graph, precision, &tuning.choices())?;
        Ok((exec, tuning))
    }

    /// Reads a model file (batch norms folded) and loads it.
    pub fn load_file(&self, path: impl AsRef<Path>, precision: Precision) -> Result<Executor> {
        self.load(&Model::load(path)?, precision)
    }
}

/// What a batch size needs: its plan, activation buffers and program.
struct Prepared {
    plan: Plan,
    slots: Vec<GpuBuffer>,
    program: Program,
    /// The node each dispatch belongs to, in order.
    labels: Vec<String>,
}

/// The GPU time of one dispatch of a profiled run.
#[derive(Debug, Clone)]
pub struct DispatchTime {
    /// The node the dispatch belongs to.
    pub node: String,
    /// GPU nanoseconds.
    pub ns: f64,
}

/// A model loaded on a device. `Send + Sync`: runs from several threads are serialized on the
/// device (one lock around write, submit, wait and read); the weights, plans and programs are
/// shared, and each run gets its own output tensors.
pub struct Executor {
    gpu: Arc<Gpu>,
    graph: Graph,
    precision: Precision,
    /// Weight buffers by tensor name, plus made-up ones (`<node>#zero-bias`, `<node>#scale`).
    weights: HashMap<String, GpuBuffer>,
    prepared: Mutex<HashMap<(usize, Timing), Arc<Prepared>>>,
    max_chunk: usize,
    /// The kernel of each convolution node.
    algorithms: HashMap<String, ConvAlgorithm>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("model", &self.graph.name)
            .field("precision", &self.precision)
            .field("max_chunk", &self.max_chunk)
            .finish()
    }
}

impl Executor {
    /// `graph`: `model`'s graph as this device runs it ([`execution_graph`]); `choices`: the
    /// kernel of each convolution node; nodes not in it take the rule's.
    fn new(
        gpu: Arc<Gpu>,
        model: &Model,
        graph: Graph,
        precision: Precision,
        choices: &HashMap<String, ConvAlgorithm>,
    ) -> Result<Self> {
        let storage = gpu.storage(precision);
        let target = crate::ops::target(&gpu);
        let algorithms: HashMap<String, ConvAlgorithm> = graph
            .nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::Conv2d { params, .. } => Some((
                    n.name.clone(),
                    choices
                        .get(&n.name)
                        .copied()
                        .filter(|a| params.candidates(target).contains(a))
                        .unwrap_or_else(|| params.algorithm(target)),
                )),
                _ => None,
            })
            .collect();
        let mut weights = HashMap::new();
        let mut upload = |name: String, t: &Tensor| -> Result<()> {
            let buf = gpu.create_buffer(&name, t.len(), storage)?;
            gpu.write(&buf, t.data())?;
            weights.insert(name, buf);
            Ok(())
        };
        for n in &graph.nodes {
            // A conv's weight goes up in the layout its kernel reads, under the node's name.
            if let Op::Conv2d { params, weight, .. } = &n.op {
                let data = model
                    .weights
                    .get(weight)
                    .ok_or_else(|| graph_err(&n.name, format!("tensor '{weight}' missing")))?;
                let w = params
                    .device_weight(algorithms[&n.name], data)
                    .map_err(|e| graph_err(&n.name, e.to_string()))?;
                upload(format!("{}#weight", n.name), &w)?;
            }
            for t in n.op.tensors() {
                if matches!(&n.op, Op::Conv2d { weight, .. } if weight == t) {
                    continue;
                }
                let data = model
                    .weights
                    .get(t)
                    .ok_or_else(|| graph_err(&n.name, format!("tensor '{t}' missing")))?;
                upload(t.to_string(), data)?;
            }
            match &n.op {
                Op::Conv2d {
                    params, bias: None, ..
                } => upload(
                    format!("{}#zero-bias", n.name),
                    &Tensor::zeros([params.c_out]),
                )?,
                Op::Linear {
                    params, bias: None, ..
                } => upload(
                    format!("{}#zero-bias", n.name),
                    &Tensor::zeros([params.out_features]),
                )?,
                Op::BatchNorm { eps, tensors, .. } => {
                    let get = |k: &String| model.weights[k].data().to_vec();
                    let bn = batch_norm::BatchNorm {
                        gamma: get(&tensors[0]),
                        beta: get(&tensors[1]),
                        mean: get(&tensors[2]),
                        var: get(&tensors[3]),
                        eps: *eps,
                    };
                    let (s, t) = bn
                        .scale_shift()
                        .map_err(|e| graph_err(&n.name, e.to_string()))?;
                    let c = s.len();
                    upload(format!("{}#scale", n.name), &Tensor::new([c], s)?)?;
                    upload(format!("{}#shift", n.name), &Tensor::new([c], t)?)?;
                }
                _ => {}
            }
        }
        let max_chunk = max_chunk(&gpu, &graph, storage)?;
        Ok(Self {
            gpu,
            graph,
            precision,
            weights,
            prepared: Mutex::new(HashMap::new()),
            max_chunk,
            algorithms,
        })
    }

    /// The kernel a convolution node runs (`None` for other nodes).
    pub fn algorithm(&self, node: &str) -> Option<ConvAlgorithm> {
        self.algorithms.get(node).copied()
    }

    fn conv_algorithm(&self, node: &str, params: &ConvParams) -> ConvAlgorithm {
        self.algorithm(node)
            .unwrap_or_else(|| params.algorithm(crate::ops::target(&self.gpu)))
    }

    /// The device it runs on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// The graph being run.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The precision the weights were uploaded in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The largest batch run in one submission; larger batches are split.
    pub fn max_chunk(&self) -> usize {
        self.max_chunk
    }

    /// Lowers the largest batch run in one submission (to bound memory); never raises it.
    pub fn with_max_chunk(mut self, n: usize) -> Self {
        self.max_chunk = self.max_chunk.min(n.max(1));
        self
    }

    /// The memory plan for `batch` images (built and cached on first use).
    pub fn plan(&self, batch: usize) -> Result<Plan> {
        Ok(self
            .prepare(batch.min(self.max_chunk), Timing::Total)?
            .plan
            .clone())
    }

    fn prepare(&self, batch: usize, timing: Timing) -> Result<Arc<Prepared>> {
        let mut cache = self
            .prepared
            .lock()
            .map_err(|_| Error::DeviceLost("a run panicked".into()))?;
        if let Some(p) = cache.get(&(batch, timing)) {
            return Ok(p.clone());
        }
        let p = Arc::new(self.build(batch, timing)?);
        cache.insert((batch, timing), p.clone());
        Ok(p)
    }

    fn build(&self, batch: usize, timing: Timing) -> Result<Prepared> {
        let g = &self.graph;
        let plan = Plan::new(g, batch)?;
        let storage = self.gpu.storage(self.precision);
        let mut slots = Vec::with_capacity(plan.slots.len());
        for (i, &len) in plan.slots.iter().enumerate() {
            slots.push(self.gpu.create_buffer(
                &format!("{}/slot{i}", g.name),
                len.max(1),
                storage,
            )?);
        }
        // Buffer table: activation slots first, then the weights.
        let mut table: Vec<&GpuBuffer> = slots.iter().collect();
        let mut weight_index = HashMap::new();
        for (name, buf) in &self.weights {
            weight_index.insert(name.as_str(), table.len());
            table.push(buf);
        }
        let slot = |v: &str| {
            plan.value_slot
                .get(v)
                .copied()
                .ok_or_else(|| graph_err(v, "value has no buffer"))
        };
        let w = |name: &str| {
            weight_index
                .get(name)
                .copied()
                .ok_or_else(|| graph_err(name, "weight not uploaded"))
        };
        let target = crate::ops::target(&self.gpu);
        let mut dispatches: Vec<Dispatch> = Vec::new();
        for n in &g.nodes {
            let shape = |v: &str| g.shape(v, batch).ok_or_else(|| graph_err(v, "no shape"));
            let x = slot(&n.inputs[0])?;
            let xs = shape(&n.inputs[0])?;
            let y = slot(&n.name)?;
            let label = n.name.as_str();
            let bias = |b: &Option<String>| match b {
                Some(b) => w(b),
                None => w(&format!("{label}#zero-bias")),
            };
            let d = match &n.op {
                Op::Conv2d {
                    params, bias: b, ..
                } => params.dispatches(
                    self.conv_algorithm(label, params),
                    label,
                    &xs,
                    [y, x, w(&format!("{label}#weight"))?, bias(b)?],
                    target,
                )?,
                Op::Linear {
                    params,
                    weight,
                    bias: b,
                } => params.dispatches(
                    LinearKernel::for_layer(batch, params.in_features, target),
                    label,
                    &xs,
                    [y, x, w(weight)?, bias(b)?],
                    target,
                )?,
                Op::BatchNorm { activation, .. } => batch_norm::dispatches(
                    label,
                    &xs,
                    *activation,
                    y,
                    x,
                    w(&format!("{label}#scale"))?,
                    w(&format!("{label}#shift"))?,
                )?,
                Op::Pool(p) => p.dispatches(label, &xs, y, x)?,
                Op::GlobalAvgPool => global_avg_pool::dispatches(label, &xs, y, x)?,
                Op::Add { activation } => {
                    add::dispatches(label, &xs, *activation, y, x, slot(&n.inputs[1])?)?
                }
                Op::Concat => {
                    let shapes = n
                        .inputs
                        .iter()
                        .map(|i| shape(i))
                        .collect::<Result<Vec<_>>>()?;
                    let refs: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
                    let xs = n
                        .inputs
                        .iter()
                        .map(|i| slot(i))
                        .collect::<Result<Vec<_>>>()?;
                    // Inputs written in place are already there.
                    concat::dispatches(label, &refs, y, &xs)?
                        .into_iter()
                        .zip(&n.inputs)
                        .filter(|(_, v)| !plan.in_place.contains_key(*v))
                        .map(|(d, _)| d)
                        .collect()
                }
                Op::Softmax => softmax::dispatches(label, &xs, y, x)?,
                Op::Flatten => vec![],
            };
            let view = match plan.in_place.get(&n.name) {
                Some(p) => {
                    let u = |what: &str, v: usize| crate::ops::u32_of(label, what, v);
                    Some(OutputView {
                        item: u("elements per image", p.item)?,
                        stride: u("concat elements per image", p.stride)?,
                        offset: u("concat offset", p.offset)?,
                    })
                }
                None => None,
            };
            dispatches.extend(d.into_iter().map(|d| Dispatch {
                output_view: view,
                ..d
            }));
        }
        let readback = g
            .outputs
            .iter()
            .map(|o| slot(o))
            .collect::<Result<Vec<_>>>()?;
        let program = self
            .gpu
            .program(&g.name, &dispatches, &table, &readback, timing)?;
        drop(table);
        let labels = dispatches.into_iter().map(|d| d.label).collect();
        Ok(Prepared {
            plan,
            slots,
            program,
            labels,
        })
    }

    /// Runs the model on one NCHW batch per graph input (all with the same batch size) and
    /// returns one tensor per graph output, batch first.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        pollster::block_on(self.run_async(inputs))
    }

    /// The async form of [`Executor::run`] (the only one in a browser).
    pub async fn run_async(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        self.run_with(inputs, Timing::Total, &mut |_, _| {}).await
    }

    /// [`Executor::run`], also returning the GPU time of the whole batch in milliseconds where
    /// the adapter has timestamp queries (`None` otherwise).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_timed(&self, inputs: &[&Tensor]) -> Result<(Vec<Tensor>, Option<f64>)> {
        pollster::block_on(self.run_timed_async(inputs))
    }

    /// The async form of [`Executor::run_timed`].
    pub async fn run_timed_async(&self, inputs: &[&Tensor]) -> Result<(Vec<Tensor>, Option<f64>)> {
        let mut total = 0.0;
        let mut timed = true;
        let out = self
            .run_with(inputs, Timing::Total, &mut |_, ns| match ns.first() {
                Some(t) => total += t,
                None => timed = false,
            })
            .await?;
        Ok((out, timed.then_some(total / 1e6)))
    }

    /// Runs once with a timestamp around every dispatch and returns each dispatch's GPU time
    /// (empty where the adapter has no timestamp queries). Uses its own buffers and program.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn profile(&self, inputs: &[&Tensor]) -> Result<(Vec<Tensor>, Vec<DispatchTime>)> {
        pollster::block_on(self.profile_async(inputs))
    }

    /// The async form of [`Executor::profile`].
    pub async fn profile_async(
        &self,
        inputs: &[&Tensor],
    ) -> Result<(Vec<Tensor>, Vec<DispatchTime>)> {
        let mut times = Vec::new();
        let out = self
            .run_with(inputs, Timing::PerDispatch, &mut |labels, ns| {
                for (i, t) in ns.iter().enumerate() {
                    if let Some(node) = labels.get(i) {
                        times.push(DispatchTime {
                            node: node.clone(),
                            ns: *t,
                        });
                    }
                }
            })
            .await?;
        Ok((out, times))
    }

    async fn run_with(
        &self,
        inputs: &[&Tensor],
        timing: Timing,
        on_times: &mut (dyn FnMut(&[String], &[f64]) + Send),
    ) -> Result<Vec<Tensor>> {
        let g = &self.graph;
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
        let batch = inputs
            .first()
            .and_then(|t| t.shape().first().copied())
            .unwrap_or(0);
        for (t, spec) in inputs.iter().zip(&g.inputs) {
            let want = [&[batch][..], &spec.shape].concat();
            if t.shape() != want.as_slice() || batch == 0 {
                return Err(invalid(
                    &spec.name,
                    format!(
                        "input has shape {:?}, expected [N, {}] with N >= 1",
                        t.shape(),
                        dims(&spec.shape)
                    ),
                ));
            }
        }
        let mut outputs: Vec<Vec<f32>> = vec![Vec::new(); g.outputs.len()];
        let mut start = 0;
        while start < batch {
            let n = (batch - start).min(self.max_chunk);
            let p = self.prepare(n, timing)?;
            let writes = inputs
                .iter()
                .zip(&g.inputs)
                .map(|(t, spec)| {
                    let per = t.len() / batch;
                    Ok((
                        &p.slots[p.plan.value_slot[&spec.name]],
                        &t.data()[start * per..(start + n) * per],
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let run = self.gpu.run_async(&p.program, &writes).await?;
            on_times(&p.labels, &run.gpu_ns);
            for ((o, name), mut values) in outputs.iter_mut().zip(&g.outputs).zip(run.outputs) {
                values.truncate(p.plan.value_len[name]);
                o.extend(values);
            }
            start += n;
        }
        g.outputs
            .iter()
            .zip(outputs)
            .map(|(name, data)| Tensor::new(g.shape(name, batch).unwrap_or_default(), data))
            .collect()
    }
}

fn dims(s: &[usize]) -> String {
    s.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The graph as `gpu` runs it: on CPU adapters, each strided 1x1 convolution is split into a
/// subsample and a stride-1 convolution ([`Graph::with_strided_pointwise_split`]), which the
/// matmul kernels run at about twice the GFLOP/s of the implicit GEMM (ResNet-50's downsampling
/// layers on lavapipe, docs/results/lavapipe-small-ops.txt). Same results.
fn execution_graph(gpu: &Gpu, model: &Model) -> Result<Graph> {
    if !crate::ops::target(gpu).cpu {
        return Ok(model.graph.clone());
    }
    model
        .graph
        .with_strided_pointwise_split(&model.tensor_shapes())
}

/// The largest batch one run can take on `gpu`: every slot must fit one binding, and a grouped
/// 1x1 conv's batch x groups must fit one dispatch dimension.
fn max_chunk(gpu: &Gpu, graph: &Graph, storage: crate::gpu::Storage) -> Result<usize> {
    let per_image = Plan::new(graph, 1)?
        .slots
        .iter()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as u64;
    let by_memory = gpu.max_binding_bytes() / (per_image * storage.bytes_per_element());
    let (max_groups, widest) = graph
        .nodes
        .iter()
        .map(|n| match &n.op {
            Op::Conv2d { params, .. } => (params.groups, n.name.as_str()),
            _ => (1, n.name.as_str()),
        })
        .max_by_key(|&(g, _)| g)
        .unwrap_or((1, ""));
    let by_grid = gpu.max_workgroups() as u64 / max_groups as u64;
    if by_grid == 0 {
        return Err(invalid(
            widest,
            format!(
                "{max_groups} groups: the convolution kernels take the groups as one dispatch \
                 dimension, and this device dispatches at most {} workgroups along one",
                gpu.max_workgroups()
            ),
        ));
    }
    let max_chunk = by_memory.min(by_grid) as usize;
    if max_chunk == 0 {
        return Err(Error::BufferTooLarge {
            label: format!("{}: one image's activations", graph.name),
            bytes: per_image * storage.bytes_per_element(),
            limit: gpu.max_binding_bytes(),
        });
    }
    Ok(max_chunk)
}
