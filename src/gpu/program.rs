//! Buffers, dispatches and programs: a program is a list of dispatches whose pipelines, bind
//! groups, parameter buffers and readback buffers are all created once, then run many times
//! with one command encoder and one submit per run.

use super::{shader::Storage, Gpu};
use crate::error::{invalid, Error, Result};
use wgpu::util::DeviceExt;

/// A compute kernel: its WGSL body and the names of its input bindings (see `gpu::shader`).
#[derive(Debug)]
pub struct Kernel {
    /// Name used for labels and the pipeline cache.
    pub name: &'static str,
    /// WGSL body (declares `Params` at binding 0 and the entry point).
    pub source: &'static str,
    /// Entry point.
    pub entry: &'static str,
    /// Input binding names, bound at 2, 3, ... in this order.
    pub inputs: &'static [&'static str],
}

/// One dispatch of a kernel over buffers given by index into a program's buffer table.
#[derive(Debug, Clone)]
pub struct Dispatch {
    /// Label for errors ("conv2a/conv2d").
    pub label: String,
    /// Which kernel.
    pub kernel: &'static Kernel,
    /// WGSL override constants (static facts of the layer).
    pub constants: Vec<(&'static str, f64)>,
    /// Bytes of the kernel's `Params` uniform.
    pub params: Vec<u8>,
    /// Workgroup counts.
    pub workgroups: [u32; 3],
    /// Index of the output buffer.
    pub output: usize,
    /// Indices of the input buffers, in the kernel's binding order.
    pub inputs: Vec<usize>,
    /// Where in the output buffer the output value lies, when it is a slice of it (`None`: the
    /// whole buffer from element 0, dense).
    pub output_view: Option<OutputView>,
}

/// An output value that is a slice of a larger buffer: item `n` of the value (its elements
/// `n * item ..`) is written at `offset + n * stride ..` (a branch writing its channel range of
/// a concat's output directly). In elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputView {
    /// Elements per item of the value.
    pub item: u32,
    /// Elements per item of the buffer.
    pub stride: u32,
    /// Element where item 0 starts.
    pub offset: u32,
}

impl OutputView {
    /// Items, strides and offset are multiples of 4 elements: elements 4i .. 4i + 3 of the
    /// value lie together on a 4-element boundary of the buffer, so a kernel can store them as
    /// one 4-vector.
    pub fn vec4_aligned(&self) -> bool {
        [self.item, self.stride, self.offset]
            .iter()
            .all(|v| v.is_multiple_of(4))
    }
}

/// A tensor's storage on the device.
#[derive(Debug)]
pub struct GpuBuffer {
    buffer: wgpu::Buffer,
    len: usize,
    storage: Storage,
    label: String,
}

impl GpuBuffer {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the buffer holds no elements (never, by construction).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How elements are stored.
    pub fn storage(&self) -> Storage {
        self.storage
    }

    /// Bytes allocated.
    pub fn bytes(&self) -> u64 {
        self.buffer.size()
    }
}

struct Step {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
}

/// Which GPU timestamps a program records (where the adapter has timestamp queries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timing {
    /// None.
    Off,
    /// Start and end of the whole run.
    Total,
    /// Start and end of every dispatch (each in its own compute pass).
    PerDispatch,
}

struct Timestamps {
    query_set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    staging: wgpu::Buffer,
    count: u32,
    per_dispatch: bool,
}

/// What one run returns: the read-back outputs and, where the program records timestamps,
/// the GPU time in nanoseconds of the whole run or of each dispatch.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// One vector per read-back buffer.
    pub outputs: Vec<Vec<f32>>,
    /// GPU nanoseconds: one entry for [`Timing::Total`], one per dispatch for
    /// [`Timing::PerDispatch`], empty otherwise.
    pub gpu_ns: Vec<f64>,
}

impl Step {
    fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }
}

/// Dispatches ready to run: everything made up front, nothing created per run.
pub struct Program {
    label: String,
    steps: Vec<Step>,
    /// (staging buffer, element count, storage) per output read back after a run.
    readback: Vec<(wgpu::Buffer, usize, Storage)>,
    /// Source buffers for the readback copies.
    readback_src: Vec<wgpu::Buffer>,
    timestamps: Option<Timestamps>,
    _params: Vec<wgpu::Buffer>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("label", &self.label)
            .field("dispatches", &self.steps.len())
            .finish()
    }
}

