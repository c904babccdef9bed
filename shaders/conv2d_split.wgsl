// conv2d_split: conv2d_gemm.wgsl's 8 x 4 implicit-GEMM register tiles (entry main8) with K split
// over KS slices of the input channels, for GPUs. For group g (dispatch z), with M =
// C_out/groups, N = batch * H_out * W_out and K = C_in/groups * kh * kw, C[M x N] = A[M x K] *
// B[K x N], B gathered from the input on the fly. A workgroup is 64 / KS tiles x KS slices:
// each slice adds up its share of the input channels (all kh x kw taps of each), slices 1..
// leave their partial tiles in workgroup memory, and slice 0 adds them up and stores with the
// bias and activation. For layers with few tiles and a long K (late stages: 7 x 7 to 15 x 15
// images, hundreds of channels), where one invocation per tile leaves a large GPU mostly idle:
// KS times the invocations, each with 1/KS of the loop.
// Tiles past the last compute the last and store nothing (every slice reaches the barrier);
// pixels past N read the last pixel's window and are not stored; channels past M read the
// zero padding of the repacked weights and are not stored.
// Appended to conv2d_gemm.wgsl, whose Params, window() and store_pixel() it uses.
// Bindings: 0 Params (uniform), 1 y [N, C_out, H_out, W_out],
//           2 x [N, C_in, H, W], 3 w [groups, K, MP] read as 4-vectors (MP = M rounded up to
//           8, zero-filled), 4 b [C_out].
// Overrides: KS (2, 4 or 8).
// Grid: ceil(tiles / (64 / KS)) workgroups over x and y, z = groups.
override KS: u32 = 4u;

// Partial 8 x 4 tiles of slices 1 .. KS-1, 8 vectors each (at most 8 tiles x 7 slices).
var<workgroup> part: array<vec4<f32>, 448>;

@compute @workgroup_size(64)
fn main_split(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
  let per = 64u / KS;
  let s = li / per;
  let tl = li % per;
  let t_own = (wid.y * nwg.x + wid.x) * per + tl;
  // Tiles past the last compute the last and store nothing (every slice reaches the barrier).
  let t = min(t_own, p.tiles - 1u);
  let g = wid.z;
  let tm = t % p.tiles_m;
  let tn = t / p.tiles_m;
  let cin_g = p.c_in / p.groups;
  let cc = (cin_g + KS - 1u) / KS;
  let ci0 = min(s * cc, cin_g);
  let ci1 = min(ci0 + cc, cin_g);
  let hw = p.h * p.w;
  let last = p.n - 1u;
  let w0 = window(min(tn * 4u, last), g, cin_g);
  let w1 = window(min(tn * 4u + 1u, last), g, cin_g);
  let w2 = window(min(tn * 4u + 2u, last), g, cin_g);
  let w3 = window(min(tn * 4u + 3u, last), g, cin_g);
  var lo0 = vec4<f32>(0.0); var hi0 = vec4<f32>(0.0);
  var lo1 = vec4<f32>(0.0); var hi1 = vec4<f32>(0.0);
  var lo2 = vec4<f32>(0.0); var hi2 = vec4<f32>(0.0);
  var lo3 = vec4<f32>(0.0); var hi3 = vec4<f32>(0.0);
  let ws = p.mp / 4u;
  let wstep = p.kh * p.kw * ws;
  let wbase = (g * p.k * p.mp + tm * 8u) / 4u + ci0 * wstep;
  for (var ky = 0u; ky < p.kh; ky++) {
    let dy = i32(ky * p.dh);
    for (var kx = 0u; kx < p.kw; kx++) {
      let dx = i32(kx * p.dw);
      let r0 = w0.y + dy; let q0 = w0.z + dx;
      let r1 = w1.y + dy; let q1 = w1.z + dx;
      let r2 = w2.y + dy; let q2 = w2.z + dx;
      let r3 = w3.y + dy; let q3 = w3.z + dx;
      let ok0 = u32(r0) < p.h && u32(q0) < p.w;
      let ok1 = u32(r1) < p.h && u32(q1) < p.w;
      let ok2 = u32(r2) < p.h && u32(q2) < p.w;
      let ok3 = u32(r3) < p.h && u32(q3) < p.w;
      let off = ci0 * hw;
      var i0 = u32(select(0, w0.x + r0 * i32(p.w) + q0, ok0)) + off;
      var i1 = u32(select(0, w1.x + r1 * i32(p.w) + q1, ok1)) + off;
      var i2 = u32(select(0, w2.x + r2 * i32(p.w) + q2, ok2)) + off;
      var i3 = u32(select(0, w3.x + r3 * i32(p.w) + q3, ok3)) + off;
      var wi = wbase + (ky * p.kw + kx) * ws;
      for (var ci = ci0; ci < ci1; ci++) {
        let a = vec4<f32>(load4_w(wi));
        let c = vec4<f32>(load4_w(wi + 1u));
        wi += wstep;
        let x0 = select(0.0, f32(load_x(i0)), ok0);
        let x1 = select(0.0, f32(load_x(i1)), ok1);
        let x2 = select(0.0, f32(load_x(i2)), ok2);
        let x3 = select(0.0, f32(load_x(i3)), ok3);
        i0 += hw; i1 += hw; i2 += hw; i3 += hw;
        lo0 += a * x0; hi0 += c * x0;
        lo1 += a * x1; hi1 += c * x1;
        lo2 += a * x2; hi2 += c * x2;
        lo3 += a * x3; hi3 += c * x3;
      }
    }
  }
  if (s > 0u) {
    let o = ((s - 1u) * per + tl) * 8u;
    part[o] = lo0; part[o + 1u] = lo1; part[o + 2u] = lo2; part[o + 3u] = lo3;
    part[o + 4u] = hi0; part[o + 5u] = hi1; part[o + 6u] = hi2; part[o + 7u] = hi3;
  }
  workgroupBarrier();
  if (s != 0u || t_own >= p.tiles) { return; }
  for (var j = 1u; j < KS; j++) {
    let o = ((j - 1u) * per + tl) * 8u;
    lo0 += part[o]; lo1 += part[o + 1u]; lo2 += part[o + 2u]; lo3 += part[o + 3u];
    hi0 += part[o + 4u]; hi1 += part[o + 5u]; hi2 += part[o + 6u]; hi3 += part[o + 7u];
  }
  store_tile(tn * 4u, tm, g, lo0, lo1, lo2, lo3, hi0, hi1, hi2, hi3);
}
