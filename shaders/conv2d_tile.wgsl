// conv2d_tile: implicit-GEMM grouped convolution with shared-memory tiles, for GPUs. For group g
// (dispatch z), with M = C_out/groups, N = batch * H_out * W_out and K = C_in/groups * kh * kw,
// it computes C[M x N] = A[M x K] * B[K x N] as conv2d_gemm.wgsl does, but a workgroup of 256
// invocations, RT rows of CT = 256 / RT, owns a tile of BM = RT * TM channels by BN = 4 * CT
// pixels: each K step of 16 it copies the step's slice of A (the repacked weights) and of B
// (gathered from the input; for pointwise layers the input rows themselves) into workgroup
// memory once, and every invocation then reads its TM channels and 4 pixels from there, so each
// weight and input value is loaded from memory once per tile instead of once per invocation.
// Narrow tiles (BM = 32, BN = 128) serve groups with few outputs. The next step's values are
// loaded into registers while the current step is computed.
// Appended to conv2d_gemm.wgsl, whose Params (the same uniform), `window` and `tap` it uses.
// Bindings: 0 Params, 1 y [N, C_out, H_out, W_out], 2 x [N, C_in, H, W] (bound as 4-vectors),
//           3 w [groups, K, MP] read as 4-vectors, 4 b [C_out].
// Overrides: TM (channels per invocation, 4 or 8), RT (invocation rows, 8 or 16; TM = 8 with
// 16 only), POINTWISE (1x1, stride 1, unpadded: no window arithmetic), VEC_B (POINTWISE with H*W a
// multiple of 4: four pixels in one 4-vector).
// Grid (entry main_tile): x = pixel tiles (ceil(N / BN), looped over if more than the grid has),
// y = ceil(M / BM), z = groups.

override TM: u32 = 4u;
override RT: u32 = 16u;
override POINTWISE: bool = false;
override VEC_B: bool = false;

// K values per step.
const BK: u32 = 16u;
// Invocations per row, each 4 pixels.
override CT: u32 = 256u / RT;
// A's slice: [BK][BM / 4] 4-vectors; B's: [BK][CT] 4-vectors. Sized per tile: workgroup memory
// bounds how many workgroups a GPU keeps in flight (12 KB at most here).
var<workgroup> a_tile: array<vec4<f32>, RT * TM * 4u>;
var<workgroup> b_tile: array<vec4<f32>, 16u * CT>;

// Where the four pixels an invocation gathers for B start (`window`'s plane offset, top row and
// left column, one component per pixel; for POINTWISE the pixel's own offset in that plane).
// Pixels past N repeat the last. (Components are named, never indexed by a variable: indexed
// locals can end up in memory.)
struct Cols {
  off: vec4<i32>,
  row: vec4<i32>,
  col: vec4<i32>,
}

fn col_of(q: u32, g: u32) -> vec3<i32> {
  let w = window(min(q, p.n - 1u), g, p.c_in / p.groups);
  if (POINTWISE) { return vec3<i32>(w.x + w.y * i32(p.w) + w.z, 0, 0); }
  return w;
}

fn cols(q0: u32, g: u32) -> Cols {
  let c0 = col_of(q0, g);
  let c1 = col_of(q0 + 1u, g);
  let c2 = col_of(q0 + 2u, g);
  let c3 = col_of(q0 + 3u, g);
  return Cols(vec4<i32>(c0.x, c1.x, c2.x, c3.x), vec4<i32>(c0.y, c1.y, c2.y, c3.y),
              vec4<i32>(c0.z, c1.z, c2.z, c3.z));
}

// B's four values at row k for the pixels of `c` (zero past K and in the padding).
fn load_b4(c: Cols, k: u32, q0: u32) -> vec4<f32> {
  if (k >= p.k) { return vec4<f32>(0.0); }
  if (POINTWISE) {
    let o = vec4<u32>(c.off) + vec4<u32>(k * p.h * p.w);
    if (VEC_B && q0 + 3u < p.n) { return vec4<f32>(load4_x(o.x / 4u)); }
    return vec4<f32>(f32(load_x(o.x)), f32(load_x(o.y)), f32(load_x(o.z)), f32(load_x(o.w)));
  }
  let khw = p.kh * p.kw;
  let ci = k / khw;
  let r = k % khw;
  let row = c.row + vec4<i32>(i32((r / p.kw) * p.dh));
  let col = c.col + vec4<i32>(i32((r % p.kw) * p.dw));
  let o = c.off + vec4<i32>(i32(ci * p.h * p.w));
  return vec4<f32>(f32(tap(o.x, row.x, col.x)), f32(tap(o.y, row.y, col.y)),
                   f32(tap(o.z, row.z, col.z)), f32(tap(o.w, row.w, col.w)));
}

