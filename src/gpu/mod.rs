//! Everything that touches wgpu: adapter and device selection, limits and features, the
//! pipeline cache, buffers, programs (pipelines + bind groups made once, run many times), and
//! error scopes that turn wgpu's validation and out-of-memory errors into [`Error`]s.
//!
//! The rest of the crate speaks in this module's types ([`Gpu`], [`GpuBuffer`], [`Dispatch`],
//! [`Program`]) so wgpu's API churn stays here.

mod program;
mod shader;

pub use program::{Dispatch, GpuBuffer, Kernel, OutputView, Program, RunOutput, Timing};
pub use shader::Storage;

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A graphics API wgpu can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Vulkan (Linux, Windows, Android; lavapipe in software).
    Vulkan,
    /// Metal (macOS, iOS).
    Metal,
    /// Direct3D 12 (Windows).
    Dx12,
    /// OpenGL / GLES (llvmpipe in software).
    Gl,
}

impl Backend {
    /// Parses `vulkan | metal | dx12 | gl` (case-insensitive).
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "vulkan" | "vk" => Ok(Self::Vulkan),
            "metal" => Ok(Self::Metal),
            "dx12" | "d3d12" => Ok(Self::Dx12),
            "gl" | "gles" | "opengl" => Ok(Self::Gl),
            _ => Err(Error::UnknownBackend(s.to_string())),
        }
    }

    /// The backend named by `DEEPROOTS_BACKEND`, if set and not empty.
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var("DEEPROOTS_BACKEND") {
            Ok(s) if !s.trim().is_empty() => Self::parse(&s).map(Some),
            _ => Ok(None),
        }
    }

    fn to_wgpu(self) -> wgpu::Backends {
        match self {
            Self::Vulkan => wgpu::Backends::VULKAN,
            Self::Metal => wgpu::Backends::METAL,
            Self::Dx12 => wgpu::Backends::DX12,
            Self::Gl => wgpu::Backends::GL,
        }
    }
}

/// How to pick the adapter.
#[derive(Debug, Clone, Default)]
pub struct GpuOptions {
    /// Restrict to one backend; `None` = all, best adapter first (hardware before software).
    pub backend: Option<Backend>,
    /// Use native f16 arithmetic when the adapter has SHADER_F16 (default true). When false, or
    /// when the adapter lacks it, f16 tensors are stored packed two per u32 and computed in f32.
    pub disable_shader_f16: bool,
}

impl GpuOptions {
    /// Options from the environment: `DEEPROOTS_BACKEND`.
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            backend: Backend::from_env()?,
            disable_shader_f16: false,
        })
    }
}

/// What we know about an adapter, in our own terms.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    /// The adapter's name.
    pub name: String,
    /// Backend (Vulkan, Gl, ...).
    pub backend: String,
    /// Discrete, integrated, virtual, CPU or other.
    pub device_type: String,
    /// Driver name.
    pub driver: String,
    /// Driver version / details.
    pub driver_info: String,
    /// SHADER_F16 is available.
    pub shader_f16: bool,
    /// Timestamp queries are available.
    pub timestamp_query: bool,
    /// Subgroup operations are available (and requested on the device).
    pub subgroups: bool,
    /// The smallest subgroup the adapter may run (0 when unknown).
    pub subgroup_min_size: u32,
    /// The largest subgroup the adapter may run (0 when unknown).
    pub subgroup_max_size: u32,
    /// Largest storage buffer binding, bytes.
    pub max_storage_buffer_binding_size: u64,
    /// Largest buffer, bytes.
    pub max_buffer_size: u64,
    /// Largest workgroup count per dimension.
    pub max_compute_workgroups_per_dimension: u32,
    /// Largest workgroup invocation count.
    pub max_compute_invocations_per_workgroup: u32,
    /// Shared (workgroup) memory, bytes.
    pub max_compute_workgroup_storage_size: u32,
}

fn summarize(adapter: &wgpu::Adapter) -> AdapterSummary {
    let info = adapter.get_info();
    let limits = adapter.limits();
    let features = adapter.features();
    AdapterSummary {
        name: info.name,
        backend: info.backend.to_string(),
        device_type: format!("{:?}", info.device_type),
        driver: info.driver,
        driver_info: info.driver_info,
        shader_f16: features.contains(wgpu::Features::SHADER_F16),
        timestamp_query: features.contains(wgpu::Features::TIMESTAMP_QUERY),
        subgroups: features.contains(wgpu::Features::SUBGROUP),
        subgroup_min_size: info.subgroup_min_size,
        subgroup_max_size: info.subgroup_max_size,
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
        max_buffer_size: limits.max_buffer_size,
        max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
        max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
    }
}

fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

fn backends_of(backend: Option<Backend>) -> wgpu::Backends {
    backend.map_or(wgpu::Backends::all(), Backend::to_wgpu)
}

/// Every adapter wgpu finds for `backend` (all backends when `None`).
#[cfg(not(target_arch = "wasm32"))]
pub fn list_adapters(backend: Option<Backend>) -> Vec<AdapterSummary> {
    pollster::block_on(list_adapters_async(backend))
}

/// The async form of [`list_adapters`]. In a browser this is the one adapter WebGPU offers.
pub async fn list_adapters_async(backend: Option<Backend>) -> Vec<AdapterSummary> {
    adapters(backend).await.iter().map(summarize).collect()
}

/// The adapters for `backend`, best first (hardware before software).
async fn adapters(backend: Option<Backend>) -> Vec<wgpu::Adapter> {
    let backends = backends_of(backend);
    let inst = instance(backends);
    // WebGPU has no adapter enumeration: ask for the high-performance one.
    #[cfg(target_arch = "wasm32")]
    let mut all: Vec<wgpu::Adapter> = inst
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        })
        .await
        .into_iter()
        .collect();
    #[cfg(not(target_arch = "wasm32"))]
    let mut all = inst.enumerate_adapters(backends).await;
    all.sort_by_key(|a| rank(a.get_info().device_type));
    all
}

/// Lower is better: hardware before software.
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

#[derive(Hash, PartialEq, Eq, Clone)]
struct PipelineKey {
    kernel: &'static str,
    entry: &'static str,
    storage: Storage,
    constants: Vec<(&'static str, u64)>,
    view: shader::View,
}

/// An open device: the adapter, its queue, the pipeline cache, and the one lock that
/// serializes submit + wait (wgpu-core 30.0.2 can panic when several threads submit and wait on
/// one device at once, so the engine never does).
pub struct Gpu {
    summary: AdapterSummary,
    device: wgpu::Device,
    queue: wgpu::Queue,
    shader_f16: bool,
    pipelines: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
    submit_lock: async_lock::Mutex<()>,
    /// Errors no scope caught (wgpu's default handler would panic); reported at the next run.
    uncaptured: Arc<Mutex<Option<String>>>,
    lost: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("adapter", &self.summary)
            .finish()
    }
}

