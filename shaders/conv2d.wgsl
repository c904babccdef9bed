// conv2d: direct grouped convolution (NCHW): entry `main`, one invocation per output element;
// entry `main_row`, one invocation per 4 consecutive output pixels of one output row; entry
// `main_row8`, 8 of them.
// Bindings: 0 Params (uniform), 1 y [N, C_out, H_out, W_out], 2 x [N, C_in, H, W],
//           3 w [C_out, C_in/groups, kh, kw], 4 b [C_out].
// Overrides: SX, PAIR, ROWS2, VEC_Y and row_vec.wgsl's (main_row8). Grid: `total` invocations
// (outputs, or rows' runs of 4 or 8) over x and y.
struct Params {
  n: u32, c_in: u32, h: u32, w: u32,
  c_out: u32, ho: u32, wo: u32, groups: u32,
  kh: u32, kw: u32, sh: u32, sw: u32,
  dh: u32, dw: u32, pt: u32, pl: u32,
  act: u32, total: u32,
}
@group(0) @binding(0) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = flat_id(wid, nwg, lid);
  if (o >= p.total) { return; }
  let ow = o % p.wo;
  let t1 = o / p.wo;
  let oh = t1 % p.ho;
  let t2 = t1 / p.ho;
  let co = t2 % p.c_out;
  let n = t2 / p.c_out;
  let cin_g = p.c_in / p.groups;
  let g = co / (p.c_out / p.groups);
  let ih0 = i32(oh * p.sh) - i32(p.pt);
  let iw0 = i32(ow * p.sw) - i32(p.pl);
  var acc = 0.0;
  for (var ci = 0u; ci < cin_g; ci++) {
    let xc = (n * p.c_in + g * cin_g + ci) * p.h * p.w;
    let wc = (co * cin_g + ci) * p.kh * p.kw;
    for (var ky = 0u; ky < p.kh; ky++) {
      let ih = ih0 + i32(ky * p.dh);
      if (ih < 0 || ih >= i32(p.h)) { continue; }
      for (var kx = 0u; kx < p.kw; kx++) {
        let iw = iw0 + i32(kx * p.dw);
        if (iw < 0 || iw >= i32(p.w)) { continue; }
        acc += f32(load_x(xc + u32(ih) * p.w + u32(iw)) * load_w(wc + ky * p.kw + kx));
      }
    }
  }
  store_y(o, activate(acc + f32(load_b(co)), p.act));
}

// Row run o of `width` output pixels in a plane of `bands` bands of output rows: (its first
// column, its band, the index of its output plane).
fn row_run(o: u32, width: u32, bands: u32) -> vec3<u32> {
  let runs = (p.wo + width - 1u) / width;
  let t1 = o / runs;
  return vec3<u32>((o % runs) * width, t1 % bands, t1 / bands);
}

// Input value at column `col` of the row starting at `row`; zero in the padding.
fn tap_col(row: u32, col: i32) -> f32 {
  let ok = u32(col) < p.w;
  return select(0.0, f32(load_x(row + u32(select(0, col, ok)))), ok);
}

// main_row: output pixels ow0 .. ow0 + 3 of one row of one output channel: each weight is loaded
// once for the 4, each row's bounds tested once, and the index arithmetic done once per
// invocation, for layers whose groups have too few output channels for the GEMM tiles
// (depthwise ones). total = N * C_out * H_out * ceil(W_out / 4).
@compute @workgroup_size(64)
fn main_row(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let o = flat_id(wid, nwg, lid);
  if (o >= p.total) { return; }
  let r = row_run(o, 4u, p.ho);
  let ow0 = r.x;
  let oh = r.y;
  let co = r.z % p.c_out;
  let n = r.z / p.c_out;
  let cin_g = p.c_in / p.groups;
  let g = co / (p.c_out / p.groups);
  let ih0 = i32(oh * p.sh) - i32(p.pt);
  let iw0 = i32(ow0 * p.sw) - i32(p.pl);
  let sw = i32(p.sw);
  var a0 = 0.0;
  var a1 = 0.0;
  var a2 = 0.0;
  var a3 = 0.0;
  for (var ci = 0u; ci < cin_g; ci++) {
    let xc = (n * p.c_in + g * cin_g + ci) * p.h * p.w;
    let wc = (co * cin_g + ci) * p.kh * p.kw;
    for (var ky = 0u; ky < p.kh; ky++) {
      let ih = ih0 + i32(ky * p.dh);
      if (ih < 0 || ih >= i32(p.h)) { continue; }
      let row = xc + u32(ih) * p.w;
      for (var kx = 0u; kx < p.kw; kx++) {
        let wv = f32(load_w(wc + ky * p.kw + kx));
        let c = iw0 + i32(kx * p.dw);
        a0 += wv * tap_col(row, c);
        a1 += wv * tap_col(row, c + sw);
        a2 += wv * tap_col(row, c + 2 * sw);
        a3 += wv * tap_col(row, c + 3 * sw);
      }
    }
  }
  let bias = f32(load_b(co));
  let out = ((n * p.c_out + co) * p.ho + oh) * p.wo + ow0;
  store_y(out, activate(a0 + bias, p.act));
  if (ow0 + 1u < p.wo) { store_y(out + 1u, activate(a1 + bias, p.act)); }
  if (ow0 + 2u < p.wo) { store_y(out + 2u, activate(a2 + bias, p.act)); }
  if (ow0 + 3u < p.wo) { store_y(out + 3u, activate(a3 + bias, p.act)); }
}

