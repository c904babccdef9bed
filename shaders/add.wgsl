// add: y = act(x + r), element-wise over tensors of one shape (the residual add). Each
// invocation adds 4 consecutive elements, read and stored as 4-vectors (on CPU adapters every
// access is a gather or scatter, one lane at a time); the last one stores the 1-4 left.
// Bindings: 0 Params (uniform), 1 y, 2 x, 3 r (x and r as 4-vectors; buffers are padded to 16
// bytes). Grid: ceil(total / 4) invocations.
// Overrides: none.
struct Params { total: u32, act: u32, }
@group(0) @binding(0) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = flat_id(wid, nwg, lid);
  let i = o * 4u;
  if (i >= p.total) { return; }
  let v = activate4(vec4<f32>(load4_x(o)) + vec4<f32>(load4_r(o)), p.act);
  if (i + 3u < p.total) {
    store4_y(i, v);
    return;
  }
  for (var j = 0u; i + j < p.total; j++) {
    store_y(i + j, v[j]);
  }
}
