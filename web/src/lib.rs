//! deeproots in the browser: JavaScript bindings to the engine's async API on WebGPU.
//!
//! The engine's code is the same as on native targets; this crate only converts between
//! JavaScript values and the engine's types. Every method that touches the GPU returns a
//! promise, and nothing here blocks.
//!
//! ```js
//! import init, { Engine } from "./pkg/deeproots_web.js";
//! await init();
//! const engine = await Engine.create();
//! const model = engine.load(new Uint8Array(await (await fetch(url)).arrayBuffer()));
//! const logits = await model.run(model.imageInput(pngBytes), 1);
//! ```

use deeproots::{Executor, GpuOptions, Model as HostModel, Precision, Tensor, TuneCache, Tuning};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

fn js_err(e: deeproots::Error) -> JsError {
    JsError::new(&e.to_string())
}

/// `batch` images of the first input's shape, NCHW, from `data`.
fn batch_tensor(exec: &Executor, data: Vec<f32>, batch: u32) -> Result<Tensor, JsError> {
    let mut shape = vec![batch as usize];
    shape.extend(&exec.graph().inputs[0].shape);
    Tensor::new(shape, data).map_err(js_err)
}

/// An open WebGPU device.
#[wasm_bindgen]
pub struct Engine {
    engine: deeproots::Engine,
    /// Kernel choices measured by `loadTuned`, for the page's lifetime.
    cache: Rc<RefCell<TuneCache>>,
}

#[wasm_bindgen]
impl Engine {
    /// Opens the browser's WebGPU adapter (high-performance preference).
    pub async fn create() -> Result<Engine, JsError> {
        let engine = deeproots::Engine::new_async(&GpuOptions::default())
            .await
            .map_err(js_err)?;
        Ok(Engine {
            engine,
            cache: Rc::default(),
        })
    }

    /// The adapter, in one line: name, backend, device type, driver.
    pub fn adapter(&self) -> String {
        let a = self.engine.gpu().adapter();
        let name = if a.name.is_empty() {
            "WebGPU adapter"
        } else {
            &a.name
        };
        let mut s = format!("{name} ({}, {}", a.backend, a.device_type);
        if !a.driver.is_empty() {
            s += &format!(", {}", a.driver);
        }
        s + ")"
    }

    /// Loads a model file (the bytes of a `.safetensors` deeproots model) in f32; batch norms
    /// are folded into the convolutions as on native targets.
    pub fn load(&self, bytes: &[u8]) -> Result<Model, JsError> {
        let host = HostModel::from_bytes(bytes)
            .and_then(HostModel::fold_batch_norms)
            .map_err(js_err)?;
        let exec = self.engine.load(&host, Precision::F32).map_err(js_err)?;
        Ok(Model {
            exec: Rc::new(exec),
            tuning: None,
        })
    }

    /// [`Engine::load`] with each convolution's kernel measured on this adapter for `batch`
    /// images (the fastest kept; choices are remembered by this engine, so a second load of
    /// the same shapes measures nothing). Resolves to the model. Without timestamp queries
    /// every layer keeps the default kernel.
    #[wasm_bindgen(js_name = loadTuned)]
    pub fn load_tuned(&self, bytes: &[u8], batch: u32) -> js_sys::Promise {
        let engine = self.engine.clone();
        let cache = self.cache.clone();
        let host = HostModel::from_bytes(bytes).and_then(HostModel::fold_batch_norms);
        future_to_promise(async move {
            let host = host.map_err(js_err)?;
            // The cache leaves its cell while the tuner awaits, so nothing borrows across.
            let mut c = std::mem::take(&mut *cache.borrow_mut());
            let tuned = engine
                .load_tuned_async(
                    &host,
                    Precision::F32,
                    batch as usize,
                    &mut c,
                    &mut |_, _| {},
                )
                .await;
            *cache.borrow_mut() = c;
            let (exec, tuning) = tuned.map_err(js_err)?;
            Ok(Model {
                exec: Rc::new(exec),
                tuning: Some(Rc::new(tuning)),
            }
            .into())
        })
    }
}

/// A model loaded on the device.
#[wasm_bindgen]
pub struct Model {
    exec: Rc<Executor>,
    tuning: Option<Rc<Tuning>>,
}

#[wasm_bindgen]
impl Model {
    /// The model's name.
    pub fn name(&self) -> String {
        self.exec.graph().name.clone()
    }

