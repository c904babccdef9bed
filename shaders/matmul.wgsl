// matmul: C[b, g] = act(A[g] * B[b, g] + bias[g]) for every batch b and group g, where A holds
// the weights ([groups * M, K], row-major) and B and C are addressed through strides, so the
// same kernel serves 1x1 convolutions (B = activations [C_in, H*W]) and linear layers.
// Each invocation keeps a 4 x 4 register tile in four vec4 accumulators (rows m0 + 8i, columns
// n0 + 8j), written out without arrays so no compiler spills them to memory; a workgroup of
// 8 x 8 covers 32 x 32 outputs.
// Bindings: 0 Params (uniform), 1 y (C), 2 x (B), 3 w (A), 4 b (bias [groups * M]).
// Overrides: none. Grid: x = ceil(N / 32), y = ceil(M / 32), z = batches * groups.
struct Params {
  m: u32, n: u32, k: u32, groups: u32,
  sb_b: u32, sb_g: u32, sb_k: u32, sb_n: u32,
  sc_b: u32, sc_g: u32, sc_m: u32, sc_n: u32,
  act: u32,
}
@group(0) @binding(0) var<uniform> p: Params;

fn store_row(c_base: u32, m: u32, n0: u32, acc: vec4<f32>, bias: f32) {
  if (m >= p.m) { return; }
  for (var j = 0u; j < 4u; j++) {
    let n = n0 + 8u * j;
    if (n < p.n) {
      store_y(c_base + m * p.sc_m + n * p.sc_n, activate(acc[j] + bias, p.act));
    }
  }
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let g = wid.z % p.groups;
  let b = wid.z / p.groups;
  let m0 = wid.y * 32u + lid.y;
  let n0 = wid.x * 32u + lid.x;
  // Rows and columns past the edge read a valid element and are never stored.
  let a_base = g * p.m * p.k;
  let a0 = a_base + min(m0, p.m - 1u) * p.k;
  let a1 = a_base + min(m0 + 8u, p.m - 1u) * p.k;
  let a2 = a_base + min(m0 + 16u, p.m - 1u) * p.k;
  let a3 = a_base + min(m0 + 24u, p.m - 1u) * p.k;
  let b_base = b * p.sb_b + g * p.sb_g;
  let b0 = b_base + min(n0, p.n - 1u) * p.sb_n;
  let b1 = b_base + min(n0 + 8u, p.n - 1u) * p.sb_n;
  let b2 = b_base + min(n0 + 16u, p.n - 1u) * p.sb_n;
  let b3 = b_base + min(n0 + 24u, p.n - 1u) * p.sb_n;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  var kb = 0u;
  for (var kk = 0u; kk < p.k; kk++) {
    let bv = vec4<E>(load_x(b0 + kb), load_x(b1 + kb), load_x(b2 + kb), load_x(b3 + kb));
    acc0 += vec4<f32>(load_w(a0 + kk) * bv);
    acc1 += vec4<f32>(load_w(a1 + kk) * bv);
    acc2 += vec4<f32>(load_w(a2 + kk) * bv);
    acc3 += vec4<f32>(load_w(a3 + kk) * bv);
    kb += p.sb_k;
  }
  let c_base = b * p.sc_b + g * p.sc_g;
  store_row(c_base, m0, n0, acc0, f32(load_b(g * p.m + min(m0, p.m - 1u))));
  store_row(c_base, m0 + 8u, n0, acc1, f32(load_b(g * p.m + min(m0 + 8u, p.m - 1u))));
  store_row(c_base, m0 + 16u, n0, acc2, f32(load_b(g * p.m + min(m0 + 16u, p.m - 1u))));
  store_row(c_base, m0 + 24u, n0, acc3, f32(load_b(g * p.m + min(m0 + 24u, p.m - 1u))));
}
