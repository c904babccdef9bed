
// row_vec: a kernel row's values for 8 windows of stride 1, shared by the row kernels
// (conv2d.wgsl's main_row8, conv2d_gemm_sg.wgsl's main8_row8_sg); appended to them, with x
// bound as 4-vectors. On CPU adapters every load is a loop over the lanes: where rows start on
// 4-element boundaries, X4 4-vector loads replace kw + 7 single ones. Also the masked window
// (Win16) the kernels' unrolled taps read.
// Overrides VEC_X, SHIFT, X4: the kernel reads rows so (stride 1, kw <= 7 and W a multiple of
// 4, so that every input row starts on a 4-element boundary); SHIFT = (-pl) mod 4, the first
// window's offset from the 4-aligned column below it; X4 = ceil((SHIFT + kw + 7) / 4) <= 5.
override VEC_X: bool = false;
override SHIFT: u32 = 0u;
override X4: u32 = 1u;
// Override ROW_X: stride and dilation 1 along x and kw <= 7, so a kernel row's 8 windows are 14
// values from one start (row_window_at; as 4-vectors where VEC_X, else kw + 7 single loads) and
// the kernels unroll its KW taps (override KW, the kernel's width).
override ROW_X: bool = false;
override KW: u32 = 1u;

// A kernel row's values for 8 windows of stride 1: x0 .. x6, the first 7 columns of the first
// window, and y0 .. y6, the values entering it at kx = 0 .. 6. Unmasked: the caller zeroes
// those outside the input.
struct RowWindow {
  x0: f32, x1: f32, x2: f32, x3: f32, x4: f32, x5: f32, x6: f32,
  y0: f32, y1: f32, y2: f32, y3: f32, y4: f32, y5: f32, y6: f32,
}

// The window from the X4 4-vectors at index q, q + 1, ... of x (q is the 4-aligned column
// below the first window's; negative indices, left of the first row, read index 0).
fn row_window(q: i32) -> RowWindow {
  let v0 = vec4<f32>(load4_x(u32(max(q, 0))));
  let v1 = vec4<f32>(load4_x(u32(max(q + 1, 0))));
  let v2 = vec4<f32>(load4_x(u32(max(q + 2, 0))));
  var v3 = vec4<f32>(0.0);
  var v4 = vec4<f32>(0.0);
  if (X4 > 3u) { v3 = vec4<f32>(load4_x(u32(max(q + 3, 0)))); }
  if (X4 > 4u) { v4 = vec4<f32>(load4_x(u32(max(q + 4, 0)))); }
  return RowWindow(
    pick(v0, v1, v2, v3, v4, SHIFT), pick(v0, v1, v2, v3, v4, SHIFT + 1u),
    pick(v0, v1, v2, v3, v4, SHIFT + 2u), pick(v0, v1, v2, v3, v4, SHIFT + 3u),
    pick(v0, v1, v2, v3, v4, SHIFT + 4u), pick(v0, v1, v2, v3, v4, SHIFT + 5u),
    pick(v0, v1, v2, v3, v4, SHIFT + 6u), pick(v0, v1, v2, v3, v4, SHIFT + 7u),
    pick(v0, v1, v2, v3, v4, SHIFT + 8u), pick(v0, v1, v2, v3, v4, SHIFT + 9u),
    pick(v0, v1, v2, v3, v4, SHIFT + 10u), pick(v0, v1, v2, v3, v4, SHIFT + 11u),
    pick(v0, v1, v2, v3, v4, SHIFT + 12u), pick(v0, v1, v2, v3, v4, SHIFT + 13u));
}

// The 14 values of a kernel row's 8 windows from element i of x on (unmasked; elements left of
// the buffer's start read element 0): row_window where VEC_X (rows start on 4-element
// boundaries), else the KW + 7 values the taps use, one load each.
fn row_window_at(i: i32) -> RowWindow {
  if (VEC_X) { return row_window((i - i32(SHIFT)) >> 2u); }
  var r = RowWindow();
  r.x0 = f32(load_x(u32(max(i, 0))));
  r.x1 = f32(load_x(u32(max(i + 1, 0))));
  r.x2 = f32(load_x(u32(max(i + 2, 0))));
  r.x3 = f32(load_x(u32(max(i + 3, 0))));
  r.x4 = f32(load_x(u32(max(i + 4, 0))));
  r.x5 = f32(load_x(u32(max(i + 5, 0))));
  r.x6 = f32(load_x(u32(max(i + 6, 0))));
  r.y0 = f32(load_x(u32(max(i + 7, 0))));
  if (KW > 1u) { r.y1 = f32(load_x(u32(max(i + 8, 0)))); }
  if (KW > 2u) { r.y2 = f32(load_x(u32(max(i + 9, 0)))); }
  if (KW > 3u) { r.y3 = f32(load_x(u32(max(i + 10, 0)))); }
  if (KW > 4u) { r.y4 = f32(load_x(u32(max(i + 11, 0)))); }
  if (KW > 5u) { r.y5 = f32(load_x(u32(max(i + 12, 0)))); }
  if (KW > 6u) { r.y6 = f32(load_x(u32(max(i + 13, 0)))); }
  return r;
}

