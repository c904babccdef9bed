// matmul8: the matmul of shaders/matmul.wgsl for CPU adapters, C[b, g] = act(A[g] * B[b, g] +
// bias[g]) with 8 rows x 4 adjacent columns per invocation: two 4-vector weight loads and four
// B loads feed 32 multiply-adds (matmul.wgsl: eight loads for 16). A is repacked at load to
// [groups, K, MP] (MP = M rounded up to 8, zero-filled), as for the implicit GEMM, so a tile's
// 8 rows are two adjacent 4-vectors. A workgroup of 8 x 8 covers 64 rows x 32 columns.
// With VEC_B the four columns are read as one 4-vector: for B with unit column stride and every
// other stride, and N, multiples of 4 (pointwise convolutions whose H*W is).
// Bindings: 0 Params (uniform, as matmul.wgsl), 1 y (C), 2 x (B, bound as 4-vectors), 3 w (A
// repacked), 4 b (bias).
// Overrides: VEC_B (bool), WARM (warm_rows, below). Grid: x = ceil(N / 32), y = ceil(M / 64),
// z = batches * groups.
struct Params {
  m: u32, n: u32, k: u32, groups: u32,
  sb_b: u32, sb_g: u32, sb_k: u32, sb_n: u32,
  sc_b: u32, sc_g: u32, sc_m: u32, sc_n: u32,
  act: u32, wx: u32, batches: u32, zero: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
override VEC_B: bool = false;

// WARM (CPU adapters): before its K loop an invocation that `leads` reads one element of B in
// each of the K rows from element offset `first`, so that the loop finds its columns' lines in
// the caches. A row of NCHW maps lies in its own 4 KiB page (32 x 32 maps) or near it, and a
// K loop that reads a few lines of each row in turn gives the hardware prefetchers nothing to
// follow: on lavapipe a quarter of the 1x1 layers' time was spent waiting for the first line
// of each row (docs/results/lavapipe-warm-rows.txt). The loads are independent, so the CPU
// keeps many in flight. The kernels keep the sum through `kept` (p.zero is always 0), so that
// the loads are not removed as unused; without WARM this is 0.
override WARM: bool = false;

fn warm_rows(first: u32, leads: bool) -> f32 {
  var s = 0.0;
  if (WARM && leads) {
    var o = first;
    for (var k = 0u; k < p.k; k++) {
      s += f32(load_x(o));
      o += p.sb_k;
    }
  }
  return s;
}

// 0.0 whatever `warmed` holds (p.zero is always 0), without the compiler knowing it.
fn kept(warmed: f32) -> f32 {
  return select(0.0, warmed, p.zero != 0u);
}

// Four columns n0 .. n0 + 3 of B at batch/group offset b_base: their element offsets at k = 0
// (a column past the edge reads the last one) and, for VEC_B, the 4-vector that holds them (past
// the edge the last whole one: N is then a multiple of 4). Columns past the edge are never
// stored.
struct Cols4 { c0: u32, c1: u32, c2: u32, c3: u32, v: u32, }

fn cols4(b_base: u32, n0: u32) -> Cols4 {
  let last = p.n - 1u;
  return Cols4(b_base + min(n0, last) * p.sb_n, b_base + min(n0 + 1u, last) * p.sb_n,
               b_base + min(n0 + 2u, last) * p.sb_n, b_base + min(n0 + 3u, last) * p.sb_n,
               (b_base + min(n0, p.n - 4u) * p.sb_n) / 4u);
}

// The four columns' elements at row offset kb (k * sb_k).
fn load_cols4(c: Cols4, kb: u32) -> vec4<E> {
  if (VEC_B) { return load4_x(c.v + kb / 4u); }
  return vec4<E>(load_x(c.c0 + kb), load_x(c.c1 + kb), load_x(c.c2 + kb), load_x(c.c3 + kb));
}

// Column n of rows m0 .. m0 + 3, with the bias of those rows.
fn store_col(c_base: u32, m0: u32, n: u32, acc: vec4<f32>, bias_base: u32) {
  if (n >= p.n) { return; }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + i;
    if (m < p.m) {
      store_y(c_base + m * p.sc_m + n * p.sc_n, activate(acc[i] + f32(load_b(bias_base + m)), p.act));
    }
  }
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let g = wid.z % p.groups;
  let b = wid.z / p.groups;
  let m0 = (wid.y * 8u + lid.y) * 8u;
  let n0 = (wid.x * 8u + lid.x) * 4u;
  if (m0 >= p.m || n0 >= p.n) { return; }
  let mp = (p.m + 7u) / 8u * 8u;
  // Columns past the edge read a valid element and are never stored.
  let b_base = b * p.sb_b + g * p.sb_g;
  let cols = cols4(b_base, n0);
  // The first row of the workgroup, one invocation per 16 columns (a 64-byte line).
  let warmed = warm_rows(cols.c0, lid.y == 0u && lid.x % 4u == 0u);
  // lo: rows m0 .. m0 + 3, hi: rows m0 + 4 .. m0 + 7; one accumulator per column each.
  var lo0 = vec4<f32>(kept(warmed), 0.0, 0.0, 0.0);
  var lo1 = vec4<f32>(0.0);
  var lo2 = vec4<f32>(0.0);
  var lo3 = vec4<f32>(0.0);
  var hi0 = vec4<f32>(0.0);
  var hi1 = vec4<f32>(0.0);
  var hi2 = vec4<f32>(0.0);
  var hi3 = vec4<f32>(0.0);
  var wi = (g * p.k * mp + m0) / 4u;
  let step = mp / 4u;
  var kb = 0u;
  for (var kk = 0u; kk < p.k; kk++) {
    let a = load4_w(wi);
    let c = load4_w(wi + 1u);
    wi += step;
    let xv = load_cols4(cols, kb);
    kb += p.sb_k;
    let x0 = xv.x;
    let x1 = xv.y;
    let x2 = xv.z;
    let x3 = xv.w;
    lo0 += vec4<f32>(a * x0);
    lo1 += vec4<f32>(a * x1);
    lo2 += vec4<f32>(a * x2);
    lo3 += vec4<f32>(a * x3);
    hi0 += vec4<f32>(c * x0);
    hi1 += vec4<f32>(c * x1);
    hi2 += vec4<f32>(c * x2);
    hi3 += vec4<f32>(c * x3);
  }
  let c_base = b * p.sc_b + g * p.sc_g;
  let bias_base = g * p.m;
  store_col(c_base, m0, n0, lo0, bias_base);
  store_col(c_base, m0, n0 + 1u, lo1, bias_base);
  store_col(c_base, m0, n0 + 2u, lo2, bias_base);
  store_col(c_base, m0, n0 + 3u, lo3, bias_base);
  store_col(c_base, m0 + 4u, n0, hi0, bias_base);
  store_col(c_base, m0 + 4u, n0 + 1u, hi1, bias_base);
  store_col(c_base, m0 + 4u, n0 + 2u, hi2, bias_base);
  store_col(c_base, m0 + 4u, n0 + 3u, hi3, bias_base);
}


