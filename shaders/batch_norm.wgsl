// batch_norm: inference-time batch norm as a per-channel affine map, y = act(x * s[c] + t[c]),
// with s = gamma / sqrt(var + eps) and t = beta - mean * s computed on the host. Where a conv
// precedes it, the loader folds it into the conv instead and this kernel is not used.
// Bindings: 0 Params (uniform), 1 y, 2 x [N, C, H, W], 3 s [C], 4 t [C].
// Overrides: none.
struct Params { c: u32, hw: u32, total: u32, act: u32, }
@group(0) @binding(0) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = flat_id(wid, nwg, lid);
  if (o >= p.total) { return; }
  let c = (o / p.hw) % p.c;
  store_y(o, activate(f32(load_x(o)) * f32(load_s(c)) + f32(load_t(c)), p.act));
}
