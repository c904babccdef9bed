
// subgroup_weights: what the subgroup kernels share (conv2d_gemm_sg.wgsl, matmul8_sg.wgsl; put
// between the base kernel and them). Override SUBGROUP: the adapter's smallest subgroup size,
// 4 or >= 8.
override SUBGROUP: u32 = 8u;

// The 8 weights of a tile at element offset `i` (channels i .. i + 7 of the repacked weight),
// loaded once per subgroup and broadcast to every lane: lane r loads weight r (with 4-lane
// subgroups, weights r and r + 4). Call it from uniform control flow only, every lane of the
// subgroup active, all with the same `i`.
struct TileWeights {
  lo: vec4<f32>,
  hi: vec4<f32>,
}

fn tile_weights(i: u32, lane: u32) -> TileWeights {
  var t: TileWeights;
  if (SUBGROUP >= 8u) {
    let own = f32(load_w(i + (lane & 7u)));
    t.lo = vec4<f32>(subgroupBroadcast(own, 0u), subgroupBroadcast(own, 1u),
                     subgroupBroadcast(own, 2u), subgroupBroadcast(own, 3u));
    t.hi = vec4<f32>(subgroupBroadcast(own, 4u), subgroupBroadcast(own, 5u),
                     subgroupBroadcast(own, 6u), subgroupBroadcast(own, 7u));
  } else {
    let lo = f32(load_w(i + (lane & 3u)));
    let hi = f32(load_w(i + 4u + (lane & 3u)));
    t.lo = vec4<f32>(subgroupBroadcast(lo, 0u), subgroupBroadcast(lo, 1u),
                     subgroupBroadcast(lo, 2u), subgroupBroadcast(lo, 3u));
    t.hi = vec4<f32>(subgroupBroadcast(hi, 0u), subgroupBroadcast(hi, 1u),
                     subgroupBroadcast(hi, 2u), subgroupBroadcast(hi, 3u));
  }
  return t;
}
