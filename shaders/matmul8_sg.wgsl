
// main_sg: the 8 x 4 tiles of `main` for adapters with subgroups (appended to matmul8.wgsl
// only where the device has them). A workgroup is wx x (64 / wx) invocations; each row of wx
// shares one 8-row tile of A and takes 4 columns per invocation, so at every k the subgroup
// loads the tile's 8 weights once (lane r: row r; with 4-lane subgroups, rows r and r + 4) and
// shares them by broadcast, instead of every invocation loading all eight: on CPU adapters each
// load is a gather, one lane at a time. wx is a multiple of the largest subgroup, whose lanes
// are consecutive invocations, so a subgroup never spans two rows. No invocation leaves early
// (broadcasts need the whole subgroup): columns and rows past the edge read valid elements and
// are not stored.
// Overrides: VEC_B as `main`; SUBGROUP (subgroup_weights.wgsl); VEC_C (store_cols8).
// Params.wx: invocations along N per workgroup row (a power of two, 4 to 64; a uniform rather
// than an override so that layers differing only in it share one pipeline: lavapipe recompiles
// evicted pipelines when a model has too many).
// Grid: x = min(ceil(N / (4 * wx)), 65535) (blocks of columns, looped over),
// y = ceil(ceil(M / 8) / (64 / wx)), z = batches * groups.
override VEC_C: bool = false;

// The biases of rows m0 .. m0 + 7 of a group whose biases start at bias_base (rows past M read
// the last), loaded once per subgroup and broadcast; from uniform control flow only.
fn rows_bias(bias_base: u32, m0: u32, lane: u32) -> TileWeights {
  let o = tile_lane(lane);
  let x = f32(load_b(bias_base + min(m0 + o.x, p.m - 1u)));
  var y = x;
  if (SUBGROUP < 8u) { y = f32(load_b(bias_base + min(m0 + o.y, p.m - 1u))); }
  return share_tile(x, y);
}

// store_col with the 4 rows' biases given.
fn store_colb(c_base: u32, m0: u32, n: u32, acc: vec4<f32>, bias: vec4<f32>) {
  if (n >= p.n) { return; }
  for (var i = 0u; i < 4u; i++) {
    if (m0 + i < p.m) {
      store_y(c_base + (m0 + i) * p.sc_m + n * p.sc_n, activate(acc[i] + bias[i], p.act));
    }
  }
}

// Rows m0 .. m0 + 3 (those below M) of the 8 columns n0 .. n0 + 7 (those below N), with the
// biases and the activation. With VEC_C (C's columns have unit stride and N and C's other
// strides are multiples of 4, so n0 starts a 4-vector) each row's 8 are two 4-vector stores.
fn store_cols8(c_base: u32, m0: u32, n0: u32, bias: vec4<f32>, a0: vec4<f32>, a1: vec4<f32>,
               a2: vec4<f32>, a3: vec4<f32>, a4: vec4<f32>, a5: vec4<f32>, a6: vec4<f32>,
               a7: vec4<f32>) {
  if (VEC_C) {
    if (n0 >= p.n) { return; }
    for (var i = 0u; i < 4u; i++) {
      if (m0 + i < p.m) {
        let o = c_base + (m0 + i) * p.sc_m + n0;
        store4_y(o, activate4(vec4<f32>(a0[i], a1[i], a2[i], a3[i]) + bias[i], p.act));
        if (n0 + 4u < p.n) {
          store4_y(o + 4u, activate4(vec4<f32>(a4[i], a5[i], a6[i], a7[i]) + bias[i], p.act));
        }
      }
    }
    return;
  }
  store_colb(c_base, m0, n0, a0, bias);
  store_colb(c_base, m0, n0 + 1u, a1, bias);
  store_colb(c_base, m0, n0 + 2u, a2, bias);
  store_colb(c_base, m0, n0 + 3u, a3, bias);
  store_colb(c_base, m0, n0 + 4u, a4, bias);
  store_colb(c_base, m0, n0 + 5u, a5, bias);
  store_colb(c_base, m0, n0 + 6u, a6, bias);
  store_colb(c_base, m0, n0 + 7u, a7, bias);
}