    /// The first input's shape without the batch dimension (C, H, W).
    #[wasm_bindgen(js_name = inputShape)]
    pub fn input_shape(&self) -> Vec<u32> {
        self.exec.graph().inputs[0]
            .shape
            .iter()
            .map(|&d| d as u32)
            .collect()
    }

    /// What `loadTuned` measured: `[{node, rule, chosen, ms, cached, candidates: [{kernel, ms}]}]`
    /// per convolution (empty for a model loaded with `load`).
    pub fn tuning(&self) -> Result<js_sys::Array, JsError> {
        let out = js_sys::Array::new();
        let set = |o: &js_sys::Object, k: &str, v: JsValue| {
            js_sys::Reflect::set(o, &k.into(), &v).map(|_| ())
        };
        for l in self.tuning.iter().flat_map(|t| &t.layers) {
            let o = js_sys::Object::new();
            let err = |_| JsError::new("cannot build the tuning object");
            set(&o, "node", l.node.clone().into()).map_err(err)?;
            set(&o, "rule", l.rule.name().into()).map_err(err)?;
            set(&o, "chosen", l.chosen.name().into()).map_err(err)?;
            set(&o, "ms", l.ms.into()).map_err(err)?;
            set(&o, "cached", l.cached.into()).map_err(err)?;
            let cands = js_sys::Array::new();
            for c in &l.candidates {
                let co = js_sys::Object::new();
                set(&co, "kernel", c.algorithm.name().into()).map_err(err)?;
                set(&co, "ms", c.ms.map_or(JsValue::NULL, JsValue::from)).map_err(err)?;
                cands.push(&co);
            }
            set(&o, "candidates", cands.into()).map_err(err)?;
            out.push(&o);
        }
        Ok(out)
    }

    /// Class names, index = class (empty when the file has none).
    pub fn labels(&self) -> Vec<String> {
        self.exec.graph().labels.clone()
    }

    /// Multiply-adds of one image.
    #[wasm_bindgen(js_name = multiplyAdds)]
    pub fn multiply_adds(&self) -> f64 {
        self.exec.graph().total_cost().multiply_adds as f64
    }

    /// An image file's bytes (PNG or JPEG) as the model's input for one image: decoded,
    /// resized, cropped and normalized as the model file's preprocess says.
    #[wasm_bindgen(js_name = imageInput)]
    pub fn image_input(&self, bytes: &[u8]) -> Result<Vec<f32>, JsError> {
        let input = &self.exec.graph().inputs[0];
        deeproots::preprocess::load_bytes("image", bytes, input)
            .map(Tensor::into_data)
            .map_err(js_err)
    }

    /// Pixels already at the input's size (row-major, channels interleaved, 0..255) as the
    /// model's input for one image, normalized as the model file's preprocess says.
    #[wasm_bindgen(js_name = pixelsInput)]
    pub fn pixels_input(&self, pixels: &[u8]) -> Result<Vec<f32>, JsError> {
        let input = &self.exec.graph().inputs[0];
        deeproots::preprocess::normalize("pixels", pixels, input)
            .map(Tensor::into_data)
            .map_err(js_err)
    }

    /// Runs `batch` images once with a GPU timestamp around every dispatch and resolves to
    /// `[{node, ms}, ...]` in dispatch order (empty where the adapter has no timestamp queries).
    pub fn profile(&self, data: Vec<f32>, batch: u32) -> js_sys::Promise {
        let exec = self.exec.clone();
        future_to_promise(async move {
            let x = batch_tensor(&exec, data, batch)?;
            let (_, times) = exec.profile_async(&[&x]).await.map_err(js_err)?;
            let out = js_sys::Array::new();
            for t in times {
                let o = js_sys::Object::new();
                js_sys::Reflect::set(&o, &"node".into(), &t.node.into())?;
                js_sys::Reflect::set(&o, &"ms".into(), &(t.ns / 1e6).into())?;
                out.push(&o);
            }
            Ok(out.into())
        })
    }

    /// Runs `batch` images (`data` holds batch x C x H x W values, NCHW) and resolves to the
    /// first output (batch x classes logits for a classifier) as a Float32Array.
    pub fn run(&self, data: Vec<f32>, batch: u32) -> js_sys::Promise {
        let exec = self.exec.clone();
        future_to_promise(async move {
            let x = batch_tensor(&exec, data, batch)?;
            let out = exec.run_async(&[&x]).await.map_err(js_err)?;
            let first = out
                .into_iter()
                .next()
                .ok_or_else(|| JsError::new("the model has no output"))?;
            Ok(js_sys::Float32Array::from(first.data()).into())
        })
    }
}
