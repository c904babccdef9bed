// conv2d_gemm: implicit-GEMM grouped convolution. For group g (dispatch z), with
// M = C_out/groups, N = batch * H_out * W_out and K = C_in/groups * kh * kw, it computes
// C[M x N] = A[M x K] * B[K x N], gathering B from the input on the fly (no im2col buffer).
// Each invocation keeps a register tile of 4 output pixels by 4 (entry `main`) or 8 (entries
// `main8` and `main8_row`) output channels; tiles of one group are spread over x and y. No shared memory:
// software adapters pay dearly for barriers.
// Bindings: 0 Params (uniform), 1 y [N, C_out, H_out, W_out], 2 x [N, C_in, H, W],
//           3 w [groups, K, MP] read as 4-vectors (the weight repacked at load: M rounded up to
//           MP, the tile height, zero-filled), 4 b [C_out].
// Overrides: none.
struct Params {
  batch: u32, c_in: u32, h: u32, w: u32,
  c_out: u32, ho: u32, wo: u32, groups: u32, kh: u32,
  kw: u32, sh: u32, sw: u32, dh: u32,
  dw: u32, pt: u32, pl: u32, act: u32,
  m: u32, mp: u32, k: u32, n: u32,
  tiles_m: u32, tiles: u32, wx: u32,
}
@group(0) @binding(0) var<uniform> p: Params;

// Where output pixel q's window starts: x.x = input offset of (batch, first channel of the
// group), x.y = top row, x.z = left column (rows and columns may be negative: padding).
fn window(q: u32, g: u32, cin_g: u32) -> vec3<i32> {
  let hw_out = p.ho * p.wo;
  let b = q / hw_out;
  let r = q % hw_out;
  return vec3<i32>(i32((b * p.c_in + g * cin_g) * p.h * p.w), i32((r / p.wo) * p.sh) - i32(p.pt),
                   i32((r % p.wo) * p.sw) - i32(p.pl));
}

// The input value at (row, col) of channel plane `plane`, zero outside the image.
fn tap(plane: i32, row: i32, col: i32) -> E {
  // Negative rows and columns wrap to large unsigned values, so two compares cover all four edges.
  let ok = u32(row) < p.h && u32(col) < p.w;
  return select(E(0.0), load_x(u32(select(0, plane + row * i32(p.w) + col, ok))), ok);
}

// Stores output pixel q of channels m0 .. m0 + 3 of group g.
fn store_pixel(q: u32, g: u32, m0: u32, acc: vec4<f32>) {
  if (q >= p.n) { return; }
  let hw_out = p.ho * p.wo;
  let b = q / hw_out;
  let r = q % hw_out;
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + i;
    if (m < p.m) {
      let co = g * p.m + m;
      store_y((b * p.c_out + co) * hw_out + r, activate(acc[i] + f32(load_b(co)), p.act));
    }
  }
}

// Stores an 8 x 4 tile of group g: channels tm * 8 .. + 3 (lo*) and the next four (hi*) of
// output pixels q .. q + 3, one accumulator per pixel.
fn store_tile(q: u32, tm: u32, g: u32, lo0: vec4<f32>, lo1: vec4<f32>, lo2: vec4<f32>,
              lo3: vec4<f32>, hi0: vec4<f32>, hi1: vec4<f32>, hi2: vec4<f32>, hi3: vec4<f32>) {
  let m0 = tm * 8u;
  store_pixel(q, g, m0, lo0);
  store_pixel(q + 1u, g, m0, lo1);
  store_pixel(q + 2u, g, m0, lo2);
  store_pixel(q + 3u, g, m0, lo3);
  store_pixel(q, g, m0 + 4u, hi0);
  store_pixel(q + 1u, g, m0 + 4u, hi1);
  store_pixel(q + 2u, g, m0 + 4u, hi2);
  store_pixel(q + 3u, g, m0 + 4u, hi3);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = flat_id(wid, nwg, lid);
  if (t >= p.tiles) { return; }
  let g = wid.z;
  let tm = t % p.tiles_m;
  let tn = t / p.tiles_m;
  let cin_g = p.c_in / p.groups;
  let hw_in = i32(p.h * p.w);
  let last = p.n - 1u;
  let w0 = window(min(tn * 4u, last), g, cin_g);
  let w1 = window(min(tn * 4u + 1u, last), g, cin_g);
  let w2 = window(min(tn * 4u + 2u, last), g, cin_g);
  let w3 = window(min(tn * 4u + 3u, last), g, cin_g);
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  // In 4-vectors: row k of the group's [K, MP] block starts at (g * K + k) * MP / 4.
  var wi = (g * p.k * p.mp + tm * 4u) / 4u;
  let step = p.mp / 4u;
  for (var ci = 0u; ci < cin_g; ci++) {
    let plane = i32(ci) * hw_in;
    for (var ky = 0u; ky < p.kh; ky++) {
      let dy = i32(ky * p.dh);
      for (var kx = 0u; kx < p.kw; kx++) {
        let dx = i32(kx * p.dw);
        let a = load4_w(wi);
        wi += step;
        acc0 += vec4<f32>(a * tap(w0.x + plane, w0.y + dy, w0.z + dx));
        acc1 += vec4<f32>(a * tap(w1.x + plane, w1.y + dy, w1.z + dx));
        acc2 += vec4<f32>(a * tap(w2.x + plane, w2.y + dy, w2.z + dx));
        acc3 += vec4<f32>(a * tap(w3.x + plane, w3.y + dy, w3.z + dx));
      }
    }
  }
  store_pixel(tn * 4u, g, tm * 4u, acc0);
  store_pixel(tn * 4u + 1u, g, tm * 4u, acc1);
  store_pixel(tn * 4u + 2u, g, tm * 4u, acc2);
  store_pixel(tn * 4u + 3u, g, tm * 4u, acc3);
}

