
// main_sg: linear.wgsl's `main4` for CPU adapters with subgroups (appended with
// subgroup_weights.wgsl to linear.wgsl only where the device has them). Each invocation takes
// two weight rows (outputs o, o + 1) and 8 items; the items' inputs are the same for every lane,
// so at each 4-vector step of K the subgroup loads them once (lane r: item r; with 4-lane
// subgroups, items r and r + 4) and shares them by broadcast, where `main4` has every lane load
// all four: on CPU adapters each load is a gather, one lane at a time. Per step: two weight
// loads and one input load per lane feed 64 multiply-adds (`main4`: five loads, 16). Needs VEC4.
// Summed as row_dot, so every form gives the same bits. No invocation leaves early (broadcasts
// need the whole subgroup): rows past M and items past N read the last one and are not stored.
// Grid: x = ceil(M / 128), y = ceil(N / 8).

// The 8 items' inputs at one step, from the lanes' loads `lo` (lane r: item r, or with 4-lane
// subgroups items 0 .. 3) and `hi` (4-lane subgroups: items 4 .. 7). From uniform control flow.
struct Items8 {
  x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>,
  x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>,
}

fn share_items(lo: vec4<f32>, hi: vec4<f32>) -> Items8 {
  var t = Items8(subgroupBroadcast(lo, 0u), subgroupBroadcast(lo, 1u), subgroupBroadcast(lo, 2u),
                 subgroupBroadcast(lo, 3u), vec4<f32>(), vec4<f32>(), vec4<f32>(), vec4<f32>());
  if (SUBGROUP >= 8u) {
    t.x4 = subgroupBroadcast(lo, 4u);
    t.x5 = subgroupBroadcast(lo, 5u);
    t.x6 = subgroupBroadcast(lo, 6u);
    t.x7 = subgroupBroadcast(lo, 7u);
  } else {
    t.x4 = subgroupBroadcast(hi, 0u);
    t.x5 = subgroupBroadcast(hi, 1u);
    t.x6 = subgroupBroadcast(hi, 2u);
    t.x7 = subgroupBroadcast(hi, 3u);
  }
  return t;
}

// Two rows by 8 items of partial sums (4-vectors over K, added up at the end as row_dot does).
struct RowItems {
  a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>,
  a4: vec4<f32>, a5: vec4<f32>, a6: vec4<f32>, a7: vec4<f32>,
  b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>,
  b4: vec4<f32>, b5: vec4<f32>, b6: vec4<f32>, b7: vec4<f32>,
}

fn hsum(v: vec4<f32>) -> f32 {
  return v.x + v.y + v.z + v.w;
}

// Stores row o's sums s (items i0 .. i0 + 7, those below N) with its bias.
fn store_items(o: u32, i0: u32, s0: vec4<f32>, s1: vec4<f32>) {
  let bias = f32(load_b(o));
  for (var j = 0u; j < 4u; j++) {
    if (i0 + j < p.n) { store_y((i0 + j) * p.m + o, activate(s0[j] + bias, p.act)); }
    if (i0 + 4u + j < p.n) { store_y((i0 + 4u + j) * p.m + o, activate(s1[j] + bias, p.act)); }
  }
}

@compute @workgroup_size(64)
fn main_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
           @builtin(subgroup_invocation_id) lane: u32) {
  let o = (wid.x * 64u + lid) * 2u;
  let r0 = min(o, p.m - 1u);
  let r1 = min(o + 1u, p.m - 1u);
  let i0 = wid.y * 8u;
  let k4 = p.k / 4u;
  // The items this lane loads for the subgroup.
  let t = tile_lane(lane);
  let xl = min(i0 + t.x, p.n - 1u) * k4;
  let xh = min(i0 + t.y, p.n - 1u) * k4;
  var q = RowItems();
  for (var k = 0u; k < k4; k++) {
    let w0 = vec4<f32>(load4_w(r0 * k4 + k));
    let w1 = vec4<f32>(load4_w(r1 * k4 + k));
    let lo = vec4<f32>(load4_x(xl + k));
    var hi = lo;
    if (SUBGROUP < 8u) { hi = vec4<f32>(load4_x(xh + k)); }
    let x = share_items(lo, hi);
    q = RowItems(q.a0 + w0 * x.x0, q.a1 + w0 * x.x1, q.a2 + w0 * x.x2, q.a3 + w0 * x.x3,
                 q.a4 + w0 * x.x4, q.a5 + w0 * x.x5, q.a6 + w0 * x.x6, q.a7 + w0 * x.x7,
                 q.b0 + w1 * x.x0, q.b1 + w1 * x.x1, q.b2 + w1 * x.x2, q.b3 + w1 * x.x3,
                 q.b4 + w1 * x.x4, q.b5 + w1 * x.x5, q.b6 + w1 * x.x6, q.b7 + w1 * x.x7);
  }
  if (o < p.m) {
    store_items(o, i0, vec4<f32>(hsum(q.a0), hsum(q.a1), hsum(q.a2), hsum(q.a3)),
                vec4<f32>(hsum(q.a4), hsum(q.a5), hsum(q.a6), hsum(q.a7)));
  }
  if (o + 1u < p.m) {
    store_items(o + 1u, i0, vec4<f32>(hsum(q.b0), hsum(q.b1), hsum(q.b2), hsum(q.b3)),
                vec4<f32>(hsum(q.b4), hsum(q.b5), hsum(q.b6), hsum(q.b7)));
  }
}
