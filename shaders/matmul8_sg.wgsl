
// main_sg: the 8 x 4 tiles of `main` for adapters with subgroups (appended to matmul8.wgsl
// only where the device has them). A workgroup is WX x (64 / WX) invocations; each row of WX
// shares one 8-row tile of A and takes 4 columns per invocation, so at every k the subgroup
// loads the tile's 8 weights once (lane r: row r; with 4-lane subgroups, rows r and r + 4) and
// shares them by broadcast, instead of every invocation loading all eight: on CPU adapters each
// load is a gather, one lane at a time. WX is a multiple of the largest subgroup, whose lanes
// are consecutive invocations, so a subgroup never spans two rows. No invocation leaves early
// (broadcasts need the whole subgroup): columns and rows past the edge read valid elements and
// are not stored.
// Overrides: VEC_B as `main`; SUBGROUP (subgroup_weights.wgsl); WX:
// invocations along N per workgroup row (a power of two, 4 to 64).
// Grid: x = min(ceil(N / (4 * WX)), 65535) (blocks of columns, looped over),
// y = ceil(ceil(M / 8) / (64 / WX)), z = batches * groups.
override WX: u32 = 64u;

@compute @workgroup_size(64)
fn main_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32,
           @builtin(subgroup_invocation_id) lane: u32) {
  // Row lid3.y of WX invocations, lid3.x along it (a 1-D workgroup: naga takes subgroup
  // builtins only there).
  let lid3 = vec2<u32>(li % WX, li / WX);
  let g = wid.z % p.groups;
  let b = wid.z / p.groups;
  let lid = lid3.x;
  let mp = (p.m + 7u) / 8u * 8u;
  let tm = wid.y * (64u / WX) + lid3.y;
  // Rows past the last tile load the last tile and store nothing.
  let m0 = min(tm, mp / 8u - 1u) * 8u;
  let own_tile = tm * 8u < mp;
  let b_base = b * p.sb_b + g * p.sb_g;
  let c_base = b * p.sc_b + g * p.sc_g;
  let bias_base = g * p.m;
  let last = p.n - 1u;
  let a_base = g * p.k * mp + m0;
  for (var blk = wid.x; blk * 4u * WX < p.n; blk += nwg.x) {
    let n0 = blk * 4u * WX + lid * 4u;
    let c0 = b_base + min(n0, last) * p.sb_n;
    let c1 = b_base + min(n0 + 1u, last) * p.sb_n;
    let c2 = b_base + min(n0 + 2u, last) * p.sb_n;
    let c3 = b_base + min(n0 + 3u, last) * p.sb_n;
    // With VEC_B, N is a multiple of 4: the last whole 4-vector stands in past the edge.
    let cv = (b_base + min(n0, p.n - 4u) * p.sb_n) / 4u;
    var lo0 = vec4<f32>(0.0);
    var lo1 = vec4<f32>(0.0);
    var lo2 = vec4<f32>(0.0);
    var lo3 = vec4<f32>(0.0);
    var hi0 = vec4<f32>(0.0);
    var hi1 = vec4<f32>(0.0);
    var hi2 = vec4<f32>(0.0);
    var hi3 = vec4<f32>(0.0);
    var ai = a_base;
    var kb = 0u;
    for (var kk = 0u; kk < p.k; kk++) {
      let t = tile_weights(ai, lane);
      let a = t.lo;
      let c = t.hi;
      ai += mp;
      var xv: vec4<f32>;
      if (VEC_B) {
        xv = vec4<f32>(load4_x(cv + kb / 4u));
      } else {
        xv = vec4<f32>(f32(load_x(c0 + kb)), f32(load_x(c1 + kb)), f32(load_x(c2 + kb)),
                       f32(load_x(c3 + kb)));
      }
      kb += p.sb_k;
      lo0 += a * xv.x;
      lo1 += a * xv.y;
      lo2 += a * xv.z;
      lo3 += a * xv.w;
      hi0 += c * xv.x;
      hi1 += c * xv.y;
      hi2 += c * xv.z;
      hi3 += c * xv.w;
    }
    if (own_tile) {
      store_col(c_base, m0, n0, lo0, bias_base);
      store_col(c_base, m0, n0 + 1u, lo1, bias_base);
      store_col(c_base, m0, n0 + 2u, lo2, bias_base);
      store_col(c_base, m0, n0 + 3u, lo3, bias_base);
      store_col(c_base, m0 + 4u, n0, hi0, bias_base);
      store_col(c_base, m0 + 4u, n0 + 1u, hi1, bias_base);
      store_col(c_base, m0 + 4u, n0 + 2u, hi2, bias_base);
      store_col(c_base, m0 + 4u, n0 + 3u, hi3, bias_base);
    }
  }
}

