// matmul: C[b, g] = act(A[g] * B[b, g] + bias[g]) for every batch b and group g, where A holds
// the weights ([groups * M, K], row-major) and B and C are addressed through strides, so the
// same kernel serves 1x1 convolutions (B = activations [C_in, H*W]) and linear layers.
// Each invocation keeps a 4 x 4 register tile; a workgroup of 8 x 8 covers 32 x 32 outputs.
// Bindings: 0 Params (uniform), 1 y (C), 2 x (B), 3 w (A), 4 b (bias [groups * M]).
// Overrides: none. Grid: x = ceil(N / 32), y = ceil(M / 32), z = batches * groups.
struct Params {
  m: u32, n: u32, k: u32, groups: u32,
  sb_b: u32, sb_g: u32, sb_k: u32, sb_n: u32,
  sc_b: u32, sc_g: u32, sc_m: u32, sc_n: u32,
  act: u32,
}
@group(0) @binding(0) var<uniform> p: Params;

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let g = wid.z % p.groups;
  let b = wid.z / p.groups;
  let m0 = wid.y * 32u + lid.y;
  let n0 = wid.x * 32u + lid.x;
  let a_base = g * p.m * p.k;
  let b_base = b * p.sb_b + g * p.sb_g;
  // Rows and columns past the edge read a valid element and are never stored.
  var ar: array<u32, 4>;
  var bc: array<u32, 4>;
  for (var i = 0u; i < 4u; i++) {
    ar[i] = a_base + min(m0 + 8u * i, p.m - 1u) * p.k;
    bc[i] = b_base + min(n0 + 8u * i, p.n - 1u) * p.sb_n;
  }
  var acc: array<array<f32, 4>, 4>;
  for (var kk = 0u; kk < p.k; kk++) {
    var av: array<E, 4>;
    var bv: array<E, 4>;
    for (var i = 0u; i < 4u; i++) {
      av[i] = load_w(ar[i] + kk);
      bv[i] = load_x(bc[i] + kk * p.sb_k);
    }
    for (var i = 0u; i < 4u; i++) {
      for (var j = 0u; j < 4u; j++) {
        acc[i][j] += f32(av[i] * bv[j]);
      }
    }
  }
  let c_base = b * p.sc_b + g * p.sc_g;
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + 8u * i;
    if (m >= p.m) { continue; }
    let bias = f32(load_b(g * p.m + m));
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + 8u * j;
      if (n >= p.n) { continue; }
      store_y(c_base + m * p.sc_m + n * p.sc_n, activate(acc[i][j] + bias, p.act));
    }
  }
}
