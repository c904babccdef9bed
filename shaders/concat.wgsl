// concat: copies one input into its channel slice of the output; a concat of k inputs is k
// dispatches of this kernel into the same output.
// Bindings: 0 Params (uniform), 1 y [N, C_total, H, W], 2 x [N, C_src, H, W].
// Overrides: none.
struct Params { c_src: u32, c_dst: u32, c_off: u32, hw: u32, total: u32, }
@group(0) @binding(0) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = flat_id(wid, nwg, lid);
  if (o >= p.total) { return; }
  let i = o % p.hw;
  let t = o / p.hw;
  let c = t % p.c_src;
  let n = t / p.c_src;
  store_y((n * p.c_dst + p.c_off + c) * p.hw + i, f32(load_x(o)));
}