@compute @workgroup_size(64)
fn main_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32,
           @builtin(subgroup_invocation_id) lane: u32) {
  let wx = p.wx;
  // Row lid3.y of wx invocations, lid3.x along it (a 1-D workgroup: naga takes subgroup
  // builtins only there).
  let lid3 = vec2<u32>(li % wx, li / wx);
  let g = wid.z % p.groups;
  let b = wid.z / p.groups;
  let lid = lid3.x;
  let mp = (p.m + 7u) / 8u * 8u;
  let tm = wid.y * (64u / wx) + lid3.y;
  // Rows past the last tile load the last tile and store nothing.
  let m0 = min(tm, mp / 8u - 1u) * 8u;
  let own_tile = tm * 8u < mp;
  let b_base = b * p.sb_b + g * p.sb_g;
  let c_base = b * p.sc_b + g * p.sc_g;
  let bias_base = g * p.m;
  let a_base = g * p.k * mp + m0;
  for (var blk = wid.x; blk * 4u * wx < p.n; blk += nwg.x) {
    let n0 = blk * 4u * wx + lid * 4u;
    let cols = cols4(b_base, n0);
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
      let xv = vec4<f32>(load_cols4(cols, kb));
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
// by broadcast, one weight gather and 8 input gathers feed 64 multiply-adds. Rows of wx
// invocations cover 8 * wx columns. Grid: x = min(ceil(N / (8 * wx)), 65535), y and z as
// main_sg.
@compute @workgroup_size(64)
fn main_sg8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32,
            @builtin(subgroup_invocation_id) lane: u32) {
  let wx = p.wx;
  let lid3 = vec2<u32>(li % wx, li / wx);
  let g = wid.z % p.groups;
  let b = wid.z / p.groups;
  let lid = lid3.x;
  let mp = (p.m + 7u) / 8u * 8u;
  let tm = wid.y * (64u / wx) + lid3.y;
  let m0 = min(tm, mp / 8u - 1u) * 8u;
  let own_tile = tm * 8u < mp;
  let b_base = b * p.sb_b + g * p.sb_g;
  let c_base = b * p.sc_b + g * p.sc_g;
  let bias_base = g * p.m;
  let a_base = g * p.k * mp + m0;
  for (var blk = wid.x; blk * 8u * wx < p.n; blk += nwg.x) {
    let n0 = blk * 8u * wx + lid * 8u;
    let cols_lo = cols4(b_base, n0);
    let cols_hi = cols4(b_base, n0 + 4u);
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
      let x0 = vec4<f32>(load_cols4(cols_lo, kb));
      let x1 = vec4<f32>(load_cols4(cols_hi, kb));
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
    let bt = rows_bias(bias_base, m0, lane);
    if (own_tile) {
      store_cols8(c_base, m0, n0, bt.lo, lo0, lo1, lo2, lo3,
                  lo4, lo5, lo6, lo7);
      store_cols8(c_base, m0 + 4u, n0, bt.hi, hi0, hi1, hi2, hi3,
                  hi4, hi5, hi6, hi7);
    }
  }
}


// main_sg16, main_sg32: main_sg8 with 16 or 32 rows per invocation (two or four 8-row tiles of A,
// each loaded once per subgroup and broadcast): per k, 2 or 4 weight gathers and the same 8 input
// gathers feed 128 or 256 multiply-adds. On lavapipe the input loads were about half of
// main_sg8's time (NIN's conv1b: 117 ms, 61 without them). A repacked to MP = M rounded up to 16
// or 32. Grid: x as main_sg8, y = ceil(ceil(M / rows) / (64 / wx)), z as main_sg.
@compute @workgroup_size(64)
fn main_sg16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32,
             @builtin(subgroup_invocation_id) lane: u32) {
  let wx = p.wx;
  let g = wid.z % p.groups;
  let b = wid.z / p.groups;
  let lid = li % wx;
  let mp = (p.m + 15u) / 16u * 16u;
  let tm = wid.y * (64u / wx) + li / wx;
  let m0 = min(tm, mp / 16u - 1u) * 16u;
  let own_tile = tm * 16u < mp;
  let b_base = b * p.sb_b + g * p.sb_g;
  let c_base = b * p.sc_b + g * p.sc_g;
  let bias_base = g * p.m;
  let a_base = g * p.k * mp + m0;
  for (var blk = wid.x; blk * 8u * wx < p.n; blk += nwg.x) {
    let n0 = blk * 8u * wx + lid * 8u;
    let cols_lo = cols4(b_base, n0);
    let cols_hi = cols4(b_base, n0 + 4u);
    var s0_0: vec4<f32>; var s0_1: vec4<f32>; var s0_2: vec4<f32>; var s0_3: vec4<f32>;
    var s0_4: vec4<f32>; var s0_5: vec4<f32>; var s0_6: vec4<f32>; var s0_7: vec4<f32>;
    var s1_0: vec4<f32>; var s1_1: vec4<f32>; var s1_2: vec4<f32>; var s1_3: vec4<f32>;
    var s1_4: vec4<f32>; var s1_5: vec4<f32>; var s1_6: vec4<f32>; var s1_7: vec4<f32>;
    var s2_0: vec4<f32>; var s2_1: vec4<f32>; var s2_2: vec4<f32>; var s2_3: vec4<f32>;
    var s2_4: vec4<f32>; var s2_5: vec4<f32>; var s2_6: vec4<f32>; var s2_7: vec4<f32>;
    var s3_0: vec4<f32>; var s3_1: vec4<f32>; var s3_2: vec4<f32>; var s3_3: vec4<f32>;
    var s3_4: vec4<f32>; var s3_5: vec4<f32>; var s3_6: vec4<f32>; var s3_7: vec4<f32>;
    var ai = a_base;
    var kb = 0u;
    for (var kk = 0u; kk < p.k; kk++) {
      let t0 = tile_weights(ai + 0u, lane);
      let t1 = tile_weights(ai + 8u, lane);
      ai += mp;
      let x0 = vec4<f32>(load_cols4(cols_lo, kb));
      let x1 = vec4<f32>(load_cols4(cols_hi, kb));
      kb += p.sb_k;
      s0_0 += t0.lo * x0.x; s0_1 += t0.lo * x0.y; s0_2 += t0.lo * x0.z; s0_3 += t0.lo * x0.w;
      s0_4 += t0.lo * x1.x; s0_5 += t0.lo * x1.y; s0_6 += t0.lo * x1.z; s0_7 += t0.lo * x1.w;
      s1_0 += t0.hi * x0.x; s1_1 += t0.hi * x0.y; s1_2 += t0.hi * x0.z; s1_3 += t0.hi * x0.w;
      s1_4 += t0.hi * x1.x; s1_5 += t0.hi * x1.y; s1_6 += t0.hi * x1.z; s1_7 += t0.hi * x1.w;
      s2_0 += t1.lo * x0.x; s2_1 += t1.lo * x0.y; s2_2 += t1.lo * x0.z; s2_3 += t1.lo * x0.w;
      s2_4 += t1.lo * x1.x; s2_5 += t1.lo * x1.y; s2_6 += t1.lo * x1.z; s2_7 += t1.lo * x1.w;
      s3_0 += t1.hi * x0.x; s3_1 += t1.hi * x0.y; s3_2 += t1.hi * x0.z; s3_3 += t1.hi * x0.w;
      s3_4 += t1.hi * x1.x; s3_5 += t1.hi * x1.y; s3_6 += t1.hi * x1.z; s3_7 += t1.hi * x1.w;
    }
    let bt0 = rows_bias(bias_base, m0 + 0u, lane);
    let bt1 = rows_bias(bias_base, m0 + 8u, lane);
    if (own_tile) {
      store_cols8(c_base, m0 + 0u, n0, bt0.lo, s0_0, s0_1, s0_2, s0_3,
                  s0_4, s0_5, s0_6, s0_7);
      store_cols8(c_base, m0 + 4u, n0, bt0.hi, s1_0, s1_1, s1_2, s1_3,
                  s1_4, s1_5, s1_6, s1_7);
      store_cols8(c_base, m0 + 8u, n0, bt1.lo, s2_0, s2_1, s2_2, s2_3,
                  s2_4, s2_5, s2_6, s2_7);
      store_cols8(c_base, m0 + 12u, n0, bt1.hi, s3_0, s3_1, s3_2, s3_3,
                  s3_4, s3_5, s3_6, s3_7);
    }
  }
}