impl Gpu {
    /// Opens the best adapter for `options` (hardware before software).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(options: &GpuOptions) -> Result<Self> {
        pollster::block_on(Self::new_async(options))
    }

    /// Opens the best adapter for the backend named by `DEEPROOTS_BACKEND` (all when unset).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_env() -> Result<Self> {
        Self::new(&GpuOptions::from_env()?)
    }

    /// The async form of [`Gpu::new`], for targets where nothing may block.
    pub async fn new_async(options: &GpuOptions) -> Result<Self> {
        let adapter = adapters(options.backend)
            .await
            .into_iter()
            .next()
            .ok_or_else(|| Error::NoAdapter {
                backends: options
                    .backend
                    .map_or("any".to_string(), |b| format!("{b:?}")),
            })?;
        let summary = summarize(&adapter);
        let shader_f16 = summary.shader_f16 && !options.disable_shader_f16;
        let mut features = wgpu::Features::empty();
        if shader_f16 {
            features |= wgpu::Features::SHADER_F16;
        }
        if summary.timestamp_query {
            features |= wgpu::Features::TIMESTAMP_QUERY;
        }
        if summary.subgroups {
            features |= wgpu::Features::SUBGROUP;
        }
        // Ask for everything the adapter offers: real models need large storage bindings.
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("deeproots"),
                required_features: features,
                required_limits: adapter.limits(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::RequestDevice {
                adapter: summary.name.clone(),
                message: e.to_string(),
            })?;
        let uncaptured = Arc::new(Mutex::new(None));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut slot) = sink.lock() {
                slot.get_or_insert_with(|| e.to_string());
            }
        }));
        let lost = Arc::new(Mutex::new(None));
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut slot) = lost_sink.lock() {
                *slot = Some(format!("{reason:?}: {message}"));
            }
        });
        Ok(Self {
            summary,
            device,
            queue,
            shader_f16,
            pipelines: Mutex::new(HashMap::new()),
            submit_lock: async_lock::Mutex::new(()),
            uncaptured,
            lost,
        })
    }

    /// The adapter this device runs on.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.summary
    }

    /// How f16 tensors are stored on this device.
    pub fn f16_storage(&self) -> Storage {
        if self.shader_f16 {
            Storage::F16
        } else {
            Storage::F16Packed
        }
    }

    /// The storage for a precision on this device.
    pub fn storage(&self, precision: crate::Precision) -> Storage {
        match precision {
            crate::Precision::F32 => Storage::F32,
            crate::Precision::F16 => self.f16_storage(),
        }
    }

    /// Largest storage buffer binding, bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        self.summary.max_storage_buffer_binding_size
    }

    /// Largest workgroup count per dispatch dimension.
    pub fn max_workgroups(&self) -> u32 {
        self.summary.max_compute_workgroups_per_dimension
    }

    fn check_health(&self, label: &str) -> Result<()> {
        if let Some(msg) = self.lost.lock().ok().and_then(|s| s.clone()) {
            return Err(Error::DeviceLost(msg));
        }
        if let Some(msg) = self.uncaptured.lock().ok().and_then(|mut s| s.take()) {
            return Err(Error::Gpu {
                label: label.to_string(),
                message: msg,
            });
        }
        Ok(())
    }

    /// Runs `f` inside validation and out-of-memory error scopes and turns what they catch
    /// into an [`Error`] naming `label`.
    ///
    /// In a browser nothing may block, so there the scopes are left out: an error of `f` reaches
    /// the uncaptured-error handler and is reported by the next run, whose own scopes are
    /// awaited ([`Gpu::scoped_async`]).
    fn scoped<T>(&self, label: &str, f: impl FnOnce() -> T) -> Result<T> {
        #[cfg(not(target_arch = "wasm32"))]
        return pollster::block_on(self.scoped_async(label, f));
        #[cfg(target_arch = "wasm32")]
        {
            self.check_health(label)?;
            Ok(f())
        }
    }

    /// [`Gpu::scoped`], awaiting the error scopes.
    async fn scoped_async<T>(&self, label: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        // Pop both before awaiting: the guards are per thread and must not live across an await.
        let (v, o) = (validation.pop(), oom.pop());
        let (v, o) = (v.await, o.await);
        if let Some(e) = o {
            let _ = e;
            return Err(Error::OutOfMemory {
                label: label.to_string(),
            });
        }
        if let Some(e) = v {
            return Err(Error::Gpu {
                label: label.to_string(),
                message: e.to_string(),
            });
        }
        self.check_health(label)?;
        Ok(out)
    }

    fn pipeline(
        &self,
        kernel: &'static Kernel,
        storage: Storage,
        constants: &[(&'static str, f64)],
        view: shader::View,
    ) -> Result<wgpu::ComputePipeline> {
        let key = PipelineKey {
            kernel: kernel.name,
            entry: kernel.entry,
            storage,
            constants: constants.iter().map(|&(k, v)| (k, v.to_bits())).collect(),
            view,
        };
        if let Some(p) = self
            .pipelines
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
        {
            return Ok(p);
        }
        let source = shader::assemble(kernel, storage, view);
        let label = format!("{}[{storage:?}]", kernel.name);
        let pipeline = self.scoped(&label, || {
            let module = self
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(&label),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                });
            // The layout comes from the shader so bindings are written down once.
            self.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&label),
                    layout: None,
                    module: &module,
                    entry_point: Some(kernel.entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants,
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                })
        })?;
        if let Ok(mut cache) = self.pipelines.lock() {
            cache.insert(key, pipeline.clone());
        }
        Ok(pipeline)
    }

    /// Buffers alive on the device (wgpu's internal counter): for leak checks.
    pub fn live_buffers(&self) -> isize {
        self.device.get_internal_counters().hal.buffers.read()
    }

    /// Destroys the device, as a driver reset would: every later call on this `Gpu` (and on
    /// engines and executors made from it) fails with [`Error::DeviceLost`]. For testing how an
    /// application recovers; a new [`Gpu`] can be opened afterwards.
    pub fn destroy(&self) {
        self.device.destroy();
        if let Ok(mut slot) = self.lost.lock() {
            slot.get_or_insert_with(|| "destroyed by the application".to_string());
        }
    }

    /// Number of compiled pipelines in the cache.
    pub fn cached_pipelines(&self) -> usize {
        self.pipelines.lock().map(|c| c.len()).unwrap_or(0)
    }
}