impl Program {
    /// Number of dispatches per run.
    pub fn dispatches(&self) -> usize {
        self.steps.len()
    }

    /// True when runs report GPU timestamps.
    pub fn is_timed(&self) -> bool {
        self.timestamps.is_some()
    }
}

/// Buffer bytes for `len` elements: rounded up to 16, so a buffer bound as an array of
/// 4-vectors (`"vec4 <name>"` inputs) covers every element.
fn padded_bytes(len: usize, storage: Storage) -> u64 {
    (len as u64 * storage.bytes_per_element()).div_ceil(16) * 16
}

fn encode(data: &[f32], storage: Storage) -> Vec<u8> {
    let mut bytes = match storage {
        Storage::F32 => bytemuck::cast_slice(data).to_vec(),
        Storage::F16 | Storage::F16Packed => data
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect(),
    };
    bytes.resize(padded_bytes(data.len(), storage) as usize, 0);
    bytes
}

fn decode(bytes: &[u8], len: usize, storage: Storage) -> Vec<f32> {
    match storage {
        Storage::F32 => bytes
            .chunks_exact(4)
            .take(len)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Storage::F16 | Storage::F16Packed => bytes
            .chunks_exact(2)
            .take(len)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
    }
}

impl Gpu {
    /// Allocates a buffer for `len` elements; refuses zero elements and sizes over the
    /// device's storage binding limit.
    pub fn create_buffer(&self, label: &str, len: usize, storage: Storage) -> Result<GpuBuffer> {
        if len == 0 {
            return Err(invalid(label, "zero-sized tensor"));
        }
        let bytes = padded_bytes(len, storage);
        let limit = self.max_binding_bytes().min(self.adapter().max_buffer_size);
        if bytes > limit {
            return Err(Error::BufferTooLarge {
                label: label.to_string(),
                bytes,
                limit,
            });
        }
        let buffer = self.scoped(label, || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        })?;
        Ok(GpuBuffer {
            buffer,
            len,
            storage,
            label: label.to_string(),
        })
    }

    /// Writes host values into the start of `buf` (converted to its storage).
    pub fn write(&self, buf: &GpuBuffer, data: &[f32]) -> Result<()> {
        if data.len() > buf.len || data.is_empty() {
            return Err(invalid(
                &buf.label,
                format!("holds {} values, got {}", buf.len, data.len()),
            ));
        }
        self.queue
            .write_buffer(&buf.buffer, 0, &encode(data, buf.storage));
        Ok(())
    }

    /// Fills `buf` with NaN so an element a kernel fails to write cannot pass a comparison.
    pub fn poison(&self, buf: &GpuBuffer) -> Result<()> {
        self.write(buf, &vec![f32::NAN; buf.len])
    }

    /// Creates pipelines, parameter buffers and bind groups for `dispatches` over `buffers`,
    /// and staging buffers for reading back the buffers listed in `readback`.
    pub fn program(
        &self,
        label: &str,
        dispatches: &[Dispatch],
        buffers: &[&GpuBuffer],
        readback: &[usize],
        timing: Timing,
    ) -> Result<Program> {
        let storage = buffers.first().map_or(Storage::F32, |b| b.storage);
        let mut steps = Vec::with_capacity(dispatches.len());
        let mut params = Vec::with_capacity(dispatches.len());
        let max_wg = self.max_workgroups();
        for d in dispatches {
            if d.workgroups.iter().any(|&w| w > max_wg) {
                return Err(invalid(
                    &d.label,
                    format!(
                        "needs {:?} workgroups, the device allows {max_wg} per dimension",
                        d.workgroups
                    ),
                ));
            }
            if d.inputs.len() != d.kernel.inputs.len() {
                return Err(invalid(
                    &d.label,
                    format!(
                        "kernel {} takes {} inputs, got {}",
                        d.kernel.name,
                        d.kernel.inputs.len(),
                        d.inputs.len()
                    ),
                ));
            }
            let get = |i: usize| {
                buffers
                    .get(i)
                    .copied()
                    .ok_or_else(|| invalid(&d.label, format!("no buffer {i} in the program")))
            };
            let out = get(d.output)?;
            let ins = d
                .inputs
                .iter()
                .map(|&i| get(i))
                .collect::<Result<Vec<_>>>()?;
            if ins.iter().chain([&out]).any(|b| b.storage != storage) {
                return Err(invalid(&d.label, "buffers of mixed precision"));
            }
            let view = match d.output_view {
                None => super::shader::View::None,
                Some(v) if v.vec4_aligned() => super::shader::View::Vec4,
                Some(_) => super::shader::View::Elements,
            };
            let pipeline = self.pipeline(d.kernel, storage, &d.constants, view)?;
            let (bind_group, param_buf, view_buf) = self.scoped(&d.label, || {
                // Uniform structs are sized in multiples of 16 bytes in WGSL.
                let mut bytes = d.params.clone();
                bytes.resize(bytes.len().div_ceil(16).max(1) * 16, 0);
                let param_buf = self
                    .device
                    .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some(&d.label),
                        contents: &bytes,
                        usage: wgpu::BufferUsages::UNIFORM,
                    });
                let mut entries = vec![
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: param_buf.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: out.buffer.as_entire_binding(),
                    },
                ];
                for (i, b) in ins.iter().enumerate() {
                    entries.push(wgpu::BindGroupEntry {
                        binding: i as u32 + 2,
                        resource: b.buffer.as_entire_binding(),
                    });
                }
                let view_buf = d.output_view.map(|v| {
                    let words = [v.item, v.stride, v.offset, 0];
                    self.device
                        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                            label: Some(&d.label),
                            contents: bytemuck::cast_slice(&words),
                            usage: wgpu::BufferUsages::UNIFORM,
                        })
                });
                if let Some(v) = &view_buf {
                    entries.push(wgpu::BindGroupEntry {
                        binding: super::shader::VIEW_BINDING,
                        resource: v.as_entire_binding(),
                    });
                }
                let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(&d.label),
                    layout: &pipeline.get_bind_group_layout(0),
                    entries: &entries,
                });
                (bind_group, param_buf, view_buf)
            })?;
            params.push(param_buf);
            params.extend(view_buf);
            steps.push(Step {
                pipeline,
                bind_group,
                workgroups: d.workgroups,
            });
        }
        let mut staging = Vec::new();
        let mut sources = Vec::new();
        for &i in readback {
            let b = buffers
                .get(i)
                .ok_or_else(|| invalid(label, format!("no buffer {i} to read back")))?;
            let s = self.scoped(label, || {
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("{}/readback", b.label)),
                    size: b.bytes(),
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })?;
            staging.push((s, b.len, b.storage));
            sources.push(b.buffer.clone());
        }
        let timestamps = match timing {
            Timing::Off => None,
            _ if !self.adapter().timestamp_query => None,
            t => {
                let per_dispatch = t == Timing::PerDispatch;
                let count = if per_dispatch {
                    2 * steps.len().max(1)
                } else {
                    2
                } as u32;
                if count > wgpu::QUERY_SET_MAX_QUERIES {
                    return Err(invalid(
                        label,
                        format!("{} dispatches are too many to time one by one", steps.len()),
                    ));
                }
                let bytes = 8 * count as u64;
                Some(self.scoped(label, || Timestamps {
                    query_set: self.device.create_query_set(&wgpu::QuerySetDescriptor {
                        label: Some(label),
                        ty: wgpu::QueryType::Timestamp,
                        count,
                    }),
                    resolve: self.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(label),
                        size: bytes,
                        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                        mapped_at_creation: false,
                    }),
                    staging: self.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(label),
                        size: bytes,
                        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    }),
                    count,
                    per_dispatch,
                })?)
            }
        };
        Ok(Program {
            label: label.to_string(),
            steps,
            readback: staging,
            readback_src: sources,
            timestamps,
            _params: params,
        })
    }

    /// Runs `program` once: writes `inputs` (buffer, values), records every dispatch and the
    /// readback copies in one encoder, submits once, waits, and returns the read-back values.
    ///
    /// Runs on one device are serialized by a lock held from the first write to the last read,
    /// so a program (and the buffers it shares between runs) can be run from many threads.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run(&self, program: &Program, inputs: &[(&GpuBuffer, &[f32])]) -> Result<Vec<Vec<f32>>> {
        Ok(self.run_timed(program, inputs)?.outputs)
    }

    /// [`Gpu::run`], also returning the GPU timestamps the program records.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_timed(
        &self,
        program: &Program,
        inputs: &[(&GpuBuffer, &[f32])],
    ) -> Result<RunOutput> {
        pollster::block_on(self.run_async(program, inputs))
    }

    /// The async form of [`Gpu::run_timed`]: nothing in it blocks in a browser. On native
    /// targets it waits for the device inside (wgpu has no waker there), so it blocks its
    /// thread like the blocking form.
    pub async fn run_async(
        &self,
        program: &Program,
        inputs: &[(&GpuBuffer, &[f32])],
    ) -> Result<RunOutput> {
        let _guard = self.submit_lock.lock().await;
        self.check_health(&program.label)?;
        let submission = self
            .scoped_async(&program.label, || -> Result<wgpu::SubmissionIndex> {
                for (buf, data) in inputs {
                    self.write(buf, data)?;
                }
                let mut encoder =
                    self.device
                        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                            label: Some(&program.label),
                        });
                match &program.timestamps {
                    Some(ts) if ts.per_dispatch => {
                        // One pass per dispatch so each gets its own begin/end timestamps.
                        for (i, s) in program.steps.iter().enumerate() {
                            let mut pass =
                                encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                                    label: Some(&program.label),
                                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                                        query_set: &ts.query_set,
                                        beginning_of_pass_write_index: Some(2 * i as u32),
                                        end_of_pass_write_index: Some(2 * i as u32 + 1),
                                    }),
                                });
                            s.record(&mut pass);
                        }
                    }
                    ts => {
                        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: Some(&program.label),
                            timestamp_writes: ts.as_ref().map(|ts| {
                                wgpu::ComputePassTimestampWrites {
                                    query_set: &ts.query_set,
                                    beginning_of_pass_write_index: Some(0),
                                    end_of_pass_write_index: Some(1),
                                }
                            }),
                        });
                        for s in &program.steps {
                            s.record(&mut pass);
                        }
                    }
                }
                if let Some(ts) = &program.timestamps {
                    encoder.resolve_query_set(&ts.query_set, 0..ts.count, &ts.resolve, 0);
                    encoder.copy_buffer_to_buffer(
                        &ts.resolve,
                        0,
                        &ts.staging,
                        0,
                        ts.staging.size(),
                    );
                }
                for ((dst, _, _), src) in program.readback.iter().zip(&program.readback_src) {
                    encoder.copy_buffer_to_buffer(src, 0, dst, 0, dst.size());
                }
                Ok(self.queue.submit(Some(encoder.finish())))
            })
            .await??;
        let mut mapped = Vec::new();
        let staging = program
            .readback
            .iter()
            .map(|(dst, _, _)| dst)
            .chain(program.timestamps.as_ref().map(|ts| &ts.staging));
        for buf in staging {
            let (tx, rx) = futures_channel::oneshot::channel();
            buf.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
            mapped.push(rx);
        }
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submission),
                timeout: None,
            })
            .map_err(|e| Error::DeviceLost(e.to_string()))?;
        #[cfg(target_arch = "wasm32")]
        let _ = submission;
        for rx in mapped {
            let done = rx.await.map_err(|_| {
                Error::DeviceLost(format!("{}: the readback was dropped", program.label))
            })?;
            done.map_err(|e| Error::Gpu {
                label: program.label.clone(),
                message: e.to_string(),
            })?;
        }
        self.check_health(&program.label)?;
        let mut out = Vec::with_capacity(program.readback.len());
        for (dst, len, storage) in &program.readback {
            let values = {
                let view = dst.slice(..).get_mapped_range().map_err(|e| Error::Gpu {
                    label: program.label.clone(),
                    message: e.to_string(),
                })?;
                decode(&view, *len, *storage)
            };
            dst.unmap();
            out.push(values);
        }
        let mut gpu_ns = Vec::new();
        if let Some(ts) = &program.timestamps {
            let ticks: Vec<u64> = {
                let view = ts
                    .staging
                    .slice(..)
                    .get_mapped_range()
                    .map_err(|e| Error::Gpu {
                        label: program.label.clone(),
                        message: e.to_string(),
                    })?;
                view.chunks_exact(8)
                    .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect()
            };
            ts.staging.unmap();
            let period = self.queue.get_timestamp_period() as f64;
            gpu_ns = ticks
                .chunks_exact(2)
                .map(|p| p[1].saturating_sub(p[0]) as f64 * period)
                .collect();
        }
        Ok(RunOutput {
            outputs: out,
            gpu_ns,
        })
    }
}
