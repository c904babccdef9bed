// concat: copies one input into its channel slice of the output; a concat of k inputs is k
// dispatches of this kernel into the same output. Each item's input is one contiguous run of
// C_src * H * W elements, written at item offset (n * C_total + c_off) * H * W. Each invocation
// copies 4 elements 64 apart, so neighbouring invocations copy neighbouring elements.
// Bindings: 0 Params (uniform), 1 y [N, C_total, H, W], 2 x [N, C_src, H, W].
// Overrides: none. Grid: ceil(total / 256) workgroups of 64.
struct Params { c_src: u32, c_dst: u32, c_off: u32, hw: u32, total: u32, }
@group(0) @binding(0) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = (flat_id(wid, nwg, lid) - lid) * 4u + lid;
  let run = p.c_src * p.hw;
  for (var e = 0u; e < 4u; e++) {
    let o = first + e * 64u;
    if (o >= p.total) { return; }
    let n = o / run;
    store_y((n * p.c_dst + p.c_off) * p.hw + (o - n * run), f32(load_x(o)));
  }
}
