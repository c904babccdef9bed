// global_avg_pool: mean over H x W per (n, c), one invocation per output.
// Bindings: 0 Params (uniform), 1 y [N, C, 1, 1], 2 x [N, C, H, W].
// Overrides: none.
struct Params { hw: u32, total: u32, }
@group(0) @binding(0) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = flat_id(wid, nwg, lid);
  if (o >= p.total) { return; }
  var sum = 0.0;
  for (var i = 0u; i < p.hw; i++) {
    sum += f32(load_x(o * p.hw + i));
  }
  store_y(o, sum / f32(p.hw));
}