// main_row8: output pixels ow0 .. ow0 + 7 of one row of one output channel, for the layers
// main_row takes on CPU adapters, where every storage load is a loop over the lanes. With
// ROW_X (stride and dilation 1 along x, kw <= 7) each kernel row's 14 values for the 8
// windows come at once (as 4-vectors where VEC_X) and its taps are unrolled (no loop over kx,
// no divergent branch: CPU adapters keep every variable a loop or branch assigns in memory);
// with ROWS2 also (stride and dilation 1 along y) each invocation computes output rows oh and
// oh + 1 from kh + 1 input rows, each weight loaded once for both. Otherwise, with dw = 1, in
// each of sw phases of a kernel row's columns the inputs are loaded once and slid along the
// windows; dilated rows load 8 taps per weight. total = N * P * ceil(H_out / (1 or 2)) * ceil(W_out / 8), P = C_out, or with
// PAIR groups * ceil(M / 2). Overrides: SX, the stride along x (sw), compiled in so that the
// stride-1 pipeline has one phase and unit steps; PAIR, for groups of 2 or 3 outputs: each
// invocation also computes the next channel of its group from the same loaded inputs; ROWS2.
override SX: u32 = 1u;
override PAIR: bool = false;
override ROWS2: bool = false;
// Override VEC_Y: W_out is a multiple of 4, so each run is one or two 4-vector stores.
override VEC_Y: bool = false;
// ROW_X, VEC_X, SHIFT, X4, KW (row_vec.wgsl): kernel rows as 14-value windows.