// A's 4-vector `i` of the step at k0 ([BK][BM / 4]): rows past MP and K past the end read
// as zero.
fn load_a4(i: u32, k0: u32, g: u32, m_base: u32) -> vec4<f32> {
  let per_row = RT * TM / 4u;
  let k = k0 + i / per_row;
  let m = m_base + (i % per_row) * 4u;
  if (k >= p.k || m >= p.mp) { return vec4<f32>(0.0); }
  return vec4<f32>(load4_w(((g * p.k + k) * p.mp + m) / 4u));
}

// Stores channel m (of group g) of the four pixels whose offsets in channel 0 are `off`.
fn store_row(m: u32, g: u32, q0: u32, off: vec4<u32>, acc: vec4<f32>) {
  if (m >= p.m) { return; }
  let hw_out = p.ho * p.wo;
  let co = g * p.m + m;
  let bias = f32(load_b(co));
  let o = off + vec4<u32>(co * hw_out);
  let v = acc + vec4<f32>(bias);
  if (q0 < p.n) { store_y(o.x, activate(v.x, p.act)); }
  if (q0 + 1u < p.n) { store_y(o.y, activate(v.y, p.act)); }
  if (q0 + 2u < p.n) { store_y(o.z, activate(v.z, p.act)); }
  if (q0 + 3u < p.n) { store_y(o.w, activate(v.w, p.act)); }
}

fn out_offset(q: u32) -> u32 {
  let hw_out = p.ho * p.wo;
  return (q / hw_out) * p.c_out * hw_out + q % hw_out;
}

// Stores channels m0 .. m0 + 3 of the four pixels from q0, one accumulator per channel.
fn store_rows4(m0: u32, g: u32, q0: u32, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>,
               a3: vec4<f32>) {
  let off = vec4<u32>(out_offset(q0), out_offset(q0 + 1u), out_offset(q0 + 2u),
                      out_offset(q0 + 3u));
  store_row(m0, g, q0, off, a0);
  store_row(m0 + 1u, g, q0, off, a1);
  store_row(m0 + 2u, g, q0, off, a2);
  store_row(m0 + 3u, g, q0, off, a3);
}

@compute @workgroup_size(256, 1, 1)
fn main_tile(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
  let g = wid.z;
  let bm = RT * TM;
  let per_row = bm / 4u;
  let m_base = wid.y * bm;
  let pixel_tiles = (p.n + 4u * CT - 1u) / (4u * CT);
  // This invocation computes channels m_base + ty * TM .. + TM - 1 of pixels tx * 4 .. + 3 of
  // the tile, and loads row kb (and kb + RT where CT = 32) of each step's B slice for the same
  // pixels and (the first 4 * BM invocations) A's 4-vectors li and li + 256.
  let ty = li / CT;
  let tx = li % CT;
  let kb = ty;
  let a_at = ty * (TM / 4u);
  let loads_a = li < 4u * bm;
  for (var nt = wid.x; nt < pixel_tiles; nt += nwg.x) {
    let q_base = nt * 4u * CT;
    let q0 = q_base + tx * 4u;
    let c = cols(q0, g);
    var a_next0 = vec4<f32>(0.0);
    var a_next1 = vec4<f32>(0.0);
    if (loads_a) { a_next0 = load_a4(li, 0u, g, m_base); }
    if (TM == 8u) { a_next1 = load_a4(li + 256u, 0u, g, m_base); }
    var b_next0 = load_b4(c, kb, q0);
    var b_next1 = vec4<f32>(0.0);
    if (CT == 32u) { b_next1 = load_b4(c, kb + RT, q0); }
    // acc0 .. acc7: channels m_base + ty * TM + 0 .. 7 (4 .. 7 only for TM = 8).
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
      workgroupBarrier();
      if (loads_a) { a_tile[li] = a_next0; }
      if (TM == 8u) { a_tile[li + 256u] = a_next1; }
      b_tile[li] = b_next0;
      if (CT == 32u) { b_tile[li + 256u] = b_next1; }
      workgroupBarrier();
      if (k0 + BK < p.k) {
        let k1 = k0 + BK;
        if (loads_a) { a_next0 = load_a4(li, k1, g, m_base); }
        if (TM == 8u) { a_next1 = load_a4(li + 256u, k1, g, m_base); }
        b_next0 = load_b4(c, k1 + kb, q0);
        if (CT == 32u) { b_next1 = load_b4(c, k1 + kb + RT, q0); }
      }
      for (var kk = 0u; kk < BK; kk++) {
        let bv = b_tile[kk * CT + tx];
        let a = a_tile[kk * per_row + a_at];
        acc0 += a.x * bv;
        acc1 += a.y * bv;
        acc2 += a.z * bv;
        acc3 += a.w * bv;
        if (TM == 8u) {
          let a2 = a_tile[kk * per_row + a_at + 1u];
          acc4 += a2.x * bv;
          acc5 += a2.y * bv;
          acc6 += a2.z * bv;
          acc7 += a2.w * bv;
        }
      }
    }
    let m0 = m_base + ty * TM;
    store_rows4(m0, g, q0, acc0, acc1, acc2, acc3);
    if (TM == 8u) { store_rows4(m0 + 4u, g, q0, acc4, acc5, acc6, acc7); }
  }
}

