// pool: max or average pooling over a window (NCHW). Each invocation computes 4 neighbouring
// outputs of one row: it reads the columns their windows cover once (3 * sw + kw per window
// row instead of 4 * kw) and adds each to the windows that hold it. Loop bounds are the same
// for every invocation; padding and the image edge are masked per element.
// Window and divisor follow PyTorch: the window is clipped to the padded input
// (H + pad_bottom), the divisor counts padding when count_pad = 1, else only real elements.
// Bindings: 0 Params (uniform), 1 y [N, C, H_out, W_out], 2 x [N, C, H, W].
// Overrides: none. Grid: total = N * C * H_out * ceil(W_out / 4) invocations.
struct Params {
  h: u32, w: u32, ho: u32, wo: u32,
  kh: u32, kw: u32, sh: u32, sw: u32,
  pt: u32, pl: u32, pb: u32, pr: u32,
  is_max: u32, count_pad: u32, total: u32,
}
@group(0) @binding(0) var<uniform> p: Params;

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
  let h0 = i32(oh * p.sh) - i32(p.pt);
  let c0 = i32(ow0 * p.sw) - i32(p.pl);
  // Window j covers columns c0 + j * sw + [0, kw).
  let js = vec4<u32>(0u, 1u, 2u, 3u) * p.sw;
  let span = 3u * p.sw + p.kw;
  var best = vec4<f32>(-3.4e38);
  var sum = vec4<f32>(0.0);
  for (var r = 0u; r < p.kh; r++) {
    let ih = h0 + i32(r);
    let row_in = ih >= 0 && ih < i32(p.h);
    let row = plane + u32(clamp(ih, 0, i32(p.h) - 1)) * p.w;
    for (var d = 0u; d < span; d++) {
      let iw = c0 + i32(d);
      let v = f32(load_x(row + u32(clamp(iw, 0, i32(p.w) - 1))));
      let inside = row_in && iw >= 0 && iw < i32(p.w);
      let take = (vec4<u32>(d) >= js) & (vec4<u32>(d) < js + vec4<u32>(p.kw))
          & vec4<bool>(inside);
      best = select(best, max(best, vec4<f32>(v)), take);
      sum = select(sum, sum + vec4<f32>(v), take);
    }
  }
  let rows = extent(h0, p.kh, p.h, p.pb);
  for (var j = 0u; j < 4u; j++) {
    let ow = ow0 + j;
    if (ow >= p.wo) { break; }
    if (p.is_max == 1u) {
      store_y(out_row + ow, best[j]);
    } else {
      let cols = extent(c0 + i32(j * p.sw), p.kw, p.w, p.pr);
      var count = rows.x * cols.x;
      if (p.count_pad == 1u) { count = rows.y * cols.y; }
      store_y(out_row + ow, sum[j] / f32(count));
    }
  }
}
