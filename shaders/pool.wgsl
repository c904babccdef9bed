// pool: max or average pooling over a window (NCHW). Each invocation computes 4 neighbouring
// outputs of one row: it reads the columns their windows cover once (3 * SW + KW per window
// row instead of 4 * KW) and adds each to the windows that hold it. The window, the strides and
// the kind are override constants, so the loops unroll and which window takes which column is
// decided when the pipeline is compiled; padding and the image edge are masked per element.
// Window and divisor follow PyTorch: the window is clipped to the padded input
// (H + pad_bottom), the divisor counts padding when COUNT_PAD, else only real elements.
// Bindings: 0 Params (uniform), 1 y [N, C, H_out, W_out], 2 x [N, C, H, W].
// Overrides: KH, KW (window), SH, SW (strides), IS_MAX (max, else average), COUNT_PAD.
// Grid: total = N * C * H_out * ceil(W_out / 4) invocations.
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

// Elements of the window [start, start + k) inside [0, len) (x) and inside [0, len + pad_end)
// (y, the padded count).
fn extent(start: i32, k: u32, len: u32, pad_end: u32) -> vec2<i32> {
  let end = min(start + i32(k), i32(len + pad_end));
  return vec2<i32>(min(end, i32(len)) - max(start, 0), end - start);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_id(wid, nwg, lid);
  if (i >= p.total) { return; }
  let quads = (p.wo + 3u) / 4u;
  let ow0 = (i % quads) * 4u;
  let t = i / quads;
  let oh = t % p.ho;
  let plane = (t / p.ho) * p.h * p.w;
  let out_row = t * p.wo;
  let h0 = i32(oh * SH) - i32(p.pt);
  let c0 = i32(ow0 * SW) - i32(p.pl);
  // Window j covers columns c0 + j * SW + [0, KW).
  let js = vec4<u32>(0u, 1u, 2u, 3u) * SW;
  // Outside the input a value is -inf for max (never wins) and 0 for average.
  var none = 0.0;
  if (IS_MAX) { none = -3.4e38; }
  var acc = vec4<f32>(none);
  for (var r = 0u; r < KH; r++) {
    let ih = h0 + i32(r);
    let row_in = ih >= 0 && ih < i32(p.h);
    let row = plane + u32(clamp(ih, 0, i32(p.h) - 1)) * p.w;
    for (var d = 0u; d < 3u * SW + KW; d++) {
      let iw = c0 + i32(d);
      let inside = row_in && iw >= 0 && iw < i32(p.w);
      let v = vec4<f32>(select(none, f32(load_x(row + u32(clamp(iw, 0, i32(p.w) - 1)))), inside));
      let take = (vec4<u32>(d) >= js) & (vec4<u32>(d) < js + vec4<u32>(KW));
      if (IS_MAX) {
        acc = select(acc, max(acc, v), take);
      } else {
        acc = select(acc, acc + v, take);
      }
    }
  }
  let rows = extent(h0, KH, p.h, p.pb);
  for (var j = 0u; j < 4u; j++) {
    let ow = ow0 + j;
    if (ow >= p.wo) { break; }
    if (IS_MAX) {
      store_y(out_row + ow, acc[j]);
    } else {
      let cols = extent(c0 + i32(j * SW), KW, p.w, p.pr);
      var count = rows.x * cols.x;
      if (COUNT_PAD) { count = rows.y * cols.y; }
      store_y(out_row + ow, acc[j] / f32(count));
    }
  }
}
