//! Assembles a kernel's WGSL for a storage precision.
//!
//! Every kernel in shaders/ is written once against a small generated preamble:
//! - `E`: the element type loads return (f16 with native f16 storage, else f32);
//! - `load_<input>(i) -> E` for each input binding and `store_y(i, v: f32)` for the output;
//!   an input listed as `"vec4 <name>"` is bound as an array of 4-vectors and read four
//!   elements at a time with `load4_<name>(i) -> vec4<E>` (`i` counts 4-vectors), or one at a
//!   time with `load_<name>(i)` as usual (buffers are padded to 16 bytes);
//! - `store4_y(i, v: vec4<f32>)` for a kernel that uses it: elements i .. i + 3 (i a multiple
//!   of 4) in one store where the output is f32 or f16 and no view, the output then bound as
//!   an array of 4-vectors (`store_y` writes one component); else four `store_y`;
//! - `flat_id(...)`: the invocation's index in a 1-D grid spread over two dispatch dimensions;
//! - `activate(v, act)` and `activate4(v, act)`: the fused activation.
//!
//! The binding order is the same in every shader: 0 = the kernel's `Params` uniform (declared in
//! the kernel file), 1 = the output `y`, 2.. = the inputs in the order the [`Kernel`] lists them.
//! A kernel whose output is a view into a larger buffer (see `OutputView`) also gets the view's
//! uniform at binding 15, and `store_y` places each element through it: the kernels index their
//! output as a dense tensor either way. Where the view's items, strides and offset are multiples
//! of 4 elements ([`View::Vec4`]), `store4_y` still stores one 4-vector (its 4 elements stay
//! together and aligned in the larger buffer).

use super::Kernel;

/// How tensor elements are stored in GPU buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Storage {
    /// One f32 per element.
    F32,
    /// One f16 per element, read as f16 (needs SHADER_F16): f16 multiplies, f32 accumulation.
    F16,
    /// Two f16 per u32 for adapters without SHADER_F16: unpacked to f32 on load, arithmetic in
    /// f32, packed on store (each store updates its own half-word atomically).
    F16Packed,
}

impl Storage {
    /// Bytes per element.
    pub fn bytes_per_element(self) -> u64 {
        match self {
            Storage::F32 => 4,
            Storage::F16 | Storage::F16Packed => 2,
        }
    }
}

fn header(storage: Storage) -> &'static str {
    match storage {
        Storage::F32 => "alias E = f32;\n",
        Storage::F16 => "enable f16;\nalias E = f16;\n",
        Storage::F16Packed => "alias E = f32;\n",
    }
}

/// Binding of the output view uniform (`OutputView`) in kernels assembled with one.
pub(crate) const VIEW_BINDING: u32 = 15;

/// Where a kernel's output lies in its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum View {
    /// The whole buffer, dense.
    None,
    /// A view (`OutputView`): every element placed through it.
    Elements,
    /// A view whose items, strides and offset are multiples of 4 elements: 4 consecutive
    /// elements from a multiple of 4 land together on a 4-element boundary.
    Vec4,
}

fn output(name: &str, storage: Storage, view: View, vec4: bool) -> String {
    let viewed = view != View::None;
    // Element i of the output value lands at y_index(i): itself, or with a view (the value is
    // a slice of a larger buffer, such as a concat's channel range) at
    // offset + n * stride + (i - n * item) for item n = i / item. Every store of such a kernel
    // computes n, so it is divided in f32 and corrected by one step (exact while n, a batch
    // index, is under 2^21): CPU adapters divide a vector of integers one lane at a time
    // (GoogLeNet, whose inception branches write into their concat, 2.5% faster on lavapipe).
    let index = if viewed {
        format!(
            "@group(0) @binding({VIEW_BINDING}) var<uniform> {name}_view: vec4<u32>;\n\
             fn {name}_index(i: u32) -> u32 {{\n\
             \x20 let d = {name}_view.x;\n\
             \x20 var n = u32(f32(i) / f32(d));\n\
             \x20 let r = i32(i - n * d);\n\
             \x20 n = select(select(n, n + 1u, r >= i32(d)), n - 1u, r < 0);\n\
             \x20 return {name}_view.z + n * {name}_view.y + (i - n * {name}_view.x);\n\
             }}\n"
        )
    } else {
        format!("fn {name}_index(i: u32) -> u32 {{ return i; }}\n")
    };
    let ty = match storage {
        Storage::F32 => "f32",
        _ => "f16",
    };
    if vec4 && view != View::Elements && storage != Storage::F16Packed {
        // One store of a 4-vector instead of four of one element (on CPU adapters each store
        // is a scatter, one lane at a time).
        return index
            + &format!(
                "@group(0) @binding(1) var<storage, read_write> {name}: array<vec4<{ty}>>;\n\
                 fn store_{name}(i: u32, v: f32) {{\n\
                 \x20 let j = {name}_index(i);\n\
                 \x20 {name}[j >> 2u][j & 3u] = {ty}(v);\n\
                 }}\n\
                 fn store4_{name}(i: u32, v: vec4<f32>) {{\n\
                 \x20 {name}[{name}_index(i) >> 2u] = vec4<{ty}>(v);\n\
                 }}\n"
            );
    }
    let store4 = if vec4 {
        format!(
            "fn store4_{name}(i: u32, v: vec4<f32>) {{\n\
             \x20 store_{name}(i, v.x); store_{name}(i + 1u, v.y);\n\
             \x20 store_{name}(i + 2u, v.z); store_{name}(i + 3u, v.w);\n\
             }}\n"
        )
    } else {
        String::new()
    };
    let store = match storage {
        Storage::F32 => format!(
            "@group(0) @binding(1) var<storage, read_write> {name}: array<f32>;\n\
             fn store_{name}(i: u32, v: f32) {{ {name}[{name}_index(i)] = v; }}\n"
        ),
        Storage::F16 => format!(
            "@group(0) @binding(1) var<storage, read_write> {name}: array<f16>;\n\
             fn store_{name}(i: u32, v: f32) {{ {name}[{name}_index(i)] = f16(v); }}\n"
        ),
        // Two invocations may own the two halves of one word: each clears and sets only its
        // own half with atomic read-modify-writes, so the order between them does not matter.
        Storage::F16Packed => format!(
            "@group(0) @binding(1) var<storage, read_write> {name}: array<atomic<u32>>;\n\
             fn store_{name}(i: u32, v: f32) {{\n\
             \x20 let j = {name}_index(i);\n\
             \x20 let s = (j & 1u) * 16u;\n\
             \x20 let bits = (pack2x16float(vec2<f32>(v, 0.0)) & 0xffffu) << s;\n\
             \x20 atomicAnd(&{name}[j >> 1u], ~(0xffffu << s));\n\
             \x20 atomicOr(&{name}[j >> 1u], bits);\n\
             }}\n"
        ),
    };
    index + &store + &store4
}