@compute @workgroup_size(64)
fn main_row8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let o = flat_id(wid, nwg, lid);
  if (o >= p.total) { return; }
  // Bands of one output row, or of two with ROWS2.
  let r = row_run(o, 8u, select(p.ho, (p.ho + 1u) / 2u, ROWS2));
  let ow0 = r.x;
  let oh = r.y * select(1u, 2u, ROWS2);
  let t2 = r.z;
  let m = p.c_out / p.groups;
  var co = t2 % p.c_out;
  var n = t2 / p.c_out;
  if (PAIR) {
    // The plane index counts (image, group, pair of channels in the group).
    let pairs = (m + 1u) / 2u;
    let q = t2 % (p.groups * pairs);
    n = t2 / (p.groups * pairs);
    co = (q / pairs) * m + (q % pairs) * 2u;
  }
  // The pair's second channel, where the group has one (else co again, computed and dropped).
  let second = PAIR && co % m + 1u < m;
  let co2 = select(co, co + 1u, second);
  let cin_g = p.c_in / p.groups;
  let g = co / m;
  let ih0 = i32(oh * p.sh) - i32(p.pt);
  let c0 = i32(ow0 * p.sw) - i32(p.pl);
  let kk = p.kh * p.kw;
  if (ROW_X) {
    let cols = row_columns(c0);
    var r0 = Pair8();
    var r1 = Pair8();
    for (var ci = 0u; ci < cin_g; ci++) {
      let xc = (n * p.c_in + g * cin_g + ci) * p.h * p.w;
      let wc = (co * cin_g + ci) * kk;
      let wc2 = (co2 * cin_g + ci) * kk;
      var e = Win16();
      if (ROWS2) { e = window16(xc, ih0, c0, cols); }
      for (var ky = 0u; ky < p.kh; ky++) {
        if (!ROWS2) { e = window16(xc, ih0 + i32(ky * p.dh), c0, cols); }
        let t = row_taps(wc + ky * p.kw, wc2 + ky * p.kw);
        r0 = row_fma(r0, e, t);
        if (ROWS2) {
          // Input row ih0 + ky + 1: tap ky of output row oh + 1, tap ky + 1 of row oh.
          e = window16(xc, ih0 + i32(ky) + 1, c0, cols);
          r1 = row_fma(r1, e, t);
        }
      }
    }
    store_run8(n, co, oh, ow0, r0.a0, r0.a1);
    if (second) { store_run8(n, co2, oh, ow0, r0.b0, r0.b1); }
    if (ROWS2 && oh + 1u < p.ho) {
      store_run8(n, co, oh + 1u, ow0, r1.a0, r1.a1);
      if (second) { store_run8(n, co2, oh + 1u, ow0, r1.b0, r1.b1); }
    }
    return;
  }
  let s = i32(p.sw);
  let slide = p.dw == 1u && SX == p.sw;
  var a0 = 0.0; var a1 = 0.0; var a2 = 0.0; var a3 = 0.0;
  var a4 = 0.0; var a5 = 0.0; var a6 = 0.0; var a7 = 0.0;
  var b0 = 0.0; var b1 = 0.0; var b2 = 0.0; var b3 = 0.0;
  var b4 = 0.0; var b5 = 0.0; var b6 = 0.0; var b7 = 0.0;
  for (var ci = 0u; ci < cin_g; ci++) {
    let xc = (n * p.c_in + g * cin_g + ci) * p.h * p.w;
    let wc = (co * cin_g + ci) * kk;
    let wc2 = (co2 * cin_g + ci) * kk;
    for (var ky = 0u; ky < p.kh; ky++) {
      let ih = ih0 + i32(ky * p.dh);
      if (ih < 0 || ih >= i32(p.h)) { continue; }
      let row = xc + u32(ih) * p.w;
      let wr = wc + ky * p.kw;
      let wr2 = wc2 + ky * p.kw;
      if (slide) {
        // Kernel columns in sw phases (ph, ph + sw, ...): within one, pixel j's tap at column
        // kx reads c0 + sw * j + kx, so the 8 values slide by one pixel per step.
        for (var ph = 0u; ph < min(SX, p.kw); ph++) {
          let c = c0 + i32(ph);
          var x0 = tap_col(row, c);
          var x1 = tap_col(row, c + s);
          var x2 = tap_col(row, c + 2 * s);
          var x3 = tap_col(row, c + 3 * s);
          var x4 = tap_col(row, c + 4 * s);
          var x5 = tap_col(row, c + 5 * s);
          var x6 = tap_col(row, c + 6 * s);
          for (var kx = ph; kx < p.kw; kx += SX) {
            let x7 = tap_col(row, c0 + 7 * s + i32(kx));
            let wv = f32(load_w(wr + kx));
            a0 += wv * x0; a1 += wv * x1; a2 += wv * x2; a3 += wv * x3;
            a4 += wv * x4; a5 += wv * x5; a6 += wv * x6; a7 += wv * x7;
            if (PAIR) {
              let wv2 = f32(load_w(wr2 + kx));
              b0 += wv2 * x0; b1 += wv2 * x1; b2 += wv2 * x2; b3 += wv2 * x3;
              b4 += wv2 * x4; b5 += wv2 * x5; b6 += wv2 * x6; b7 += wv2 * x7;
            }
            x0 = x1; x1 = x2; x2 = x3; x3 = x4; x4 = x5; x5 = x6; x6 = x7;
          }
        }
      } else {
        for (var kx = 0u; kx < p.kw; kx++) {
          let c = c0 + i32(kx * p.dw);
          let x0 = tap_col(row, c);
          let x1 = tap_col(row, c + s);
          let x2 = tap_col(row, c + 2 * s);
          let x3 = tap_col(row, c + 3 * s);
          let x4 = tap_col(row, c + 4 * s);
          let x5 = tap_col(row, c + 5 * s);
          let x6 = tap_col(row, c + 6 * s);
          let x7 = tap_col(row, c + 7 * s);
          let wv = f32(load_w(wr + kx));
          a0 += wv * x0; a1 += wv * x1; a2 += wv * x2; a3 += wv * x3;
          a4 += wv * x4; a5 += wv * x5; a6 += wv * x6; a7 += wv * x7;
          if (PAIR) {
            let wv2 = f32(load_w(wr2 + kx));
            b0 += wv2 * x0; b1 += wv2 * x1; b2 += wv2 * x2; b3 += wv2 * x3;
            b4 += wv2 * x4; b5 += wv2 * x5; b6 += wv2 * x6; b7 += wv2 * x7;
          }
        }
      }
    }
  }
  store_run8(n, co, oh, ow0, vec4<f32>(a0, a1, a2, a3), vec4<f32>(a4, a5, a6, a7));
  if (second) {
    store_run8(n, co2, oh, ow0, vec4<f32>(b0, b1, b2, b3), vec4<f32>(b4, b5, b6, b7));
  }
}

// A run's accumulators with ROW_X: pixels 0..3 and 4..7 of channel co (a) and of the pair's
// second channel (b).
struct Pair8 { a0: vec4<f32>, a1: vec4<f32>, b0: vec4<f32>, b1: vec4<f32> }

