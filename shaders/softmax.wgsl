// softmax: over the channel axis (axis 1) of [N, C, inner], one invocation per output element;
// the row maximum is subtracted first so large logits do not overflow.
// Bindings: 0 Params (uniform), 1 y, 2 x.
// Overrides: none.
struct Params { c: u32, inner: u32, total: u32, }
@group(0) @binding(0) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = flat_id(wid, nwg, lid);
  if (o >= p.total) { return; }
  let i = o % p.inner;
  let n = o / (p.c * p.inner);
  let base = n * p.c * p.inner + i;
  var m = -3.4e38;
  for (var k = 0u; k < p.c; k++) {
    m = max(m, f32(load_x(base + k * p.inner)));
  }
  var s = 0.0;
  for (var k = 0u; k < p.c; k++) {
    s += exp(f32(load_x(base + k * p.inner)) - m);
  }
  store_y(o, exp(f32(load_x(o)) - m) / s);
}
