// pool: max or average pooling over a window (NCHW). Each invocation computes 4 neighbouring
// outputs of ROWS consecutive output rows: it reads the columns their windows cover once per
// input row (3 * SW + KW per row instead of 4 * KW) and each input row once for all the output
// rows whose windows hold it ((ROWS - 1) * SH + KH rows instead of ROWS * KH): each row's values
// are reduced over the 4 windows first, then the row's 4 results go to the output rows whose
// windows hold it. 3-wide windows at stride 1 or 2 (most pools) load the row's values once and
// reduce each window over its own three (at stride 1 sharing the middle pairs) instead of
// masking every value into every window (lavapipe, batch 16: 3x3 stride 1 on 28x28 and 14x14
// 1.17-1.2x, stride 2 on 112x112 1.05x; reading the rows as 4-vectors with VEC_X, then 1.27x
// and 1.49x). The window, the strides and the kind are override constants, so which window
// takes which row and column is decided when the pipeline is compiled; padding and the image
// edge are masked per element.
// Window and divisor follow PyTorch: the window is clipped to the padded input
// (H + pad_bottom), the divisor counts padding when COUNT_PAD, else only real elements.
// Bindings: 0 Params (uniform), 1 y [N, C, H_out, W_out], 2 x [N, C, H, W] (bound as 4-vectors).
// Overrides: KH, KW (window), SH, SW (strides), IS_MAX (max, else average), COUNT_PAD, ROWS
// (output rows per invocation, 1 to 4), VEC_Y (W_out a multiple of 4: each row's 4 outputs are
// one 4-vector store), VEC_X (below).
// Grid: total = N * C * ceil(H_out / ROWS) * ceil(W_out / 4) invocations.
struct Params {
  h: u32, w: u32, ho: u32, wo: u32,
  pt: u32, pl: u32, pb: u32, pr: u32,
  total: u32,
}
@group(0) @binding(0) var<uniform> p: Params;

override KH: u32 = 1u;
override KW: u32 = 1u;
override SH: u32 = 1u;
override SW: u32 = 1u;
override IS_MAX: bool = true;
override COUNT_PAD: bool = false;
override ROWS: u32 = 1u;
override VEC_Y: bool = false;
// Override VEC_X (3-wide windows; W a multiple of 4, and the left padding X_LEAD, 0 or 1): each
// invocation's row values after the first X_LEAD start on a 4-vector, and are read as
// 4-vectors. X_LEAD is 0 without VEC_X.
override VEC_X: bool = false;
override X_LEAD: u32 = 0u;

// Elements of the window [start, start + k) inside [0, len) (x) and inside [0, len + pad_end)
// (y, the padded count).
fn extent(start: i32, k: u32, len: u32, pad_end: u32) -> vec2<i32> {
  let end = min(start + i32(k), i32(len + pad_end));
  return vec2<i32>(min(end, i32(len)) - max(start, 0), end - start);
}

// A value outside the input: -inf for max (never wins), 0 for average.
fn outside() -> f32 {
  return select(0.0, -3.4e38, IS_MAX);
}

// a and b reduced: their maximum, or their sum.
fn reduce(a: f32, b: f32) -> f32 {
  if (IS_MAX) { return max(a, b); }
  return a + b;
}

// Column iw of the input row starting at element `row` (row_in: the row lies inside the
// input), outside() where it lies outside the input.
fn row_value(row: u32, row_in: bool, iw: i32) -> f32 {
  let inside = row_in && iw >= 0 && iw < i32(p.w);
  return select(outside(), f32(load_x(row + u32(clamp(iw, 0, i32(p.w) - 1)))), inside);
}

// Columns c .. c + 3 of the input row starting at element `row`, as row_value gives them: with
// VEC_X (c and the row's start then multiples of 4, and c >= 0) one 4-vector load, wholly
// inside the row or wholly outside it.
fn row_quad(row: u32, row_in: bool, c: i32) -> vec4<f32> {
  if (VEC_X) {
    let inside = row_in && c < i32(p.w);
    let v = vec4<f32>(load4_x((row + u32(min(c, i32(p.w) - 4))) / 4u));
    return select(vec4<f32>(outside()), v, inside);
  }
  return vec4<f32>(row_value(row, row_in, c), row_value(row, row_in, c + 1),
                   row_value(row, row_in, c + 2), row_value(row, row_in, c + 3));
}

// Columns c0 .. c0 + 3 SW + 2 of one input row (3-wide windows, stride 1 or 2; v6 .. v8 only at
// stride 2).
struct Row9 { v0: f32, v1: f32, v2: f32, v3: f32, v4: f32, v5: f32, v6: f32, v7: f32, v8: f32 }

// The Row9 from column c0 of the input row starting at element `row`: X_LEAD single values,
// then 4-vectors (row_quad), then single values again.
fn row_values(row: u32, row_in: bool, c0: i32) -> Row9 {
  var v: Row9;
  if (X_LEAD == 0u) {
    let q = row_quad(row, row_in, c0);
    v.v0 = q.x; v.v1 = q.y; v.v2 = q.z; v.v3 = q.w;
    if (SW == 1u) {
      v.v4 = row_value(row, row_in, c0 + 4);
      v.v5 = row_value(row, row_in, c0 + 5);
    } else {
      let u = row_quad(row, row_in, c0 + 4);
      v.v4 = u.x; v.v5 = u.y; v.v6 = u.z; v.v7 = u.w;
      v.v8 = row_value(row, row_in, c0 + 8);
    }
  } else {
    v.v0 = row_value(row, row_in, c0);
    let q = row_quad(row, row_in, c0 + 1);
    v.v1 = q.x; v.v2 = q.y; v.v3 = q.z; v.v4 = q.w;
    if (SW == 1u) {
      v.v5 = row_value(row, row_in, c0 + 5);
    } else {
      let u = row_quad(row, row_in, c0 + 5);
      v.v5 = u.x; v.v6 = u.y; v.v7 = u.z; v.v8 = u.w;
    }
  }
  return v;
}