// 8 output channels x 4 output pixels: twice the multiply-adds per gathered input value, for
// adapters where the gather, not the arithmetic, is what costs (software rasterizers' JITs).
@compute @workgroup_size(64)
fn main8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let t = flat_id(wid, nwg, lid);
  if (t >= p.tiles) { return; }
  tile8(wid.z, t % p.tiles_m, t / p.tiles_m);
}

// main8's work for channel tile tm and pixel tile tn of group g (also main8_row's fallback).
fn tile8(g: u32, tm: u32, tn: u32) {
  let cin_g = p.c_in / p.groups;
  let hw_in = i32(p.h * p.w);
  let last = p.n - 1u;
  let w0 = window(min(tn * 4u, last), g, cin_g);
  let w1 = window(min(tn * 4u + 1u, last), g, cin_g);
  let w2 = window(min(tn * 4u + 2u, last), g, cin_g);
  let w3 = window(min(tn * 4u + 3u, last), g, cin_g);
  // lo: channels 0-3 of the tile, hi: channels 4-7; one accumulator per pixel each.
  var lo0 = vec4<f32>(0.0);
  var lo1 = vec4<f32>(0.0);
  var lo2 = vec4<f32>(0.0);
  var lo3 = vec4<f32>(0.0);
  var hi0 = vec4<f32>(0.0);
  var hi1 = vec4<f32>(0.0);
  var hi2 = vec4<f32>(0.0);
  var hi3 = vec4<f32>(0.0);
  // The window position outside, the input channel inside: each pixel's bounds test and address
  // are worked out once per (ky, kx), and the inner loop only steps one channel plane further.
  let hw = p.h * p.w;
  let wbase = (g * p.k * p.mp + tm * 8u) / 4u;
  let wstep = p.kh * p.kw * p.mp / 4u;
  for (var ky = 0u; ky < p.kh; ky++) {
    let dy = i32(ky * p.dh);
    for (var kx = 0u; kx < p.kw; kx++) {
      let dx = i32(kx * p.dw);
      let r0 = w0.y + dy; let q0 = w0.z + dx;
      let r1 = w1.y + dy; let q1 = w1.z + dx;
      let r2 = w2.y + dy; let q2 = w2.z + dx;
      let r3 = w3.y + dy; let q3 = w3.z + dx;
      // Negative rows and columns wrap to large unsigned values: two compares cover four edges.
      let ok0 = u32(r0) < p.h && u32(q0) < p.w;
      let ok1 = u32(r1) < p.h && u32(q1) < p.w;
      let ok2 = u32(r2) < p.h && u32(q2) < p.w;
      let ok3 = u32(r3) < p.h && u32(q3) < p.w;
      // Outside the image a pixel reads channel planes from offset 0 (in bounds) and uses 0.
      var i0 = u32(select(0, w0.x + r0 * i32(p.w) + q0, ok0));
      var i1 = u32(select(0, w1.x + r1 * i32(p.w) + q1, ok1));
      var i2 = u32(select(0, w2.x + r2 * i32(p.w) + q2, ok2));
      var i3 = u32(select(0, w3.x + r3 * i32(p.w) + q3, ok3));
      var wi = wbase + (ky * p.kw + kx) * p.mp / 4u;
      for (var ci = 0u; ci < cin_g; ci++) {
        let a = load4_w(wi);
        let c = load4_w(wi + 1u);
        wi += wstep;
        let x0 = select(E(0.0), load_x(i0), ok0);
        let x1 = select(E(0.0), load_x(i1), ok1);
        let x2 = select(E(0.0), load_x(i2), ok2);
        let x3 = select(E(0.0), load_x(i3), ok3);
        i0 += hw;
        i1 += hw;
        i2 += hw;
        i3 += hw;
        lo0 += vec4<f32>(a * x0);
        lo1 += vec4<f32>(a * x1);
        lo2 += vec4<f32>(a * x2);
        lo3 += vec4<f32>(a * x3);
        hi0 += vec4<f32>(c * x0);
        hi1 += vec4<f32>(c * x1);
        hi2 += vec4<f32>(c * x2);
        hi3 += vec4<f32>(c * x3);
      }
    }
  }
  store_tile(tn * 4u, tm, g, lo0, lo1, lo2, lo3, hi0, hi1, hi2, hi3);
}

