// conv2d: direct grouped convolution (NCHW): entry `main`, one invocation per output element;
// entry `main_row`, one invocation per 4 consecutive output pixels of one output row; entry
// `main_row8`, 8 of them.
// Bindings: 0 Params (uniform), 1 y [N, C_out, H_out, W_out], 2 x [N, C_in, H, W],
//           3 w [C_out, C_in/groups, kh, kw], 4 b [C_out].
// Overrides: SX, PAIR (main_row8). Grid: `total` invocations (outputs, or rows' runs of 4 or 8) over x and y.
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

// Row run o of `width` output pixels: (its first column, its output row, the index of its
// output plane: image * C_out + channel).
fn row_run(o: u32, width: u32) -> vec3<u32> {
  let runs = (p.wo + width - 1u) / width;
  let t1 = o / runs;
  return vec3<u32>((o % runs) * width, t1 % p.ho, t1 / p.ho);
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
  let r = row_run(o, 4u);
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
// main_row takes on CPU adapters, where every load is a gather, one lane at a time. With
// dw = 1 the 8 windows of a kernel row overlap: in each of sw phases of its columns the
// inputs are loaded once and slid along them (with sw = 1, kw + 7 input loads and kw weight
// loads per 8 * kw multiply-adds; main_row makes 5 loads per 4); dilated rows load 8 taps per
// weight. total = N * C_out * H_out * ceil(W_out / 8), or with PAIR N * groups * ceil(M / 2) *
// H_out * ceil(W_out / 8). Overrides: SX, the stride along x (sw), compiled in so that the
// stride-1 pipeline has one phase and unit steps; PAIR, for groups of 2 or 3 outputs: each
// invocation also computes the next channel of its group from the same loaded inputs.
override SX: u32 = 1u;
override PAIR: bool = false;
// Override VEC_Y: W_out is a multiple of 4, so each run is one or two 4-vector stores.
override VEC_Y: bool = false;
// VEC_X, SHIFT, X4 (row_vec.wgsl): input rows read as 4-vectors where dw = 1.

@compute @workgroup_size(64)
fn main_row8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let o = flat_id(wid, nwg, lid);
  if (o >= p.total) { return; }
  let r = row_run(o, 8u);
  let ow0 = r.x;
  let oh = r.y;
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
  let s = i32(p.sw);
  let slide = p.dw == 1u && SX == p.sw;
  var a0 = 0.0; var a1 = 0.0; var a2 = 0.0; var a3 = 0.0;
  var a4 = 0.0; var a5 = 0.0; var a6 = 0.0; var a7 = 0.0;
  var b0 = 0.0; var b1 = 0.0; var b2 = 0.0; var b3 = 0.0;
  var b4 = 0.0; var b5 = 0.0; var b6 = 0.0; var b7 = 0.0;
  let kk = p.kh * p.kw;
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
          var x0 = 0.0; var x1 = 0.0; var x2 = 0.0; var x3 = 0.0;
          var x4 = 0.0; var x5 = 0.0; var x6 = 0.0;
          var y0 = 0.0; var y1 = 0.0; var y2 = 0.0; var y3 = 0.0;
          var y4 = 0.0; var y5 = 0.0; var y6 = 0.0;
          if (VEC_X) {
            // Stride 1: one phase, c = c0.
            let win = row_window((i32(row) + c - i32(SHIFT)) >> 2u);
            x0 = select(0.0, win.x0, u32(c) < p.w);
            x1 = select(0.0, win.x1, u32(c + 1) < p.w);
            x2 = select(0.0, win.x2, u32(c + 2) < p.w);
            x3 = select(0.0, win.x3, u32(c + 3) < p.w);
            x4 = select(0.0, win.x4, u32(c + 4) < p.w);
            x5 = select(0.0, win.x5, u32(c + 5) < p.w);
            x6 = select(0.0, win.x6, u32(c + 6) < p.w);
            y0 = win.y0; y1 = win.y1; y2 = win.y2; y3 = win.y3; y4 = win.y4; y5 = win.y5;
            y6 = win.y6;
          } else {
            x0 = tap_col(row, c);
            x1 = tap_col(row, c + s);
            x2 = tap_col(row, c + 2 * s);
            x3 = tap_col(row, c + 3 * s);
            x4 = tap_col(row, c + 4 * s);
            x5 = tap_col(row, c + 5 * s);
            x6 = tap_col(row, c + 6 * s);
          }
          for (var kx = ph; kx < p.kw; kx += SX) {
            var x7 = 0.0;
            if (VEC_X) {
              x7 = select(0.0, y0, u32(c0 + 7 + i32(kx)) < p.w);
              y0 = y1; y1 = y2; y2 = y3; y3 = y4; y4 = y5; y5 = y6;
            } else {
              x7 = tap_col(row, c0 + 7 * s + i32(kx));
            }
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
  store_run8(n, co, oh, ow0, a0, a1, a2, a3, a4, a5, a6, a7);
  if (second) {
    store_run8(n, co2, oh, ow0, b0, b1, b2, b3, b4, b5, b6, b7);
  }
}

// Stores output pixels ow0 .. ow0 + 7 (those inside the row) of row oh, channel co, image n,
// with the bias and the activation.
fn store_run8(n: u32, co: u32, oh: u32, ow0: u32, a0: f32, a1: f32, a2: f32, a3: f32, a4: f32,
              a5: f32, a6: f32, a7: f32) {
  let bias = f32(load_b(co));
  let out = ((n * p.c_out + co) * p.ho + oh) * p.wo + ow0;
  if (VEC_Y) {
    store4_y(out, activate4(vec4<f32>(a0, a1, a2, a3) + bias, p.act));
    if (ow0 + 4u < p.wo) { store4_y(out + 4u, activate4(vec4<f32>(a4, a5, a6, a7) + bias, p.act)); }
    return;
  }
  store_y(out, activate(a0 + bias, p.act));
  if (ow0 + 1u < p.wo) { store_y(out + 1u, activate(a1 + bias, p.act)); }
  if (ow0 + 2u < p.wo) { store_y(out + 2u, activate(a2 + bias, p.act)); }
  if (ow0 + 3u < p.wo) { store_y(out + 3u, activate(a3 + bias, p.act)); }
  if (ow0 + 4u < p.wo) { store_y(out + 4u, activate(a4 + bias, p.act)); }
  if (ow0 + 5u < p.wo) { store_y(out + 5u, activate(a5 + bias, p.act)); }
  if (ow0 + 6u < p.wo) { store_y(out + 6u, activate(a6 + bias, p.act)); }
  if (ow0 + 7u < p.wo) { store_y(out + 7u, activate(a7 + bias, p.act)); }
}
