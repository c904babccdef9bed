// pool: max or average pooling over a window, one invocation per output element (NCHW).
// Window and divisor follow PyTorch: the window is clipped to the padded input
// (H + pad_bottom), the divisor counts padding when count_pad = 1, else only real elements.
// Bindings: 0 Params (uniform), 1 y [N, C, H_out, W_out], 2 x [N, C, H, W].
// Overrides: none.
struct Params {
  h: u32, w: u32, ho: u32, wo: u32,
  kh: u32, kw: u32, sh: u32, sw: u32,
  pt: u32, pl: u32, pb: u32, pr: u32,
  is_max: u32, count_pad: u32, total: u32,
}
@group(0) @binding(0) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = flat_id(wid, nwg, lid);
  if (o >= p.total) { return; }
  let ow = o % p.wo;
  let t = o / p.wo;
  let oh = t % p.ho;
  let plane = (t / p.ho) * p.h * p.w;
  var h0 = i32(oh * p.sh) - i32(p.pt);
  var w0 = i32(ow * p.sw) - i32(p.pl);
  var h1 = min(h0 + i32(p.kh), i32(p.h + p.pb));
  var w1 = min(w0 + i32(p.kw), i32(p.w + p.pr));
  let padded_count = (h1 - h0) * (w1 - w0);
  h0 = max(h0, 0);
  w0 = max(w0, 0);
  h1 = min(h1, i32(p.h));
  w1 = min(w1, i32(p.w));
  var best = -3.4e38;
  var sum = 0.0;
  for (var ih = h0; ih < h1; ih++) {
    for (var iw = w0; iw < w1; iw++) {
      let v = f32(load_x(plane + u32(ih) * p.w + u32(iw)));
      best = max(best, v);
      sum += v;
    }
  }
  if (p.is_max == 1u) {
    store_y(o, best);
  } else {
    var count = (h1 - h0) * (w1 - w0);
    if (p.count_pad == 1u) { count = padded_count; }
    store_y(o, sum / f32(count));
  }
}