// main8_row: main8's tiles and grid, for layers with stride 1 along x. Where a tile's 4
// output pixels are 4 consecutive pixels of one output row (same image and row), their
// windows overlap: for each (kernel row, input channel) the kw + 3 input values they read are
// loaded once and reused across the kernel columns and the 4 pixels (kw + 3 input loads
// instead of 4 * kw), with one row bounds test per kernel row and one column test per value.
// No register array (CPU adapters spill dynamically indexed ones): four registers slide along
// the row segment, one new value per kernel column, so any kw runs. The row path needs
// sw == 1, dw == 1 and kw > 1 (a 1x1 window shares nothing); other layers, and tiles that
// straddle a row's end, run main8's per-pixel path (tile8).

// The 8 x 4 tile in the row kernels' order (ky, input channel, kx) with per-pixel taps: for
// tiles the row paths cannot take. The same order of additions as row8 and row8x8 keeps every
// output pixel's bits independent of where its tile falls (results do not depend on the batch
// it is run in).
fn tile8_rows(g: u32, tm: u32, tn: u32) {
  let cin_g = p.c_in / p.groups;
  let hw_in = i32(p.h * p.w);
  let last = p.n - 1u;
  let w0 = window(min(tn * 4u, last), g, cin_g);
  let w1 = window(min(tn * 4u + 1u, last), g, cin_g);
  let w2 = window(min(tn * 4u + 2u, last), g, cin_g);
  let w3 = window(min(tn * 4u + 3u, last), g, cin_g);
  var lo0 = vec4<f32>(0.0);
  var lo1 = vec4<f32>(0.0);
  var lo2 = vec4<f32>(0.0);
  var lo3 = vec4<f32>(0.0);
  var hi0 = vec4<f32>(0.0);
  var hi1 = vec4<f32>(0.0);
  var hi2 = vec4<f32>(0.0);
  var hi3 = vec4<f32>(0.0);
  let ws = p.mp / 4u;
  let wci = p.kh * p.kw * ws;
  let wbase = (g * p.k * p.mp + tm * 8u) / 4u;
  for (var ky = 0u; ky < p.kh; ky++) {
    let dy = i32(ky * p.dh);
    var wk = wbase + ky * p.kw * ws;
    for (var ci = 0u; ci < cin_g; ci++) {
      let plane = i32(ci) * hw_in;
      var wi = wk;
      for (var kx = 0u; kx < p.kw; kx++) {
        let dx = i32(kx * p.dw);
        let a = vec4<f32>(load4_w(wi));
        let c = vec4<f32>(load4_w(wi + 1u));
        wi += ws;
        let x0 = f32(tap(w0.x + plane, w0.y + dy, w0.z + dx));
        let x1 = f32(tap(w1.x + plane, w1.y + dy, w1.z + dx));
        let x2 = f32(tap(w2.x + plane, w2.y + dy, w2.z + dx));
        let x3 = f32(tap(w3.x + plane, w3.y + dy, w3.z + dx));
        lo0 += a * x0;
        lo1 += a * x1;
        lo2 += a * x2;
        lo3 += a * x3;
        hi0 += c * x0;
        hi1 += c * x1;
        hi2 += c * x2;
        hi3 += c * x3;
      }
      wk += wci;
    }
  }
  store_tile(tn * 4u, tm, g, lo0, lo1, lo2, lo3, hi0, hi1, hi2, hi3);
}

