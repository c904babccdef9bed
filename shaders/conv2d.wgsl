// conv2d: direct grouped convolution, one invocation per output element (NCHW).
// Bindings: 0 Params (uniform), 1 y [N, C_out, H_out, W_out], 2 x [N, C_in, H, W],
//           3 w [C_out, C_in/groups, kh, kw], 4 b [C_out].
// Overrides: none.
struct Params {
  n: u32, c_in: u32, h: u32, w: u32,
  c_out: u32, ho: u32, wo: u32, groups: u32,
  kh: u32, kw: u32, sh: u32, sw: u32,
  dh: u32, dw: u32, pt: u32, pl: u32,
  act: u32, total: u32,
}
@group(0) @binding(0) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = flat_id(wid, nwg, lid);
  if (o >= p.total) { return; }
  let ow = o % p.wo;
  let t1 = o / p.wo;
  let oh = t1 % p.ho;
  let t2 = t1 / p.ho;
  let co = t2 % p.c_out;
  let n = t2 / p.c_out;
  let cin_g = p.c_in / p.groups;
  let g = co / (p.c_out / p.groups);
  let ih0 = i32(oh * p.sh) - i32(p.pt);
  let iw0 = i32(ow * p.sw) - i32(p.pl);
  var acc = 0.0;
  for (var ci = 0u; ci < cin_g; ci++) {
    let xc = (n * p.c_in + g * cin_g + ci) * p.h * p.w;
    let wc = (co * cin_g + ci) * p.kh * p.kw;
    for (var ky = 0u; ky < p.kh; ky++) {
      let ih = ih0 + i32(ky * p.dh);
      if (ih < 0 || ih >= i32(p.h)) { continue; }
      for (var kx = 0u; kx < p.kw; kx++) {
        let iw = iw0 + i32(kx * p.dw);
        if (iw < 0 || iw >= i32(p.w)) { continue; }
        acc += f32(load_x(xc + u32(ih) * p.w + u32(iw)) * load_w(wc + ky * p.kw + kx));
      }
    }
  }
  store_y(o, activate(acc + f32(load_b(co)), p.act));
}
