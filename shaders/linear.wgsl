// linear: y[n, o] = act(sum_k w[o, k] * x[n, k] + b[o]) for small batches, where the matmul's
// 32-column tiles would mostly idle (one real column at batch 1). Two forms:
// - `main`: one output per invocation, each invocation streaming its own weight row (CPU
//   adapters: each SIMD lane reads sequentially, no workgroup memory). Grid: x = ceil(M / 64),
//   y = N.
// - `main4`: `main` for four items at once (each weight read once for four, at 2.5 loads per
//   multiply-add instead of 2). Grid: x = ceil(M / 64), y = ceil(N / 4).
// - `main_split`: 8 outputs of one item per workgroup, its 64 invocations striding over K so
//   that neighbouring invocations read neighbouring weights (coalesced on GPUs), partial sums
//   added in workgroup memory. Grid: x = ceil(M / 8), y = N.
// - `main_sg` (linear_sg.wgsl, appended where the device has subgroups): `main4` with two rows
//   by 8 items per invocation, the items' inputs broadcast within the subgroup.
// Bindings: 0 Params (uniform), 1 y [N, M], 2 x [N, K], 3 w [M, K], 4 b [M]; x and w bound as
// 4-vectors.
// Overrides: VEC4 (K is a multiple of 4: rows are read four elements at a time).
struct Params { m: u32, n: u32, k: u32, act: u32, }
@group(0) @binding(0) var<uniform> p: Params;

override VEC4: bool = false;

// Dot product of weight row `row` and item `item`'s input over k = k0, k0 + step, ... (in
// 4-vectors with VEC4, else in elements).
fn row_dot(row: u32, item: u32, k0: u32, step: u32) -> f32 {
  var acc = vec4<f32>(0.0);
  if (VEC4) {
    let k4 = p.k / 4u;
    for (var k = k0; k < k4; k += step) {
      acc += vec4<f32>(load4_w(row * k4 + k)) * vec4<f32>(load4_x(item * k4 + k));
    }
  } else {
    for (var k = k0; k < p.k; k += step) {
      acc.x += f32(load_w(row * p.k + k)) * f32(load_x(item * p.k + k));
    }
  }
  return acc.x + acc.y + acc.z + acc.w;
}

// Dot products of weight row `row` with items i0 .. i0 + 3 (items past N read the last one).
fn row_dot4(row: u32, i0: u32) -> vec4<f32> {
  let i1 = min(i0 + 1u, p.n - 1u);
  let i2 = min(i0 + 2u, p.n - 1u);
  let i3 = min(i0 + 3u, p.n - 1u);
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  if (VEC4) {
    let k4 = p.k / 4u;
    for (var k = 0u; k < k4; k++) {
      let wv = vec4<f32>(load4_w(row * k4 + k));
      a0 += wv * vec4<f32>(load4_x(i0 * k4 + k));
      a1 += wv * vec4<f32>(load4_x(i1 * k4 + k));
      a2 += wv * vec4<f32>(load4_x(i2 * k4 + k));
      a3 += wv * vec4<f32>(load4_x(i3 * k4 + k));
    }
  } else {
    for (var k = 0u; k < p.k; k++) {
      let wv = f32(load_w(row * p.k + k));
      a0.x += wv * f32(load_x(i0 * p.k + k));
      a1.x += wv * f32(load_x(i1 * p.k + k));
      a2.x += wv * f32(load_x(i2 * p.k + k));
      a3.x += wv * f32(load_x(i3 * p.k + k));
    }
  }
  // Summed as in row_dot, so that a batch gives the same bits whichever form runs it.
  return vec4<f32>(a0.x + a0.y + a0.z + a0.w, a1.x + a1.y + a1.z + a1.w,
                   a2.x + a2.y + a2.z + a2.w, a3.x + a3.y + a3.z + a3.w);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let o = wid.x * 64u + lid;
  // Rows past M read the last row and are never stored.
  let v = row_dot(min(o, p.m - 1u), wid.y, 0u, 1u);
  if (o < p.m) {
    store_y(wid.y * p.m + o, activate(v + f32(load_b(o)), p.act));
  }
}

@compute @workgroup_size(64)
fn main4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let o = wid.x * 64u + lid;
  let i0 = wid.y * 4u;
  // Rows past M read the last row, items past N the last item; neither is stored.
  let v = row_dot4(min(o, p.m - 1u), i0);
  if (o >= p.m) { return; }
  let bias = f32(load_b(o));
  for (var j = 0u; j < 4u; j++) {
    if (i0 + j < p.n) {
      store_y((i0 + j) * p.m + o, activate(v[j] + bias, p.act));
    }
  }
}

// Partial sums of main_split's 8 rows, row r of invocation i at [r * 64 + i].
var<workgroup> part: array<f32, 512>;

@compute @workgroup_size(64)
fn main_split(@builtin(workgroup_id) wid: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let o0 = wid.x * 8u;
  for (var r = 0u; r < 8u; r++) {
    part[r * 64u + lid] = row_dot(min(o0 + r, p.m - 1u), wid.y, lid, 64u);
  }
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lid < s) {
      for (var r = 0u; r < 8u; r++) {
        part[r * 64u + lid] += part[r * 64u + lid + s];
      }
    }
    workgroupBarrier();
  }
  let o = o0 + lid;
  if (lid < 8u && o < p.m) {
    store_y(wid.y * p.m + o, activate(part[lid * 64u] + f32(load_b(o)), p.act));
  }
}