// The 4 windows' values with v added where `take` holds.
fn gather(acc: vec4<f32>, v: vec4<f32>, take: vec4<bool>) -> vec4<f32> {
  if (IS_MAX) { return select(acc, max(acc, v), take); }
  return select(acc, acc + v, take);
}

// Whether output row j of the invocation's rows takes input row r (its window's rows are
// j * SH .. j * SH + KH - 1).
fn takes_row(j: u32, r: u32) -> vec4<bool> {
  return vec4<bool>(r >= j * SH && r < j * SH + KH);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_id(wid, nwg, lid);
  if (i >= p.total) { return; }
  let quads = (p.wo + 3u) / 4u;
  let bands = (p.ho + ROWS - 1u) / ROWS;
  let ow0 = (i % quads) * 4u;
  let t = i / quads;
  let oh0 = (t % bands) * ROWS;
  // Image * C + channel.
  let nc = t / bands;
  let plane = nc * p.h * p.w;
  let h0 = i32(oh0 * SH) - i32(p.pt);
  let c0 = i32(ow0 * SW) - i32(p.pl);
  // Window j covers columns c0 + j * SW + [0, KW).
  let js = vec4<u32>(0u, 1u, 2u, 3u) * SW;
  // outside()'s value, set here with a branch on the constant: the same value from `let none =
  // outside()` made lavapipe compile this kernel 2.1x slower on ResNet-50's pool1 (3x3/2 on 112
  // x 112) and left other pools as they were (docs/results/lavapipe-branchless-activation.txt).
  var none = 0.0;
  if (IS_MAX) { none = -3.4e38; }
  var a0 = vec4<f32>(none);
  var a1 = vec4<f32>(none);
  var a2 = vec4<f32>(none);
  var a3 = vec4<f32>(none);
  for (var r = 0u; r < (ROWS - 1u) * SH + KH; r++) {
    let ih = h0 + i32(r);
    let row_in = ih >= 0 && ih < i32(p.h);
    let row = plane + u32(clamp(ih, 0, i32(p.h) - 1)) * p.w;
    // The 4 windows' reductions over this row, then each output row whose window holds the
    // row takes them: (3 * SW + KW) + ROWS vector steps per row instead of (3 * SW + KW) * ROWS.
    var h = vec4<f32>(none);
    if (KW == 3u && SW <= 2u) {
      // 3-wide windows at stride 1 or 2 (most pools): the row's 3 SW + 3 values, then each
      // window over its own three.
      let v = row_values(row, row_in, c0);
      if (SW == 1u) {
        let m12 = reduce(v.v1, v.v2);
        let m34 = reduce(v.v3, v.v4);
        h = vec4<f32>(reduce(v.v0, m12), reduce(m12, v.v3), reduce(v.v2, m34), reduce(m34, v.v5));
      } else {
        h = vec4<f32>(reduce(reduce(v.v0, v.v1), v.v2), reduce(reduce(v.v2, v.v3), v.v4),
                      reduce(reduce(v.v4, v.v5), v.v6), reduce(reduce(v.v6, v.v7), v.v8));
      }
    } else {
      for (var d = 0u; d < 3u * SW + KW; d++) {
        let v = vec4<f32>(row_value(row, row_in, c0 + i32(d)));
        h = gather(h, v, (vec4<u32>(d) >= js) & (vec4<u32>(d) < js + vec4<u32>(KW)));
      }
    }
    a0 = gather(a0, h, takes_row(0u, r));
    if (ROWS > 1u) { a1 = gather(a1, h, takes_row(1u, r)); }
    if (ROWS > 2u) { a2 = gather(a2, h, takes_row(2u, r)); }
    if (ROWS > 3u) { a3 = gather(a3, h, takes_row(3u, r)); }
  }
  let out_plane = nc * p.ho * p.wo;
  store_row(out_plane, oh0, ow0, h0, c0, a0);
  if (ROWS > 1u) { store_row(out_plane, oh0 + 1u, ow0, h0 + i32(SH), c0, a1); }
  if (ROWS > 2u) { store_row(out_plane, oh0 + 2u, ow0, h0 + 2 * i32(SH), c0, a2); }
  if (ROWS > 3u) { store_row(out_plane, oh0 + 3u, ow0, h0 + 3 * i32(SH), c0, a3); }
}

// Stores outputs ow0 .. ow0 + 3 (those inside the row) of output row oh (if inside the map),
// whose windows start at input row h and columns c0, c0 + SW, ...: the maxima, or the sums over
// their element counts.
fn store_row(out_plane: u32, oh: u32, ow0: u32, h: i32, c0: i32, acc: vec4<f32>) {
  if (oh >= p.ho) { return; }
  var y = acc;
  if (!IS_MAX) {
    let rows = extent(h, KH, p.h, p.pb);
    var count = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
      let cols = extent(c0 + i32(j * SW), KW, p.w, p.pr);
      count[j] = f32(select(rows.x * cols.x, rows.y * cols.y, COUNT_PAD));
    }
    y = acc / max(count, vec4<f32>(1.0));
  }
  let out = out_plane + oh * p.wo + ow0;
  if (VEC_Y) {
    store4_y(out, y);
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    if (ow0 + j >= p.wo) { break; }
    store_y(out + j, y[j]);
  }
}