// main_x8: 8 rows x 8 adjacent columns per invocation (two groups of four columns, each read
// as one 4-vector with VEC_B): 16 loads feed 64 multiply-adds where `main` needs 12 for 32, at
// the price of twice the accumulators. A workgroup of 8 x 8 covers 64 rows x 64 columns.
// Grid: x = ceil(N / 64), y = ceil(M / 64), z = batches * groups.
@compute @workgroup_size(8, 8, 1)
fn main_x8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let g = wid.z % p.groups;
  let b = wid.z / p.groups;
  let m0 = (wid.y * 8u + lid.y) * 8u;
  let n0 = (wid.x * 8u + lid.x) * 8u;
  if (m0 >= p.m || n0 >= p.n) { return; }
  let mp = (p.m + 7u) / 8u * 8u;
  // Columns past the edge read a valid element and are never stored.
  let b_base = b * p.sb_b + g * p.sb_g;
  let cols_lo = cols4(b_base, n0);
  let cols_hi = cols4(b_base, n0 + 4u);
  let warmed = warm_rows(cols_lo.c0, lid.y == 0u && lid.x % 2u == 0u);
  // lo: rows m0 .. m0 + 3, hi: rows m0 + 4 .. m0 + 7; one accumulator per column each.
  var lo0 = vec4<f32>(kept(warmed), 0.0, 0.0, 0.0);
  var lo1 = vec4<f32>(0.0);
  var lo2 = vec4<f32>(0.0);
  var lo3 = vec4<f32>(0.0);
  var lo4 = vec4<f32>(0.0);
  var lo5 = vec4<f32>(0.0);
  var lo6 = vec4<f32>(0.0);
  var lo7 = vec4<f32>(0.0);
  var hi0 = vec4<f32>(0.0);
  var hi1 = vec4<f32>(0.0);
  var hi2 = vec4<f32>(0.0);
  var hi3 = vec4<f32>(0.0);
  var hi4 = vec4<f32>(0.0);
  var hi5 = vec4<f32>(0.0);
  var hi6 = vec4<f32>(0.0);
  var hi7 = vec4<f32>(0.0);
  var wi = (g * p.k * mp + m0) / 4u;
  let step = mp / 4u;
  var kb = 0u;
  for (var kk = 0u; kk < p.k; kk++) {
    let a = vec4<f32>(load4_w(wi));
    let h = vec4<f32>(load4_w(wi + 1u));
    wi += step;
    let x0 = vec4<f32>(load_cols4(cols_lo, kb));
    let x1 = vec4<f32>(load_cols4(cols_hi, kb));
    kb += p.sb_k;
    lo0 += a * x0.x;
    lo1 += a * x0.y;
    lo2 += a * x0.z;
    lo3 += a * x0.w;
    lo4 += a * x1.x;
    lo5 += a * x1.y;
    lo6 += a * x1.z;
    lo7 += a * x1.w;
    hi0 += h * x0.x;
    hi1 += h * x0.y;
    hi2 += h * x0.z;
    hi3 += h * x0.w;
    hi4 += h * x1.x;
    hi5 += h * x1.y;
    hi6 += h * x1.z;
    hi7 += h * x1.w;
  }
  let c_base = b * p.sc_b + g * p.sc_g;
  let bias_base = g * p.m;
  store_col(c_base, m0, n0 + 0u, lo0, bias_base);
  store_col(c_base, m0, n0 + 1u, lo1, bias_base);
  store_col(c_base, m0, n0 + 2u, lo2, bias_base);
  store_col(c_base, m0, n0 + 3u, lo3, bias_base);
  store_col(c_base, m0, n0 + 4u, lo4, bias_base);
  store_col(c_base, m0, n0 + 5u, lo5, bias_base);
  store_col(c_base, m0, n0 + 6u, lo6, bias_base);
  store_col(c_base, m0, n0 + 7u, lo7, bias_base);
  store_col(c_base, m0 + 4u, n0 + 0u, hi0, bias_base);
  store_col(c_base, m0 + 4u, n0 + 1u, hi1, bias_base);
  store_col(c_base, m0 + 4u, n0 + 2u, hi2, bias_base);
  store_col(c_base, m0 + 4u, n0 + 3u, hi3, bias_base);
  store_col(c_base, m0 + 4u, n0 + 4u, hi4, bias_base);
  store_col(c_base, m0 + 4u, n0 + 5u, hi5, bias_base);
  store_col(c_base, m0 + 4u, n0 + 6u, hi6, bias_base);
  store_col(c_base, m0 + 4u, n0 + 7u, hi7, bias_base);
}