// main_ks: for layers whose 64-channel tiles are too few to fill the device (late layers,
// small batches), tiles of 32 channels x 32 pixels with K split over the workgroup's KS = 4
// slices of 64 invocations (8 x 8, 4 x 4 outputs each), K steps of 8 interleaved between the
// slices, each slice with its own part of workgroup memory; at the end slices 1 .. 3 leave their
// partial tiles there and slice 0 adds them and stores. Overrides as for `main_tile` with RT = 8 and
// TM = 4 (load_a4's 32-channel rows). Grid: x = ceil(N / 32), y = ceil(M / 32), z = groups.
const KS: u32 = 4u;
const BK_S: u32 = 8u;
// Per slice: A [BK_S][8] and B [BK_S][8] 4-vectors (128); after the K loop the partial tiles
// of slices 1 .. 3 (3 x 64 x 4 4-vectors).
var<workgroup> ks_tile: array<vec4<f32>, 768>;

@compute @workgroup_size(256, 1, 1)
fn main_ks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
  let g = wid.z;
  let m_base = wid.y * 32u;
  let pixel_tiles = (p.n + 31u) / 32u;
  let s = li / 64u;
  let t = li % 64u;
  // Outputs: channels m_base + ty * 4 .. + 3, pixels tx * 4 .. + 3 of the tile. Loads: A's
  // 4-vector t of each step (row t / 8, channels (t % 8) * 4 ..), B's row t / 8 for pixels
  // (t % 8) * 4 .. + 3.
  let ty = t / 8u;
  let tx = t % 8u;
  let kb = t / 8u;
  let region = s * 128u;
  let steps = (p.k + BK_S - 1u) / BK_S;
  let rounds = (steps + KS - 1u) / KS;
  for (var nt = wid.x; nt < pixel_tiles; nt += nwg.x) {
    let q_base = nt * 32u;
    let qb = q_base + tx * 4u;
    let c = cols(qb, g);
    var a_next = load_a4(t, s * BK_S, g, m_base);
    var b_next = load_b4(c, s * BK_S + kb, qb);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var r = 0u; r < rounds; r++) {
      workgroupBarrier();
      ks_tile[region + t] = a_next;
      ks_tile[region + 64u + t] = b_next;
      workgroupBarrier();
      // Past K both loads give zeros.
      let k1 = ((r + 1u) * KS + s) * BK_S;
      a_next = load_a4(t, k1, g, m_base);
      b_next = load_b4(c, k1 + kb, qb);
      for (var kk = 0u; kk < BK_S; kk++) {
        let bv = ks_tile[region + 64u + kk * 8u + tx];
        let a = ks_tile[region + kk * 8u + ty];
        acc0 += a.x * bv;
        acc1 += a.y * bv;
        acc2 += a.z * bv;
        acc3 += a.w * bv;
      }
    }
    workgroupBarrier();
    if (s > 0u) {
      let at = ((s - 1u) * 64u + t) * 4u;
      ks_tile[at] = acc0;
      ks_tile[at + 1u] = acc1;
      ks_tile[at + 2u] = acc2;
      ks_tile[at + 3u] = acc3;
    }
    workgroupBarrier();
    if (s == 0u) {
      for (var o = 0u; o < KS - 1u; o++) {
        let at = (o * 64u + t) * 4u;
        acc0 += ks_tile[at];
        acc1 += ks_tile[at + 1u];
        acc2 += ks_tile[at + 2u];
        acc3 += ks_tile[at + 3u];
      }
      store_rows4(m_base + ty * 4u, g, qb, acc0, acc1, acc2, acc3);
    }
  }
}
