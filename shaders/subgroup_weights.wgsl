
// subgroup_weights: what the subgroup kernels (conv2d_gemm_sg.wgsl, matmul8_sg.wgsl) share:
// tiles of weights or biases loaded once per subgroup and broadcast. Put between the base
// kernel and them. Override SUBGROUP: the adapter's smallest subgroup size,
// 4 or >= 8.
override SUBGROUP: u32 = 8u;

// A tile's 8 values (weights or biases), shared by every lane of a subgroup.
struct TileWeights {
  lo: vec4<f32>,
  hi: vec4<f32>,
}

// A tile's 8 values shared by broadcast, from each lane's own: with subgroups of 8 or more,
// lane r holds value r in `x` (`y` unused); with 4-lane subgroups, values r and r + 4 in `x`
// and `y`. Loaders compute their lane's offsets with tile_lane(). From uniform control flow
// only, every lane of the subgroup active.
fn share_tile(x: f32, y: f32) -> TileWeights {
  var t: TileWeights;
  t.lo = vec4<f32>(subgroupBroadcast(x, 0u), subgroupBroadcast(x, 1u),
                   subgroupBroadcast(x, 2u), subgroupBroadcast(x, 3u));
  if (SUBGROUP >= 8u) {
    t.hi = vec4<f32>(subgroupBroadcast(x, 4u), subgroupBroadcast(x, 5u),
                     subgroupBroadcast(x, 6u), subgroupBroadcast(x, 7u));
  } else {
    t.hi = vec4<f32>(subgroupBroadcast(y, 0u), subgroupBroadcast(y, 1u),
                     subgroupBroadcast(y, 2u), subgroupBroadcast(y, 3u));
  }
  return t;
}

// The offsets within a tile of 8 whose values lane `lane` loads for share_tile (.y only read
// with 4-lane subgroups).
fn tile_lane(lane: u32) -> vec2<u32> {
  if (SUBGROUP >= 8u) { return vec2<u32>(lane & 7u, lane & 7u); }
  return vec2<u32>(lane & 3u, 4u + (lane & 3u));
}

// The 8 weights of a tile at element offset `i` (channels i .. i + 7 of the repacked weight),
// loaded once per subgroup and broadcast to every lane: lane r loads weight r (with 4-lane
// subgroups, weights r and r + 4). Call it from uniform control flow only, every lane of the
// subgroup active, all with the same `i`.
fn tile_weights(i: u32, lane: u32) -> TileWeights {
  let o = tile_lane(lane);
  let x = f32(load_w(i + o.x));
  var y = x;
  if (SUBGROUP < 8u) { y = f32(load_w(i + o.y)); }
  return share_tile(x, y);
}

// 4 values shared by broadcast: lanes 0 .. 3 hold them in `x` (any subgroup size). From
// uniform control flow only.
fn share_quad(x: f32) -> vec4<f32> {
  return vec4<f32>(subgroupBroadcast(x, 0u), subgroupBroadcast(x, 1u), subgroupBroadcast(x, 2u),
                   subgroupBroadcast(x, 3u));
}