// The row path for channel tile tm of group g and the 4 pixels q0 .. q0 + 3 of one output row
// (sw == dw == 1): pixel j at kernel column kx reads input column c0 + j + kx, so kernel
// column kx takes values kx .. kx + 3 of the row segment: x0 .. x3, which slide one value
// along per column. Out-of-image values are 0 and read offset 0 of their channel plane.
fn row8(g: u32, tm: u32, q0: u32) {
  let cin_g = p.c_in / p.groups;
  let w0 = window(q0, g, cin_g);
  var lo0 = vec4<f32>(0.0);
  var lo1 = vec4<f32>(0.0);
  var lo2 = vec4<f32>(0.0);
  var lo3 = vec4<f32>(0.0);
  var hi0 = vec4<f32>(0.0);
  var hi1 = vec4<f32>(0.0);
  var hi2 = vec4<f32>(0.0);
  var hi3 = vec4<f32>(0.0);
  let hw = p.h * p.w;
  let c0 = w0.z;
  let ok0 = u32(c0) < p.w;
  let ok1 = u32(c0 + 1) < p.w;
  let ok2 = u32(c0 + 2) < p.w;
  // Weight rows k = (ci * kh + ky) * kw + kx: one 4-vector pair per kernel column.
  let ws = p.mp / 4u;
  let wci = p.kh * p.kw * ws;
  let wbase = (g * p.k * p.mp + tm * 8u) / 4u;
  for (var ky = 0u; ky < p.kh; ky++) {
    let row = w0.y + i32(ky * p.dh);
    // Negative rows wrap to large unsigned values: one compare covers both edges.
    if (u32(row) < p.h) {
      let rs = w0.x + row * i32(p.w) + c0;
      var i0 = u32(select(0, rs, ok0));
      var i1 = u32(select(0, rs + 1, ok1));
      var i2 = u32(select(0, rs + 2, ok2));
      var wk = wbase + ky * p.kw * ws;
      for (var ci = 0u; ci < cin_g; ci++) {
        var x0 = select(E(0.0), load_x(i0), ok0);
        var x1 = select(E(0.0), load_x(i1), ok1);
        var x2 = select(E(0.0), load_x(i2), ok2);
        var wi = wk;
        for (var kx = 0u; kx < p.kw; kx++) {
          let col = c0 + i32(kx) + 3;
          let ok = u32(col) < p.w;
          let x3 = select(E(0.0), load_x(u32(select(0, rs + i32(kx) + 3, ok)) + ci * hw), ok);
          let a = vec4<f32>(load4_w(wi));
          let c = vec4<f32>(load4_w(wi + 1u));
          wi += ws;
          lo0 += a * f32(x0);
          lo1 += a * f32(x1);
          lo2 += a * f32(x2);
          lo3 += a * f32(x3);
          hi0 += c * f32(x0);
          hi1 += c * f32(x1);
          hi2 += c * f32(x2);
          hi3 += c * f32(x3);
          x0 = x1;
          x1 = x2;
          x2 = x3;
        }
        i0 += hw;
        i1 += hw;
        i2 += hw;
        wk += wci;
      }
    }
  }
  store_tile(q0, tm, g, lo0, lo1, lo2, lo3, hi0, hi1, hi2, hi3);
}

@compute @workgroup_size(64)
fn main8_row(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let t = flat_id(wid, nwg, lid);
  if (t >= p.tiles) { return; }
  let g = wid.z;
  let tm = t % p.tiles_m;
  let tn = t / p.tiles_m;
  let q0 = tn * 4u;
  // The 4 pixels lie in one output row when the first is at least 3 before the row's end
  // (and all exist).
  if (p.sw == 1u && p.dw == 1u && p.kw > 1u && q0 + 3u < p.n && q0 % p.wo + 3u < p.wo) {
    row8(g, tm, q0);
  } else {
    tile8_rows(g, tm, tn);
  }
}