// Value j of the 4-vectors v0 .. v4 read as one array of 20, with selects (j is a constant
// where the callers use it): a function-local array indexed at run time lives in memory on
// CPU adapters.
fn pick(v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>, v4: vec4<f32>, j: u32)
    -> f32 {
  let q = j >> 2u;
  let v = select(select(select(select(v0, v1, q == 1u), v2, q == 2u), v3, q == 3u), v4, q == 4u);
  let r = j & 3u;
  return select(select(select(v.x, v.y, r == 1u), v.z, r == 2u), v.w, r == 3u);
}

// The 14 values of a kernel row for 8 windows of stride 1 (value j is column c0 + j), zero
// outside the input, in 4-vectors (the last two components unused).
struct Win16 { e0: vec4<f32>, e1: vec4<f32>, e2: vec4<f32>, e3: vec4<f32> }

// Which of columns c0 .. c0 + 15 lie inside an input row, per 4-vector of a Win16.
struct Cols { k0: vec4<bool>, k1: vec4<bool>, k2: vec4<bool>, k3: vec4<bool> }

fn row_columns(c0: i32) -> Cols {
  let c = vec4<i32>(c0) + vec4<i32>(0, 1, 2, 3);
  let w = vec4<u32>(p.w);
  return Cols(vec4<u32>(c) < w, vec4<u32>(c + 4) < w, vec4<u32>(c + 8) < w,
              vec4<u32>(c + 12) < w);
}

// A row window as a Win16, zeroed where the row (ok false) or a column lies outside the input.
fn masked_window(r: RowWindow, cols: Cols, ok: bool) -> Win16 {
  let z = vec4<f32>(0.0);
  let k = vec4<bool>(ok);
  return Win16(select(z, vec4<f32>(r.x0, r.x1, r.x2, r.x3), cols.k0 & k),
               select(z, vec4<f32>(r.x4, r.x5, r.x6, r.y0), cols.k1 & k),
               select(z, vec4<f32>(r.y1, r.y2, r.y3, r.y4), cols.k2 & k),
               select(z, vec4<f32>(r.y5, r.y6, 0.0, 0.0), cols.k3 & k));
}

// The 4 values of a Win16 from value j on (j a constant where called: the switch folds away).
fn win4(e: Win16, j: u32) -> vec4<f32> {
  switch (j) {
    case 0u: { return e.e0; }
    case 1u: { return vec4<f32>(e.e0.yzw, e.e1.x); }
    case 2u: { return vec4<f32>(e.e0.zw, e.e1.xy); }
    case 3u: { return vec4<f32>(e.e0.w, e.e1.xyz); }
    case 4u: { return e.e1; }
    case 5u: { return vec4<f32>(e.e1.yzw, e.e2.x); }
    case 6u: { return vec4<f32>(e.e1.zw, e.e2.xy); }
    case 7u: { return vec4<f32>(e.e1.w, e.e2.xyz); }
    case 8u: { return e.e2; }
    case 9u: { return vec4<f32>(e.e2.yzw, e.e3.x); }
    default: { return vec4<f32>(e.e2.zw, e.e3.xy); }
  }
}

// Override ROW_X2 (the GEMM row kernel only): stride 2 and dilation 1 along x and kw <= 7, so a
// kernel row's 8 windows are 14 + KW values from one start (row_window2; as X4 <= 6 4-vectors
// where VEC_X, else single loads) and the kernel unrolls its KW taps as with ROW_X.
override ROW_X2: bool = false;

// Up to 24 values of a kernel row (value j is column c0 + j), zero outside the input.
struct Win24 {
  e0: vec4<f32>, e1: vec4<f32>, e2: vec4<f32>, e3: vec4<f32>, e4: vec4<f32>, e5: vec4<f32>,
}

