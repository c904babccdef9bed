// conv2d_tiled: implicit-GEMM grouped convolution with workgroup-memory tiles, for GPUs. For
// group g (dispatch z), with M = C_out/groups, N = batch * H_out * W_out and
// K = C_in/groups * kh * kw, C[M x N] = A[M x K] * B[K x N], B gathered from the input (the
// im2col of the block's pixels, never stored in device memory).
// 64 invocations compute one BM x BN block of C (TM x TN invocations, TM * TN = 64, each an
// 8-channel x 4-pixel register tile: BM = 8 * TM, BN = 4 * TN), stepping through K in chunks of
// 16: the chunk's 16 x BM weights and 16 x BN gathered input values go to workgroup memory, and
// every invocation adds the chunk to its tile from there. Each gathered input value then feeds
// BM multiply-adds (8 in conv2d_gemm.wgsl's main8, where every 8-channel tile gathers its own
// copy), each weight BN. The next chunk's weights and input values are loaded into registers
// while the current chunk is multiplied, so the loads' latency overlaps the arithmetic.
// The gather works out (input channel, ky, kx) of its first row with divisions once per chunk
// and steps to the next rows with compares; pointwise layers skip even that.
// Invocation (tm, tn) = (index / TN, index % TN) owns channels 8tm .. 8tm+7 and pixels
// 4tn .. 4tn+3 of the block; for the B chunk it takes pixel (index % BN) and 16 * BN / 64
// consecutive rows starting at 16 * BN / 64 * (index / BN).
// Pixels past N read the last pixel's window and are not stored; channels past M read the zero
// padding of the repacked weights and are not stored; K past the end reads zeros.
// Bindings: 0 Params (uniform, conv2d_gemm.wgsl's), 1 y [N, C_out, H_out, W_out],
//           2 x [N, C_in, H, W], 3 w [groups, K, MP] read as 4-vectors (MP = M rounded up to
//           8, zero-filled), 4 b [C_out].
// Overrides: TM (8 or 4: blocks of 64 x 32 or 32 x 64).
// Grid: x = min(ceil(N / BN), 65535) (blocks looped over), y = ceil(M / BM), z = groups.
struct Params {
  batch: u32, c_in: u32, h: u32, w: u32,
  c_out: u32, ho: u32, wo: u32, groups: u32, kh: u32,
  kw: u32, sh: u32, sw: u32, dh: u32,
  dw: u32, pt: u32, pl: u32, act: u32,
  m: u32, mp: u32, k: u32, n: u32,
  tiles_m: u32, tiles: u32,
}
@group(0) @binding(0) var<uniform> p: Params;

override TM: u32 = 8u;
const BK: u32 = 16u;
override TN: u32 = 64u / TM;
override BM4: u32 = 2u * TM;
override BN: u32 = 4u * TN;
// Rows of the B chunk each invocation gathers (8 or 16), and the A 4-vectors it loads (4 or 2).
override B_ROWS: u32 = BK * BN / 64u;
override A_VECS: u32 = BK * BM4 / 64u;

// A chunk [BK][BM / 4] and B chunk [BK][BN] (read as [BK][BN / 4] 4-vectors).
var<workgroup> a_s: array<vec4<f32>, 256>;
var<workgroup> b_s: array<vec4<f32>, 256>;

// Where output pixel q's window starts: x = input offset of (batch, first channel of the group),
// y = top row, z = left column (negative inside the padding).
fn window_of(q: u32, g: u32) -> vec3<i32> {
  let hw_out = p.ho * p.wo;
  let b = q / hw_out;
  let r = q % hw_out;
  return vec3<i32>(i32((b * p.c_in + g * (p.c_in / p.groups)) * p.h * p.w),
                   i32((r / p.wo) * p.sh) - i32(p.pt), i32((r % p.wo) * p.sw) - i32(p.pl));
}

// Stores output pixel q of channels m0 .. m0 + 3 of group g.
fn store_px(q: u32, g: u32, m0: u32, acc: vec4<f32>) {
  if (q >= p.n) { return; }
  let hw_out = p.ho * p.wo;
  let base = (q / hw_out) * p.c_out * hw_out + q % hw_out;
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + i;
    if (m < p.m) {
      let co = g * p.m + m;
      store_y(base + co * hw_out, activate(acc[i] + f32(load_b(co)), p.act));
    }
  }
}

struct Chunk { a: array<vec4<f32>, 4>, b: array<f32, 16>, }

