// conv2d_gemm: implicit-GEMM grouped convolution. For group g (dispatch z), with
// M = C_out/groups, N = batch * H_out * W_out and K = C_in/groups * kh * kw, it computes
// C[M x N] = A[M x K] * B[K x N], gathering B from the input on the fly (no im2col buffer).
// Each invocation keeps a 4 (output channels) x 4 (output pixels) register tile; tiles of one
// group are spread over x and y. No shared memory: software adapters pay dearly for barriers.
// Bindings: 0 Params (uniform), 1 y [N, C_out, H_out, W_out], 2 x [N, C_in, H, W],
//           3 w [groups, K, M4] (the weight repacked at load: M rounded up to 4, zero-filled),
//           4 b [C_out].
// Overrides: none.
struct Params {
  c_in: u32, h: u32, w: u32, c_out: u32,
  ho: u32, wo: u32, groups: u32, kh: u32,
  kw: u32, sh: u32, sw: u32, dh: u32,
  dw: u32, pt: u32, pl: u32, act: u32,
  m: u32, m4: u32, k: u32, n: u32,
  tiles_m: u32, tiles: u32,
}
@group(0) @binding(0) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = flat_id(wid, nwg, lid);
  if (t >= p.tiles) { return; }
  let g = wid.z;
  let tm = t % p.tiles_m;
  let tn = t / p.tiles_m;
  let cin_g = p.c_in / p.groups;
  let hw_in = p.h * p.w;
  let hw_out = p.ho * p.wo;
  // The tile's four output pixels: where their windows start in the input.
  var xbase: array<u32, 4>;
  var ih0: array<i32, 4>;
  var iw0: array<i32, 4>;
  for (var j = 0u; j < 4u; j++) {
    let q = min(tn * 4u + j, p.n - 1u);
    let b = q / hw_out;
    let r = q % hw_out;
    xbase[j] = (b * p.c_in + g * cin_g) * hw_in;
    ih0[j] = i32((r / p.wo) * p.sh) - i32(p.pt);
    iw0[j] = i32((r % p.wo) * p.sw) - i32(p.pl);
  }
  var acc: array<vec4<f32>, 4>;
  var wi = g * p.k * p.m4 + tm * 4u;
  for (var ci = 0u; ci < cin_g; ci++) {
    for (var ky = 0u; ky < p.kh; ky++) {
      var row: array<u32, 4>;
      var row_ok: array<bool, 4>;
      for (var j = 0u; j < 4u; j++) {
        let ih = ih0[j] + i32(ky * p.dh);
        row_ok[j] = ih >= 0 && ih < i32(p.h);
        row[j] = xbase[j] + ci * hw_in + u32(clamp(ih, 0, i32(p.h) - 1)) * p.w;
      }
      for (var kx = 0u; kx < p.kw; kx++) {
        let a = vec4<E>(load_w(wi), load_w(wi + 1u), load_w(wi + 2u), load_w(wi + 3u));
        wi += p.m4;
        for (var j = 0u; j < 4u; j++) {
          let iw = iw0[j] + i32(kx * p.dw);
          let ok = row_ok[j] && iw >= 0 && iw < i32(p.w);
          let v = select(E(0.0), load_x(row[j] + u32(clamp(iw, 0, i32(p.w) - 1))), ok);
          acc[j] += vec4<f32>(a * v);
        }
      }
    }
  }
  for (var j = 0u; j < 4u; j++) {
    let q = tn * 4u + j;
    if (q >= p.n) { continue; }
    let b = q / hw_out;
    let r = q % hw_out;
    for (var i = 0u; i < 4u; i++) {
      let m = tm * 4u + i;
      if (m >= p.m) { continue; }
      let co = g * p.m + m;
      store_y((b * p.c_out + co) * hw_out + r, activate(acc[j][i] + f32(load_b(co)), p.act));
    }
  }
}