// row8x8: 8 output channels x 8 consecutive output pixels of one row (stride 1, no dilation
// along x): as row8, the window's input row is read once per (input channel, ky) and slid along
// kx, and every pair of weight 4-vectors now feeds 64 multiply-adds instead of 32.
fn row8x8(g: u32, tm: u32, q0: u32) {
  let cin_g = p.c_in / p.groups;
  let w0 = window(q0, g, cin_g);
  var lo0 = vec4<f32>(0.0);
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
  let hw = p.h * p.w;
  let c0 = w0.z;
  let ok0 = u32(c0 + 0) < p.w;
  let ok1 = u32(c0 + 1) < p.w;
  let ok2 = u32(c0 + 2) < p.w;
  let ok3 = u32(c0 + 3) < p.w;
  let ok4 = u32(c0 + 4) < p.w;
  let ok5 = u32(c0 + 5) < p.w;
  let ok6 = u32(c0 + 6) < p.w;
  let ws = p.mp / 4u;
  let wci = p.kh * p.kw * ws;
  let wbase = (g * p.k * p.mp + tm * 8u) / 4u;
  for (var ky = 0u; ky < p.kh; ky++) {
    let row = w0.y + i32(ky * p.dh);
    if (u32(row) < p.h) {
      let rs = w0.x + row * i32(p.w) + c0;
      var wk = wbase + ky * p.kw * ws;
      var plane = 0u;
      for (var ci = 0u; ci < cin_g; ci++) {
        var x0 = select(E(0.0), load_x(u32(select(0, rs + 0, ok0)) + plane), ok0);
        var x1 = select(E(0.0), load_x(u32(select(0, rs + 1, ok1)) + plane), ok1);
        var x2 = select(E(0.0), load_x(u32(select(0, rs + 2, ok2)) + plane), ok2);
        var x3 = select(E(0.0), load_x(u32(select(0, rs + 3, ok3)) + plane), ok3);
        var x4 = select(E(0.0), load_x(u32(select(0, rs + 4, ok4)) + plane), ok4);
        var x5 = select(E(0.0), load_x(u32(select(0, rs + 5, ok5)) + plane), ok5);
        var x6 = select(E(0.0), load_x(u32(select(0, rs + 6, ok6)) + plane), ok6);
        var wi = wk;
        for (var kx = 0u; kx < p.kw; kx++) {
          let col = c0 + i32(kx) + 7;
          let ok = u32(col) < p.w;
          let x7 = select(E(0.0), load_x(u32(select(0, rs + i32(kx) + 7, ok)) + plane), ok);
          let a = vec4<f32>(load4_w(wi));
          let c = vec4<f32>(load4_w(wi + 1u));
          wi += ws;
          lo0 += a * f32(x0);
          lo1 += a * f32(x1);
          lo2 += a * f32(x2);
          lo3 += a * f32(x3);
          lo4 += a * f32(x4);
          lo5 += a * f32(x5);
          lo6 += a * f32(x6);
          lo7 += a * f32(x7);
          hi0 += c * f32(x0);
          hi1 += c * f32(x1);
          hi2 += c * f32(x2);
          hi3 += c * f32(x3);
          hi4 += c * f32(x4);
          hi5 += c * f32(x5);
          hi6 += c * f32(x6);
          hi7 += c * f32(x7);
          x0 = x1;
          x1 = x2;
          x2 = x3;
          x3 = x4;
          x4 = x5;
          x5 = x6;
          x6 = x7;
        }
        plane += hw;
        wk += wci;
      }
    }
  }
  store_tile(q0, tm, g, lo0, lo1, lo2, lo3, hi0, hi1, hi2, hi3);
  store_tile(q0 + 4u, tm, g, lo4, lo5, lo6, lo7, hi4, hi5, hi6, hi7);
}

// 8 output channels x 8 output pixels; tiles whose 8 pixels lie in one output row (and layers
// with stride 1 and no dilation along x) take row8x8, the others two 8 x 4 tiles.
@compute @workgroup_size(64)
fn main8_row8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let t = flat_id(wid, nwg, lid);
  if (t >= p.tiles) { return; }
  let g = wid.z;
  let tm = t % p.tiles_m;
  let tn = t / p.tiles_m;
  let q0 = tn * 8u;
  if (p.sw == 1u && p.dw == 1u && p.kw > 1u && q0 + 7u < p.n && q0 % p.wo + 7u < p.wo) {
    row8x8(g, tm, q0);
  } else {
    tile8_rows(g, tm, tn * 2u);
    tile8_rows(g, tm, tn * 2u + 1u);
  }
}