// The chunk at k0 from device memory into registers: this invocation's A 4-vectors (index
// li + 64 i of the chunk) and its B rows r0 .. r0 + B_ROWS - 1 of pixel window `win`.
fn fetch(k0: u32, li: u32, g: u32, m4_0: u32, win: vec3<i32>, r0: u32) -> Chunk {
  var c: Chunk;
  let mp4 = p.mp / 4u;
  for (var i = 0u; i < A_VECS; i++) {
    let e = li + 64u * i;
    let k = k0 + e / BM4;
    let m4 = m4_0 + e % BM4;
    var a = vec4<f32>(0.0);
    if (k < p.k && m4 < mp4) {
      a = vec4<f32>(load4_w((g * p.k + k) * mp4 + m4));
    }
    c.a[i] = a;
  }
  let hw_in = i32(p.h * p.w);
  let k = k0 + r0;
  if (p.kh * p.kw == 1u) {
    // Pointwise: row k is input channel k, at the window's own pixel.
    let ok = u32(win.y) < p.h && u32(win.z) < p.w;
    var idx = win.x + win.y * i32(p.w) + win.z + i32(k) * hw_in;
    for (var j = 0u; j < B_ROWS; j++) {
      var v = 0.0;
      if (ok && k + j < p.k) { v = f32(load_x(u32(idx))); }
      c.b[j] = v;
      idx += hw_in;
    }
    return c;
  }
  let taps = p.kh * p.kw;
  var ci = k / taps;
  let t = k % taps;
  var ky = t / p.kw;
  var kx = t % p.kw;
  for (var j = 0u; j < B_ROWS; j++) {
    let r = win.y + i32(ky * p.dh);
    let col = win.z + i32(kx * p.dw);
    var v = 0.0;
    if (k + j < p.k && u32(r) < p.h && u32(col) < p.w) {
      v = f32(load_x(u32(win.x + i32(ci) * hw_in + r * i32(p.w) + col)));
    }
    c.b[j] = v;
    kx += 1u;
    if (kx == p.kw) {
      kx = 0u;
      ky += 1u;
      if (ky == p.kh) { ky = 0u; ci += 1u; }
    }
  }
  return c;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let tm = li / TN;
  let tn = li % TN;
  let g = wid.z;
  let m4_0 = wid.y * BM4;
  let bcol = li % BN;
  let r0 = (li / BN) * B_ROWS;
  let blocks = (p.n + BN - 1u) / BN;
  for (var blk = wid.x; blk < blocks; blk += nwg.x) {
    let n0 = blk * BN;
    let win = window_of(min(n0 + bcol, p.n - 1u), g);
    var lo0 = vec4<f32>(0.0); var hi0 = vec4<f32>(0.0);
    var lo1 = vec4<f32>(0.0); var hi1 = vec4<f32>(0.0);
    var lo2 = vec4<f32>(0.0); var hi2 = vec4<f32>(0.0);
    var lo3 = vec4<f32>(0.0); var hi3 = vec4<f32>(0.0);
    var next = fetch(0u, li, g, m4_0, win, r0);
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
      for (var i = 0u; i < A_VECS; i++) { a_s[li + 64u * i] = next.a[i]; }
      for (var j = 0u; j < B_ROWS; j++) {
        let e = (r0 + j) * BN + bcol;
        b_s[e / 4u][e % 4u] = next.b[j];
      }
      workgroupBarrier();
      if (k0 + BK < p.k) { next = fetch(k0 + BK, li, g, m4_0, win, r0); }
      for (var kk = 0u; kk < BK; kk++) {
        let a = a_s[kk * BM4 + 2u * tm];
        let c = a_s[kk * BM4 + 2u * tm + 1u];
        let b = b_s[kk * TN + tn];
        lo0 += a * b.x; hi0 += c * b.x;
        lo1 += a * b.y; hi1 += c * b.y;
        lo2 += a * b.z; hi2 += c * b.z;
        lo3 += a * b.w; hi3 += c * b.w;
      }
      workgroupBarrier();
    }
    let m0 = (m4_0 + 2u * tm) * 4u;
    let q = n0 + 4u * tn;
    store_px(q, g, m0, lo0); store_px(q, g, m0 + 4u, hi0);
    store_px(q + 1u, g, m0, lo1); store_px(q + 1u, g, m0 + 4u, hi1);
    store_px(q + 2u, g, m0, lo2); store_px(q + 2u, g, m0 + 4u, hi2);
    store_px(q + 3u, g, m0, lo3); store_px(q + 3u, g, m0 + 4u, hi3);
  }
}