// A Win16 as a Win24 (values 16 .. 23 zero).
fn win24(e: Win16) -> Win24 {
  let z = vec4<f32>(0.0);
  return Win24(e.e0, e.e1, e.e2, e.e3, z, z);
}

// Value j of a Win24 (j a constant where called: the switch folds away).
fn win1(e: Win24, j: u32) -> f32 {
  switch (j >> 2u) {
    case 0u: { return e.e0[j & 3u]; }
    case 1u: { return e.e1[j & 3u]; }
    case 2u: { return e.e2[j & 3u]; }
    case 3u: { return e.e3[j & 3u]; }
    case 4u: { return e.e4[j & 3u]; }
    default: { return e.e5[j & 3u]; }
  }
}

// Values j .. j + 3 of the 4-vectors v read as one array (j a constant where called).
fn pick4(v: Win24, j: u32) -> vec4<f32> {
  return vec4<f32>(win1(v, j), win1(v, j + 1u), win1(v, j + 2u), win1(v, j + 3u));
}

// Element i + j of x where j < 14 + KW (the values a stride-2 kernel row's 8 windows use; j a
// constant where called), else 0; elements left of the buffer's start read element 0.
fn row2_value(i: i32, j: u32) -> f32 {
  if (j < 14u + KW) { return f32(load_x(u32(max(i + i32(j), 0)))); }
  return 0.0;
}

// The 14 + KW values of a stride-2 kernel row from element i of x (column c0) on, zeroed where
// the row (ok false) or a column lies outside the input. Where VEC_X, the X4 4-vectors from the
// 4-aligned column below c0 (SHIFT columns before it), realigned.
fn row_window2(i: i32, c0: i32, ok: bool) -> Win24 {
  var r: Win24;
  if (VEC_X) {
    let q = (i - i32(SHIFT)) >> 2u;
    var v: Win24;
    v.e0 = vec4<f32>(load4_x(u32(max(q, 0))));
    v.e1 = vec4<f32>(load4_x(u32(max(q + 1, 0))));
    v.e2 = vec4<f32>(load4_x(u32(max(q + 2, 0))));
    v.e3 = vec4<f32>(load4_x(u32(max(q + 3, 0))));
    if (X4 > 4u) { v.e4 = vec4<f32>(load4_x(u32(max(q + 4, 0)))); }
    if (X4 > 5u) { v.e5 = vec4<f32>(load4_x(u32(max(q + 5, 0)))); }
    r = Win24(pick4(v, SHIFT), pick4(v, SHIFT + 4u), pick4(v, SHIFT + 8u),
              pick4(v, SHIFT + 12u), pick4(v, SHIFT + 16u), pick4(v, SHIFT + 20u));
  } else {
    r.e0 = vec4<f32>(row2_value(i, 0u), row2_value(i, 1u), row2_value(i, 2u), row2_value(i, 3u));
    r.e1 = vec4<f32>(row2_value(i, 4u), row2_value(i, 5u), row2_value(i, 6u), row2_value(i, 7u));
    r.e2 = vec4<f32>(row2_value(i, 8u), row2_value(i, 9u), row2_value(i, 10u),
                     row2_value(i, 11u));
    r.e3 = vec4<f32>(row2_value(i, 12u), row2_value(i, 13u), row2_value(i, 14u),
                     row2_value(i, 15u));
    r.e4 = vec4<f32>(row2_value(i, 16u), row2_value(i, 17u), row2_value(i, 18u),
                     row2_value(i, 19u));
    r.e5 = vec4<f32>(row2_value(i, 20u), 0.0, 0.0, 0.0);
  }
  let c = vec4<i32>(c0) + vec4<i32>(0, 1, 2, 3);
  let w = vec4<u32>(p.w);
  let k = vec4<bool>(ok);
  let z = vec4<f32>(0.0);
  return Win24(select(z, r.e0, (vec4<u32>(c) < w) & k), select(z, r.e1, (vec4<u32>(c + 4) < w) & k),
               select(z, r.e2, (vec4<u32>(c + 8) < w) & k),
               select(z, r.e3, (vec4<u32>(c + 12) < w) & k),
               select(z, r.e4, (vec4<u32>(c + 16) < w) & k),
               select(z, r.e5, (vec4<u32>(c + 20) < w) & k));
}