// Input row ih of the channel plane at xc, columns c0 .. c0 + 13, as a Win16: read whole
// (clamped to a row inside the input) and zeroed where the row or a column lies outside.
fn window16(xc: u32, ih: i32, c0: i32, cols: Cols) -> Win16 {
  let row = xc + u32(clamp(ih, 0, i32(p.h) - 1)) * p.w;
  return masked_window(row_window_at(i32(row) + c0), cols, ih >= 0 && ih < i32(p.h));
}

// A kernel row's KW weights of channel co (a) and of the pair's second channel (b).
struct Taps { a0: f32, a1: f32, a2: f32, a3: f32, a4: f32, a5: f32, a6: f32,
              b0: f32, b1: f32, b2: f32, b3: f32, b4: f32, b5: f32, b6: f32 }

fn row_taps(wr: u32, wr2: u32) -> Taps {
  var t = Taps();
  t.a0 = f32(load_w(wr));
  if (KW > 1u) { t.a1 = f32(load_w(wr + 1u)); }
  if (KW > 2u) { t.a2 = f32(load_w(wr + 2u)); }
  if (KW > 3u) { t.a3 = f32(load_w(wr + 3u)); }
  if (KW > 4u) { t.a4 = f32(load_w(wr + 4u)); }
  if (KW > 5u) { t.a5 = f32(load_w(wr + 5u)); }
  if (KW > 6u) { t.a6 = f32(load_w(wr + 6u)); }
  if (PAIR) {
    t.b0 = f32(load_w(wr2));
    if (KW > 1u) { t.b1 = f32(load_w(wr2 + 1u)); }
    if (KW > 2u) { t.b2 = f32(load_w(wr2 + 2u)); }
    if (KW > 3u) { t.b3 = f32(load_w(wr2 + 3u)); }
    if (KW > 4u) { t.b4 = f32(load_w(wr2 + 4u)); }
    if (KW > 5u) { t.b5 = f32(load_w(wr2 + 5u)); }
    if (KW > 6u) { t.b6 = f32(load_w(wr2 + 6u)); }
  }
  return t;
}

// Tap kx (a constant where called) of a kernel row on the run's 8 windows.
fn tap(r: Pair8, e: Win16, wa: f32, wb: f32, kx: u32) -> Pair8 {
  var q = r;
  q.a0 += wa * win4(e, kx);
  q.a1 += wa * win4(e, kx + 4u);
  if (PAIR) {
    q.b0 += wb * win4(e, kx);
    q.b1 += wb * win4(e, kx + 4u);
  }
  return q;
}

// A kernel row's KW taps on the run's 8 windows, unrolled.
fn row_fma(r: Pair8, e: Win16, t: Taps) -> Pair8 {
  var q = tap(r, e, t.a0, t.b0, 0u);
  if (KW > 1u) { q = tap(q, e, t.a1, t.b1, 1u); }
  if (KW > 2u) { q = tap(q, e, t.a2, t.b2, 2u); }
  if (KW > 3u) { q = tap(q, e, t.a3, t.b3, 3u); }
  if (KW > 4u) { q = tap(q, e, t.a4, t.b4, 4u); }
  if (KW > 5u) { q = tap(q, e, t.a5, t.b5, 5u); }
  if (KW > 6u) { q = tap(q, e, t.a6, t.b6, 6u); }
  return q;
}

// Stores output pixels ow0 .. ow0 + 7 (those inside the row; lo holds 0..3, hi 4..7) of row
// oh, channel co, image n, with the bias and the activation.
fn store_run8(n: u32, co: u32, oh: u32, ow0: u32, lo: vec4<f32>, hi: vec4<f32>) {
  let bias = f32(load_b(co));
  let out = ((n * p.c_out + co) * p.ho + oh) * p.wo + ow0;
  let y0 = activate4(lo + bias, p.act);
  let y1 = activate4(hi + bias, p.act);
  if (VEC_Y) {
    store4_y(out, y0);
    if (ow0 + 4u < p.wo) { store4_y(out + 4u, y1); }
    return;
  }
  store_y(out, y0.x);
  if (ow0 + 1u < p.wo) { store_y(out + 1u, y0.y); }
  if (ow0 + 2u < p.wo) { store_y(out + 2u, y0.z); }
  if (ow0 + 3u < p.wo) { store_y(out + 3u, y0.w); }
  if (ow0 + 4u < p.wo) { store_y(out + 4u, y1.x); }
  if (ow0 + 5u < p.wo) { store_y(out + 5u, y1.y); }
  if (ow0 + 6u < p.wo) { store_y(out + 6u, y1.z); }
  if (ow0 + 7u < p.wo) { store_y(out + 7u, y1.w); }
}
