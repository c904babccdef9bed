// matmul: C[b, g] = act(A[g] * B[b, g] + bias[g]) for every batch b and group g, where A holds
// the weights ([groups * M, K], row-major) and B and C are addressed through strides, so the
// same kernel serves 1x1 convolutions (B = activations [C_in, H*W]) and linear layers.
// Each invocation keeps a 4 x 4 register tile in four vec4 accumulators (rows m0 + 8i, columns
// n0 + 8j), written out without arrays so no compiler spills them to memory; a workgroup of
// 8 x 8 covers 32 x 32 outputs.
// Entry `main_split` (workgroup 8 x 8 x KSPLIT) gives each z-slice a share of K and sums the
// slices' partial tiles through workgroup memory, so layers with few tiles and a long K (late
// stages, classifiers at small batch) keep more invocations busy. Only that entry point uses
// workgroup memory, so `main` keeps full occupancy.
// Bindings: 0 Params (uniform), 1 y (C), 2 x (B), 3 w (A), 4 b (bias [groups * M]).
// Overrides: KSPLIT (2 or 4, main_split only). Grid: x = ceil(N / 32), y = ceil(M / 32), z = batches * groups.
struct Params {
  m: u32, n: u32, k: u32, groups: u32,
  sb_b: u32, sb_g: u32, sb_k: u32, sb_n: u32,
  sc_b: u32, sc_g: u32, sc_m: u32, sc_n: u32,
  act: u32, wx: u32,
}
@group(0) @binding(0) var<uniform> p: Params;

override KSPLIT: u32 = 4u;
// Partial tiles of slices 1.. (4 vec4 per invocation, at most 4 slices).
var<workgroup> partial: array<vec4<f32>, 1024>;

fn store_row(c_base: u32, m: u32, n0: u32, acc: vec4<f32>, bias: f32) {
  if (m >= p.m) { return; }
  for (var j = 0u; j < 4u; j++) {
    let n = n0 + 8u * j;
    if (n < p.n) {
      store_y(c_base + m * p.sc_m + n * p.sc_n, activate(acc[j] + bias, p.act));
    }
  }
}

// One invocation's 4 x 4 tile: rows m0 + 8i, columns n0 + 8j, over K in [k0, k1).
struct Tile { a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>, }

fn tile(wid: vec3<u32>, lid: vec3<u32>, k0: u32, k1: u32) -> Tile {
  let g = wid.z % p.groups;
  let b = wid.z / p.groups;
  let m0 = wid.y * 32u + lid.y;
  let n0 = wid.x * 32u + lid.x;
  // Rows and columns past the edge read a valid element and are never stored.
  let a_base = g * p.m * p.k;
  let r0 = a_base + min(m0, p.m - 1u) * p.k;
  let r1 = a_base + min(m0 + 8u, p.m - 1u) * p.k;
  let r2 = a_base + min(m0 + 16u, p.m - 1u) * p.k;
  let r3 = a_base + min(m0 + 24u, p.m - 1u) * p.k;
  let b_base = b * p.sb_b + g * p.sb_g;
  let c0 = b_base + min(n0, p.n - 1u) * p.sb_n;
  let c1 = b_base + min(n0 + 8u, p.n - 1u) * p.sb_n;
  let c2 = b_base + min(n0 + 16u, p.n - 1u) * p.sb_n;
  let c3 = b_base + min(n0 + 24u, p.n - 1u) * p.sb_n;
  var t = Tile(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  var kb = k0 * p.sb_k;
  for (var kk = k0; kk < k1; kk++) {
    let bv = vec4<E>(load_x(c0 + kb), load_x(c1 + kb), load_x(c2 + kb), load_x(c3 + kb));
    t.a0 += vec4<f32>(load_w(r0 + kk) * bv);
    t.a1 += vec4<f32>(load_w(r1 + kk) * bv);
    t.a2 += vec4<f32>(load_w(r2 + kk) * bv);
    t.a3 += vec4<f32>(load_w(r3 + kk) * bv);
    kb += p.sb_k;
  }
  return t;
}

fn finish(wid: vec3<u32>, lid: vec3<u32>, t: Tile) {
  let g = wid.z % p.groups;
  let b = wid.z / p.groups;
  let m0 = wid.y * 32u + lid.y;
  let n0 = wid.x * 32u + lid.x;
  let c_base = b * p.sc_b + g * p.sc_g;
  store_row(c_base, m0, n0, t.a0, f32(load_b(g * p.m + min(m0, p.m - 1u))));
  store_row(c_base, m0 + 8u, n0, t.a1, f32(load_b(g * p.m + min(m0 + 8u, p.m - 1u))));
  store_row(c_base, m0 + 16u, n0, t.a2, f32(load_b(g * p.m + min(m0 + 16u, p.m - 1u))));
  store_row(c_base, m0 + 24u, n0, t.a3, f32(load_b(g * p.m + min(m0 + 24u, p.m - 1u))));
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  finish(wid, lid, tile(wid, lid, 0u, p.k));
}

@compute @workgroup_size(8, 8, KSPLIT)
fn main_split(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let kc = (p.k + KSPLIT - 1u) / KSPLIT;
  let k0 = min(lid.z * kc, p.k);
  var t = tile(wid, lid, k0, min(k0 + kc, p.k));
  let me = (lid.z * 64u + lid.y * 8u + lid.x) * 4u;
  partial[me] = t.a0;
  partial[me + 1u] = t.a1;
  partial[me + 2u] = t.a2;
  partial[me + 3u] = t.a3;
  workgroupBarrier();
  if (lid.z != 0u) { return; }
  for (var s = 1u; s < KSPLIT; s++) {
    let o = (s * 64u + lid.y * 8u + lid.x) * 4u;
    t.a0 += partial[o];
    t.a1 += partial[o + 1u];
    t.a2 += partial[o + 2u];
    t.a3 += partial[o + 3u];
  }
  finish(wid, lid, t);
}
