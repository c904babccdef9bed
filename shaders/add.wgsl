// add: y = act(x + r), element-wise over tensors of one shape (the residual add).
// Bindings: 0 Params (uniform), 1 y, 2 x, 3 r.
// Overrides: none.
struct Params { total: u32, act: u32, }
@group(0) @binding(0) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = flat_id(wid, nwg, lid);
  if (o >= p.total) { return; }
  store_y(o, activate(f32(load_x(o)) + f32(load_r(o)), p.act));
}