@compute @workgroup_size(64)
fn main_sg32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32,
             @builtin(subgroup_invocation_id) lane: u32) {
  let wx = p.wx;
  let g = wid.z % p.groups;
  let b = wid.z / p.groups;
  let lid = li % wx;
  let mp = (p.m + 31u) / 32u * 32u;
  let tm = wid.y * (64u / wx) + li / wx;
  let m0 = min(tm, mp / 32u - 1u) * 32u;
  let own_tile = tm * 32u < mp;
  let b_base = b * p.sb_b + g * p.sb_g;
  let c_base = b * p.sc_b + g * p.sc_g;
  let bias_base = g * p.m;
  let a_base = g * p.k * mp + m0;
  for (var blk = wid.x; blk * 8u * wx < p.n; blk += nwg.x) {
    let n0 = blk * 8u * wx + lid * 8u;
    let cols_lo = cols4(b_base, n0);
    let cols_hi = cols4(b_base, n0 + 4u);
    var s0_0: vec4<f32>; var s0_1: vec4<f32>; var s0_2: vec4<f32>; var s0_3: vec4<f32>;
    var s0_4: vec4<f32>; var s0_5: vec4<f32>; var s0_6: vec4<f32>; var s0_7: vec4<f32>;
    var s1_0: vec4<f32>; var s1_1: vec4<f32>; var s1_2: vec4<f32>; var s1_3: vec4<f32>;
    var s1_4: vec4<f32>; var s1_5: vec4<f32>; var s1_6: vec4<f32>; var s1_7: vec4<f32>;
    var s2_0: vec4<f32>; var s2_1: vec4<f32>; var s2_2: vec4<f32>; var s2_3: vec4<f32>;
    var s2_4: vec4<f32>; var s2_5: vec4<f32>; var s2_6: vec4<f32>; var s2_7: vec4<f32>;
    var s3_0: vec4<f32>; var s3_1: vec4<f32>; var s3_2: vec4<f32>; var s3_3: vec4<f32>;
    var s3_4: vec4<f32>; var s3_5: vec4<f32>; var s3_6: vec4<f32>; var s3_7: vec4<f32>;
    var s4_0: vec4<f32>; var s4_1: vec4<f32>; var s4_2: vec4<f32>; var s4_3: vec4<f32>;
    var s4_4: vec4<f32>; var s4_5: vec4<f32>; var s4_6: vec4<f32>; var s4_7: vec4<f32>;
    var s5_0: vec4<f32>; var s5_1: vec4<f32>; var s5_2: vec4<f32>; var s5_3: vec4<f32>;
    var s5_4: vec4<f32>; var s5_5: vec4<f32>; var s5_6: vec4<f32>; var s5_7: vec4<f32>;
    var s6_0: vec4<f32>; var s6_1: vec4<f32>; var s6_2: vec4<f32>; var s6_3: vec4<f32>;
    var s6_4: vec4<f32>; var s6_5: vec4<f32>; var s6_6: vec4<f32>; var s6_7: vec4<f32>;
    var s7_0: vec4<f32>; var s7_1: vec4<f32>; var s7_2: vec4<f32>; var s7_3: vec4<f32>;
    var s7_4: vec4<f32>; var s7_5: vec4<f32>; var s7_6: vec4<f32>; var s7_7: vec4<f32>;
    var ai = a_base;
    var kb = 0u;
    for (var kk = 0u; kk < p.k; kk++) {
      let t0 = tile_weights(ai + 0u, lane);
      let t1 = tile_weights(ai + 8u, lane);
      let t2 = tile_weights(ai + 16u, lane);
      let t3 = tile_weights(ai + 24u, lane);
      ai += mp;
      let x0 = vec4<f32>(load_cols4(cols_lo, kb));
      let x1 = vec4<f32>(load_cols4(cols_hi, kb));
      kb += p.sb_k;
      s0_0 += t0.lo * x0.x; s0_1 += t0.lo * x0.y; s0_2 += t0.lo * x0.z; s0_3 += t0.lo * x0.w;
      s0_4 += t0.lo * x1.x; s0_5 += t0.lo * x1.y; s0_6 += t0.lo * x1.z; s0_7 += t0.lo * x1.w;
      s1_0 += t0.hi * x0.x; s1_1 += t0.hi * x0.y; s1_2 += t0.hi * x0.z; s1_3 += t0.hi * x0.w;
      s1_4 += t0.hi * x1.x; s1_5 += t0.hi * x1.y; s1_6 += t0.hi * x1.z; s1_7 += t0.hi * x1.w;
      s2_0 += t1.lo * x0.x; s2_1 += t1.lo * x0.y; s2_2 += t1.lo * x0.z; s2_3 += t1.lo * x0.w;
      s2_4 += t1.lo * x1.x; s2_5 += t1.lo * x1.y; s2_6 += t1.lo * x1.z; s2_7 += t1.lo * x1.w;
      s3_0 += t1.hi * x0.x; s3_1 += t1.hi * x0.y; s3_2 += t1.hi * x0.z; s3_3 += t1.hi * x0.w;
      s3_4 += t1.hi * x1.x; s3_5 += t1.hi * x1.y; s3_6 += t1.hi * x1.z; s3_7 += t1.hi * x1.w;
      s4_0 += t2.lo * x0.x; s4_1 += t2.lo * x0.y; s4_2 += t2.lo * x0.z; s4_3 += t2.lo * x0.w;
      s4_4 += t2.lo * x1.x; s4_5 += t2.lo * x1.y; s4_6 += t2.lo * x1.z; s4_7 += t2.lo * x1.w;
      s5_0 += t2.hi * x0.x; s5_1 += t2.hi * x0.y; s5_2 += t2.hi * x0.z; s5_3 += t2.hi * x0.w;
      s5_4 += t2.hi * x1.x; s5_5 += t2.hi * x1.y; s5_6 += t2.hi * x1.z; s5_7 += t2.hi * x1.w;
      s6_0 += t3.lo * x0.x; s6_1 += t3.lo * x0.y; s6_2 += t3.lo * x0.z; s6_3 += t3.lo * x0.w;
      s6_4 += t3.lo * x1.x; s6_5 += t3.lo * x1.y; s6_6 += t3.lo * x1.z; s6_7 += t3.lo * x1.w;
      s7_0 += t3.hi * x0.x; s7_1 += t3.hi * x0.y; s7_2 += t3.hi * x0.z; s7_3 += t3.hi * x0.w;
      s7_4 += t3.hi * x1.x; s7_5 += t3.hi * x1.y; s7_6 += t3.hi * x1.z; s7_7 += t3.hi * x1.w;
    }
    let bt0 = rows_bias(bias_base, m0 + 0u, lane);
    let bt1 = rows_bias(bias_base, m0 + 8u, lane);
    let bt2 = rows_bias(bias_base, m0 + 16u, lane);
    let bt3 = rows_bias(bias_base, m0 + 24u, lane);
    if (own_tile) {
      store_cols8(c_base, m0 + 0u, n0, bt0.lo, s0_0, s0_1, s0_2, s0_3,
                  s0_4, s0_5, s0_6, s0_7);
      store_cols8(c_base, m0 + 4u, n0, bt0.hi, s1_0, s1_1, s1_2, s1_3,
                  s1_4, s1_5, s1_6, s1_7);
      store_cols8(c_base, m0 + 8u, n0, bt1.lo, s2_0, s2_1, s2_2, s2_3,
                  s2_4, s2_5, s2_6, s2_7);
      store_cols8(c_base, m0 + 12u, n0, bt1.hi, s3_0, s3_1, s3_2, s3_3,
                  s3_4, s3_5, s3_6, s3_7);
      store_cols8(c_base, m0 + 16u, n0, bt2.lo, s4_0, s4_1, s4_2, s4_3,
                  s4_4, s4_5, s4_6, s4_7);
      store_cols8(c_base, m0 + 20u, n0, bt2.hi, s5_0, s5_1, s5_2, s5_3,
                  s5_4, s5_5, s5_6, s5_7);
      store_cols8(c_base, m0 + 24u, n0, bt3.lo, s6_0, s6_1, s6_2, s6_3,
                  s6_4, s6_5, s6_6, s6_7);
      store_cols8(c_base, m0 + 28u, n0, bt3.hi, s7_0, s7_1, s7_2, s7_3,
                  s7_4, s7_5, s7_6, s7_7);
    }
  }
}