fn input(binding: usize, name: &str, storage: Storage) -> String {
    if let Some(name) = name.strip_prefix("vec4 ") {
        return input_vec4(binding, name, storage);
    }
    match storage {
        Storage::F32 => format!(
            "@group(0) @binding({binding}) var<storage, read> {name}: array<f32>;\n\
             fn load_{name}(i: u32) -> E {{ return {name}[i]; }}\n"
        ),
        Storage::F16 => format!(
            "@group(0) @binding({binding}) var<storage, read> {name}: array<f16>;\n\
             fn load_{name}(i: u32) -> E {{ return {name}[i]; }}\n"
        ),
        Storage::F16Packed => format!(
            "@group(0) @binding({binding}) var<storage, read> {name}: array<u32>;\n\
             fn load_{name}(i: u32) -> E {{ return unpack2x16float({name}[i >> 1u])[i & 1u]; }}\n"
        ),
    }
}

fn input_vec4(binding: usize, name: &str, storage: Storage) -> String {
    match storage {
        Storage::F32 => format!(
            "@group(0) @binding({binding}) var<storage, read> {name}: array<vec4<f32>>;\n\
             fn load4_{name}(i: u32) -> vec4<E> {{ return {name}[i]; }}\n\
             fn load_{name}(i: u32) -> E {{ return {name}[i >> 2u][i & 3u]; }}\n"
        ),
        Storage::F16 => format!(
            "@group(0) @binding({binding}) var<storage, read> {name}: array<vec4<f16>>;\n\
             fn load4_{name}(i: u32) -> vec4<E> {{ return {name}[i]; }}\n\
             fn load_{name}(i: u32) -> E {{ return {name}[i >> 2u][i & 3u]; }}\n"
        ),
        Storage::F16Packed => format!(
            "@group(0) @binding({binding}) var<storage, read> {name}: array<vec2<u32>>;\n\
             fn load4_{name}(i: u32) -> vec4<E> {{\n\
             \x20 let v = {name}[i];\n\
             \x20 return vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y));\n\
             }}\n\
             fn load_{name}(i: u32) -> E {{\n\
             \x20 return unpack2x16float({name}[i >> 2u][(i >> 1u) & 1u])[i & 1u];\n\
             }}\n"
        ),
    }
}

const COMMON: &str = "
const WG: u32 = 64u;
// The invocation's index in a 1-D grid of WG-wide workgroups laid out over x and y, so grids
// larger than the per-dimension workgroup limit still fit.
fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid;
}
// Fused activation: 0 none, 1 relu, 2 relu6. Selects, not branches: `act` comes from a
// uniform, which CPU adapters do not know to be uniform, so branches on it were divergent
// control flow around every store, and that alone made gallivm compile some kernels' loops
// 1.6-2x slower (docs/results/lavapipe-branchless-activation.txt).
fn activate(v: f32, act: u32) -> f32 {
  let r = select(v, max(v, 0.0), act != 0u);
  return select(r, min(r, 6.0), act == 2u);
}
fn activate4(v: vec4<f32>, act: u32) -> vec4<f32> {
  let r = select(v, max(v, vec4<f32>(0.0)), act != 0u);
  return select(r, min(r, vec4<f32>(6.0)), act == 2u);
}
";

/// The full WGSL of `kernel` for `storage`, its output placed as `view` says.
pub(crate) fn assemble(kernel: &Kernel, storage: Storage, view: View) -> String {
    let mut s = String::new();
    if cfg!(target_arch = "wasm32") && kernel.source.contains("subgroupBroadcast") {
        s.push_str("enable subgroups;\n");
    }
    s.push_str(header(storage));
    s.push_str(COMMON);
    let vec4 = kernel.source.contains("store4_y(");
    s.push_str(&output("y", storage, view, vec4));
    for (i, name) in kernel.inputs.iter().enumerate() {
        s.push_str(&input(i + 2, name, storage));
    }
    s.push_str(kernel.source);
    s
}