// main_sg8: main_sg with 8 columns per invocation (two 4-vectors of B): with the weights shared
// by broadcast, one weight gather and 8 input gathers feed 64 multiply-adds. Rows of WX
// invocations cover 8 * WX columns. Grid: x = min(ceil(N / (8 * WX)), 65535), y and z as
// main_sg.
@compute @workgroup_size(64)
fn main_sg8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32,
            @builtin(subgroup_invocation_id) lane: u32) {
  let lid3 = vec2<u32>(li % WX, li / WX);
  let g = wid.z % p.groups;
  let b = wid.z / p.groups;
  let lid = lid3.x;
  let mp = (p.m + 7u) / 8u * 8u;
  let tm = wid.y * (64u / WX) + lid3.y;
  let m0 = min(tm, mp / 8u - 1u) * 8u;
  let own_tile = tm * 8u < mp;
  let b_base = b * p.sb_b + g * p.sb_g;
  let c_base = b * p.sc_b + g * p.sc_g;
  let bias_base = g * p.m;
  let last = p.n - 1u;
  let a_base = g * p.k * mp + m0;
  for (var blk = wid.x; blk * 8u * WX < p.n; blk += nwg.x) {
    let n0 = blk * 8u * WX + lid * 8u;
    let c0 = b_base + min(n0 + 0u, last) * p.sb_n;
    let c1 = b_base + min(n0 + 1u, last) * p.sb_n;
    let c2 = b_base + min(n0 + 2u, last) * p.sb_n;
    let c3 = b_base + min(n0 + 3u, last) * p.sb_n;
    let c4 = b_base + min(n0 + 4u, last) * p.sb_n;
    let c5 = b_base + min(n0 + 5u, last) * p.sb_n;
    let c6 = b_base + min(n0 + 6u, last) * p.sb_n;
    let c7 = b_base + min(n0 + 7u, last) * p.sb_n;
    // With VEC_B, N is a multiple of 4: the last whole 4-vector stands in past the edge.
    let cv0 = (b_base + min(n0, p.n - 4u) * p.sb_n) / 4u;
    let cv1 = (b_base + min(n0 + 4u, p.n - 4u) * p.sb_n) / 4u;
    var lo0 = vec4<f32>(0.0);
    var lo1 = vec4<f32>(0.0);
    var lo2 = vec4<f32>(0.0);
    var lo3 = vec4<f32>(0.0);
    var lo4 = vec4<f32>(0.0);
    var lo5 = vec4<f32>(0.0);
    var lo6 = vec4<f32>(0.0);
    var lo7 = vec4<f32>(0.0);
    var hi0 = vec4<f32>(0.0);
    var hi1 = vec4<f32>(0.0);
    var hi2 = vec4<f32>(0.0);
    var hi3 = vec4<f32>(0.0);
    var hi4 = vec4<f32>(0.0);
    var hi5 = vec4<f32>(0.0);
    var hi6 = vec4<f32>(0.0);
    var hi7 = vec4<f32>(0.0);
    var ai = a_base;
    var kb = 0u;
    for (var kk = 0u; kk < p.k; kk++) {
      let t = tile_weights(ai, lane);
      let a = t.lo;
      let c = t.hi;
      ai += mp;
      var x0: vec4<f32>;
      var x1: vec4<f32>;
      if (VEC_B) {
        x0 = vec4<f32>(load4_x(cv0 + kb / 4u));
        x1 = vec4<f32>(load4_x(cv1 + kb / 4u));
      } else {
        x0 = vec4<f32>(f32(load_x(c0 + kb)), f32(load_x(c1 + kb)), f32(load_x(c2 + kb)),
                       f32(load_x(c3 + kb)));
        x1 = vec4<f32>(f32(load_x(c4 + kb)), f32(load_x(c5 + kb)), f32(load_x(c6 + kb)),
                       f32(load_x(c7 + kb)));
      }
      kb += p.sb_k;
      lo0 += a * x0.x;
      lo1 += a * x0.y;
      lo2 += a * x0.z;
      lo3 += a * x0.w;
      lo4 += a * x1.x;
      lo5 += a * x1.y;
      lo6 += a * x1.z;
      lo7 += a * x1.w;
      hi0 += c * x0.x;
      hi1 += c * x0.y;
      hi2 += c * x0.z;
      hi3 += c * x0.w;
      hi4 += c * x1.x;
      hi5 += c * x1.y;
      hi6 += c * x1.z;
      hi7 += c * x1.w;
    }
    if (own_tile) {
      store_col(c_base, m0, n0 + 0u, lo0, bias_base);
      store_col(c_base, m0, n0 + 1u, lo1, bias_base);
      store_col(c_base, m0, n0 + 2u, lo2, bias_base);
      store_col(c_base, m0, n0 + 3u, lo3, bias_base);
      store_col(c_base, m0, n0 + 4u, lo4, bias_base);
      store_col(c_base, m0, n0 + 5u, lo5, bias_base);
      store_col(c_base, m0, n0 + 6u, lo6, bias_base);
      store_col(c_base, m0, n0 + 7u, lo7, bias_base);
      store_col(c_base, m0 + 4u, n0 + 0u, hi0, bias_base);
      store_col(c_base, m0 + 4u, n0 + 1u, hi1, bias_base);
      store_col(c_base, m0 + 4u, n0 + 2u, hi2, bias_base);
      store_col(c_base, m0 + 4u, n0 + 3u, hi3, bias_base);
      store_col(c_base, m0 + 4u, n0 + 4u, hi4, bias_base);
      store_col(c_base, m0 + 4u, n0 + 5u, hi5, bias_base);
      store_col(c_base, m0 + 4u, n0 + 6u, hi6, bias_base);
      store_col(c_base, m0 + 4u, n0 + 7u, hi7, bias_base);
    }
  }
}
