
// main_sg: the 8 x 4 tiles of `main` for adapters with subgroups (appended to matmul8.wgsl
// only where the device has them). A workgroup is wx x (64 / wx) invocations; each row of wx
// shares one 8-row tile of A and takes 4 columns per invocation, so at every k the subgroup
// loads the tile's 8 weights once (lane r: row r; with 4-lane subgroups, rows r and r + 4) and
// shares them by broadcast, instead of every invocation loading all eight: on CPU adapters each
// load is a gather, one lane at a time. wx is a multiple of the largest subgroup, whose lanes
// are consecutive invocations, so a subgroup never spans two rows. No invocation leaves early
// (broadcasts need the whole subgroup): columns and rows past the edge read valid elements and
// are not stored.
// Overrides: VEC_B and WARM as `main`; SUBGROUP (subgroup_weights.wgsl); VEC_C (store_cols8).
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

// Rows m0 .. m0 + 3 (those below M) of one column whose element offset at row 0 is c (NONE:
// outside C), with the 4 rows' biases and the activation.
fn store_colb(c: u32, m0: u32, acc: vec4<f32>, bias: vec4<f32>) {
  if (c == NONE) { return; }
  for (var i = 0u; i < 4u; i++) {
    if (m0 + i < p.m) {
      store_y(c + (m0 + i) * p.sc_m, activate(acc[i] + bias[i], p.act));
    }
  }
}

// Four rows by 8 columns of an invocation's tile: column j's 4 rows in c{j}.
struct Cols8 {
  c0: vec4<f32>, c1: vec4<f32>, c2: vec4<f32>, c3: vec4<f32>,
  c4: vec4<f32>, c5: vec4<f32>, c6: vec4<f32>, c7: vec4<f32>,
}

// A column offset that marks a column outside C.
const NONE: u32 = 0xffffffffu;

// Where an invocation's 8 columns go in C: with VEC_C, the offsets of their two 4-vectors at
// row 0 (lo: columns 0 .. 3, hi: 4 .. 7) and whether each lies inside C (own_hi only with
// own_lo); else each column's offset at row 0 (c_lo: columns 0 .. 3, c_hi: 4 .. 7; NONE
// outside C).
struct Run8 { lo: u32, hi: u32, own_lo: bool, own_hi: bool, c_lo: vec4<u32>, c_hi: vec4<u32> }

// Offsets of columns n .. n + 3 of batch/group offset base (NONE from column `end` on).
fn col_offsets(base: u32, n: u32, end: u32) -> vec4<u32> {
  let j = vec4<u32>(n) + vec4<u32>(0u, 1u, 2u, 3u);
  return select(vec4<u32>(NONE), vec4<u32>(base) + j * p.sc_n, j < vec4<u32>(end));
}

// The Run8 of columns n0 .. n0 + 7 of batch/group offset base (no FOLD).
fn run8(base: u32, n0: u32) -> Run8 {
  return Run8(base + n0, base + n0 + 4u, n0 < p.n, n0 + 4u < p.n, col_offsets(base, n0, p.n),
              col_offsets(base, n0 + 4u, p.n));
}

// Rows m0 .. m0 + 3 (those below M) of the 8 columns of r (those inside C), with the biases
// and the activation. With VEC_C (C's columns have unit stride and N and C's other strides are
// multiples of 4, so each 4 columns start a 4-vector) each row's 8 are two 4-vector stores.
fn store_cols8(r: Run8, m0: u32, bias: vec4<f32>, q: Cols8) {
  if (VEC_C) {
    if (!r.own_lo) { return; }
    for (var i = 0u; i < 4u; i++) {
      if (m0 + i < p.m) {
        let row = (m0 + i) * p.sc_m;
        store4_y(r.lo + row,
                 activate4(vec4<f32>(q.c0[i], q.c1[i], q.c2[i], q.c3[i]) + bias[i], p.act));
        if (r.own_hi) {
          store4_y(r.hi + row,
                   activate4(vec4<f32>(q.c4[i], q.c5[i], q.c6[i], q.c7[i]) + bias[i], p.act));
        }
      }
    }
    return;
  }
  store_colb(r.c_lo.x, m0, q.c0, bias);
  store_colb(r.c_lo.y, m0, q.c1, bias);
  store_colb(r.c_lo.z, m0, q.c2, bias);
  store_colb(r.c_lo.w, m0, q.c3, bias);
  store_colb(r.c_hi.x, m0, q.c4, bias);
  store_colb(r.c_hi.y, m0, q.c5, bias);
  store_colb(r.c_hi.z, m0, q.c6, bias);
  store_colb(r.c_hi.w, m0, q.c7, bias);
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
    // The workgroup's first row, one invocation per 16 columns (a 64-byte line).
    let warmed = warm_rows(cols.c0, lid3.y == 0u && lid % 4u == 0u);
    var lo0 = vec4<f32>(kept(warmed), 0.0, 0.0, 0.0);
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

// main_sgt: main_sg with 8 columns per invocation (two 4-vectors of B) and TILES 8-row tiles
// of A (1, 2 or 4: 8, 16 or 32 rows), each tile's weights loaded once per subgroup and
// broadcast: per k, TILES weight gathers and 8 input gathers feed 64 * TILES multiply-adds. On
// lavapipe the input loads were about half of the 8-row kernel's time (NIN's conv1b: 117 ms,
// 61 without them), hence the taller tiles. A repacked to MP = M rounded up to 8, as for every
// kernel here: a tall tile that runs past MP reads the last 8 rows again for its rows past M.
// The K loop takes two steps per iteration and assigns each accumulator once per iteration:
// lavapipe turns every assignment in a loop into a select by the lane mask and, with 256
// accumulators held in memory, a load and a store (1x1 layers 1.12-1.26x; three or four steps
// were slower, the loaded operands no longer fitting).
// Override TILES. Rows of wx invocations cover 8 * wx columns. Grid: x = min(ceil(N / (8 * wx)),
// 65535), y = ceil(ceil(M / (8 * TILES)) / (64 / wx)), z as main_sg.
override TILES: u32 = 1u;

// 8 * TILES rows by 8 columns: rows 4i .. 4i + 3 in r{i} (r0, r1 with one tile; r0 .. r3 with
// two).
struct Acc {
  r0: Cols8, r1: Cols8, r2: Cols8, r3: Cols8, r4: Cols8, r5: Cols8, r6: Cols8, r7: Cols8,
}

// The TILES tiles' weights at one k (t0: rows 0 .. 7, t1: 8 .. 15, ...).
struct StepWeights {
  t0: TileWeights, t1: TileWeights, t2: TileWeights, t3: TileWeights,
}

// The weights of the invocation's tiles at offset ai of the repacked A, tile t at ai + o[t - 1]
// (t > 0). From uniform control flow only (tile_weights).
fn step_weights(ai: u32, o: vec3<u32>, lane: u32) -> StepWeights {
  var w: StepWeights;
  w.t0 = tile_weights(ai, lane);
  if (TILES > 1u) { w.t1 = tile_weights(ai + o.x, lane); }
  if (TILES > 2u) {
    w.t2 = tile_weights(ai + o.y, lane);
    w.t3 = tile_weights(ai + o.z, lane);
  }
  return w;
}

// q + w x^T for 4 rows' weights w and the 8 columns' inputs xa (columns 0 .. 3), xb (4 .. 7).
fn cols8_fma(q: Cols8, w: vec4<f32>, xa: vec4<f32>, xb: vec4<f32>) -> Cols8 {
  return Cols8(q.c0 + w * xa.x, q.c1 + w * xa.y, q.c2 + w * xa.z, q.c3 + w * xa.w,
               q.c4 + w * xb.x, q.c5 + w * xb.y, q.c6 + w * xb.z, q.c7 + w * xb.w);
}

// Two k steps: acc plus the weights w0 times the inputs xa0, xb0 and w1 times xa1, xb1, each
// accumulator assigned once.
fn cols8_fma2(q: Cols8, w0: vec4<f32>, xa0: vec4<f32>, xb0: vec4<f32>, w1: vec4<f32>,
              xa1: vec4<f32>, xb1: vec4<f32>) -> Cols8 {
  return Cols8(q.c0 + w0 * xa0.x + w1 * xa1.x, q.c1 + w0 * xa0.y + w1 * xa1.y,
               q.c2 + w0 * xa0.z + w1 * xa1.z, q.c3 + w0 * xa0.w + w1 * xa1.w,
               q.c4 + w0 * xb0.x + w1 * xb1.x, q.c5 + w0 * xb0.y + w1 * xb1.y,
               q.c6 + w0 * xb0.z + w1 * xb1.z, q.c7 + w0 * xb0.w + w1 * xb1.w);
}

fn acc_step2(acc: Acc, w0: StepWeights, xa0: vec4<f32>, xb0: vec4<f32>, w1: StepWeights,
             xa1: vec4<f32>, xb1: vec4<f32>) -> Acc {
  var q = acc;
  q.r0 = cols8_fma2(q.r0, w0.t0.lo, xa0, xb0, w1.t0.lo, xa1, xb1);
  q.r1 = cols8_fma2(q.r1, w0.t0.hi, xa0, xb0, w1.t0.hi, xa1, xb1);
  if (TILES > 1u) {
    q.r2 = cols8_fma2(q.r2, w0.t1.lo, xa0, xb0, w1.t1.lo, xa1, xb1);
    q.r3 = cols8_fma2(q.r3, w0.t1.hi, xa0, xb0, w1.t1.hi, xa1, xb1);
  }
  if (TILES > 2u) {
    q.r4 = cols8_fma2(q.r4, w0.t2.lo, xa0, xb0, w1.t2.lo, xa1, xb1);
    q.r5 = cols8_fma2(q.r5, w0.t2.hi, xa0, xb0, w1.t2.hi, xa1, xb1);
    q.r6 = cols8_fma2(q.r6, w0.t3.lo, xa0, xb0, w1.t3.lo, xa1, xb1);
    q.r7 = cols8_fma2(q.r7, w0.t3.hi, xa0, xb0, w1.t3.hi, xa1, xb1);
  }
  return q;
}

// One k step: acc plus the step's weights times the 8 columns' inputs xa, xb.
fn acc_step(acc: Acc, w: StepWeights, xa: vec4<f32>, xb: vec4<f32>) -> Acc {
  var q = acc;
  q.r0 = cols8_fma(q.r0, w.t0.lo, xa, xb);
  q.r1 = cols8_fma(q.r1, w.t0.hi, xa, xb);
  if (TILES > 1u) {
    q.r2 = cols8_fma(q.r2, w.t1.lo, xa, xb);
    q.r3 = cols8_fma(q.r3, w.t1.hi, xa, xb);
  }
  if (TILES > 2u) {
    q.r4 = cols8_fma(q.r4, w.t2.lo, xa, xb);
    q.r5 = cols8_fma(q.r5, w.t2.hi, xa, xb);
    q.r6 = cols8_fma(q.r6, w.t3.lo, xa, xb);
    q.r7 = cols8_fma(q.r7, w.t3.hi, xa, xb);
  }
  return q;
}

// Tile t's 8 rows (those below M) from m0 + 8 t, with their biases: from uniform control flow
// only (the biases are broadcast); own: whether the invocation stores.
fn store_tile(r: Run8, bias_base: u32, m0: u32, lane: u32, own: bool, lo: Cols8, hi: Cols8) {
  let bt = rows_bias(bias_base, m0, lane);
  if (own) {
    store_cols8(r, m0, bt.lo, lo);
    store_cols8(r, m0 + 4u, bt.hi, hi);
  }
}

// Override FOLD: the columns run over the whole batch (Params.batches images of N columns
// each; grid x = 1, z = groups * column blocks), so that an image whose N is not a multiple of
// a workgroup row's columns leaves no invocations idle at its end (14 x 14 maps: 196 columns in
// rows of 32 x 8; 7 x 7: 49 in rows of 8 x 8). With VEC_B (and VEC_C) N is a multiple of 4, so
// no 4-vector spans two images; without, each column is read (and stored) at its own image's
// offset.
override FOLD: bool = false;

// Image and column within it of column n of the batch (FOLD).
fn fold_col(n: u32) -> vec2<u32> {
  return vec2<u32>(n / p.n, n % p.n);
}

// FOLD: the offset of batch column n (image i, column j) with batch stride sb, group stride
// sg and column stride sn, for group g.
fn fold_offset(n: u32, g: u32, sb: u32, sg: u32, sn: u32) -> u32 {
  let f = fold_col(n);
  return f.x * sb + g * sg + f.y * sn;
}

// FOLD without VEC_B: batch columns n .. n + 3 of B (past the last, the last) as a Cols4.
fn fold_cols4(g: u32, n: u32, n_all: u32) -> Cols4 {
  let last = n_all - 1u;
  let c0 = fold_offset(min(n, last), g, p.sb_b, p.sb_g, p.sb_n);
  return Cols4(c0, fold_offset(min(n + 1u, last), g, p.sb_b, p.sb_g, p.sb_n),
               fold_offset(min(n + 2u, last), g, p.sb_b, p.sb_g, p.sb_n),
               fold_offset(min(n + 3u, last), g, p.sb_b, p.sb_g, p.sb_n), c0 / 4u);
}

// FOLD without VEC_C: batch columns n .. n + 3's offsets in C (NONE past the last).
fn fold_c_offsets(g: u32, n: u32, n_all: u32) -> vec4<u32> {
  var c = vec4<u32>(NONE);
  for (var j = 0u; j < 4u; j++) {
    if (n + j < n_all) { c[j] = fold_offset(n + j, g, p.sc_b, p.sc_g, p.sc_n); }
  }
  return c;
}

@compute @workgroup_size(64)
fn main_sgt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32,
            @builtin(subgroup_invocation_id) lane: u32) {
  let wx = p.wx;
  let rows = 8u * TILES;
  // Row li / wx of wx invocations, li % wx along it (a 1-D workgroup: naga takes subgroup
  // builtins only there).
  let g = wid.z % p.groups;
  let b = select(wid.z / p.groups, 0u, FOLD);
  // Column blocks: the grid's x, or with FOLD its z over the groups (so that the channel tiles
  // of one block run one after another and share its inputs in the caches).
  let blk0 = select(wid.x, wid.z / p.groups, FOLD);
  let blk_step = select(nwg.x, nwg.z / p.groups, FOLD);
  // Columns this launch covers: N per image, or the whole batch's with FOLD.
  let n_all = select(p.n, p.n * p.batches, FOLD);
  let lid = li % wx;
  let mp = (p.m + 7u) / 8u * 8u;
  let tiles_m = (p.m + rows - 1u) / rows;
  let tm = wid.y * (64u / wx) + li / wx;
  // Invocations past the last tile load the last tile and store nothing.
  let m0 = min(tm, tiles_m - 1u) * rows;
  let own_tile = tm < tiles_m;
  // Tiles 1 .. 3's offsets from m0, those past MP reading the last 8 rows again (never stored:
  // their rows are past M).
  let last = mp - 8u;
  let o = vec3<u32>(min(m0 + 8u, last), min(m0 + 16u, last), min(m0 + 24u, last)) - m0;
  let b_base = b * p.sb_b + g * p.sb_g;
  let c_base = b * p.sc_b + g * p.sc_g;
  let bias_base = g * p.m;
  let a_base = g * p.k * mp + m0;
  for (var blk = blk0; blk * 8u * wx < n_all; blk += blk_step) {
    let n0 = blk * 8u * wx + lid * 8u;
    var cols_lo = cols4(b_base, n0);
    var cols_hi = cols4(b_base, n0 + 4u);
    var r = run8(c_base, n0);
    if (FOLD) {
      // With 4-vectors, past the batch's last column its last 4-vector (read, never stored;
      // N and so the batch's columns are then a multiple of 4).
      let n_lo = min(n0, max(n_all, 4u) - 4u);
      let n_hi = min(n0 + 4u, max(n_all, 4u) - 4u);
      if (VEC_B) {
        let lo = fold_col(n_lo);
        let hi = fold_col(n_hi);
        cols_lo = cols4(lo.x * p.sb_b + g * p.sb_g, lo.y);
        cols_hi = cols4(hi.x * p.sb_b + g * p.sb_g, hi.y);
      } else {
        cols_lo = fold_cols4(g, n0, n_all);
        cols_hi = fold_cols4(g, n0 + 4u, n_all);
      }
      if (VEC_C) {
        r.lo = fold_offset(n_lo, g, p.sc_b, p.sc_g, p.sc_n);
        r.hi = fold_offset(n_hi, g, p.sc_b, p.sc_g, p.sc_n);
        r.own_lo = n0 < n_all;
        r.own_hi = n0 + 4u < n_all;
      } else {
        r.c_lo = fold_c_offsets(g, n0, n_all);
        r.c_hi = fold_c_offsets(g, n0 + 4u, n_all);
      }
    }
    var acc = Acc();
    // The workgroup's first row, one invocation per 16 columns (a 64-byte line).
    acc.r0.c0.x = kept(warm_rows(cols_lo.c0, li < wx && lid % 2u == 0u));
    var ai = a_base;
    var kb = 0u;
    var kk = 0u;
    for (; kk + 1u < p.k; kk += 2u) {
      let w0 = step_weights(ai, o, lane);
      let xa0 = vec4<f32>(load_cols4(cols_lo, kb));
      let xb0 = vec4<f32>(load_cols4(cols_hi, kb));
      let w1 = step_weights(ai + mp, o, lane);
      let xa1 = vec4<f32>(load_cols4(cols_lo, kb + p.sb_k));
      let xb1 = vec4<f32>(load_cols4(cols_hi, kb + p.sb_k));
      ai += 2u * mp;
      kb += 2u * p.sb_k;
      acc = acc_step2(acc, w0, xa0, xb0, w1, xa1, xb1);
    }
    if (kk < p.k) {
      let w = step_weights(ai, o, lane);
      acc = acc_step(acc, w, vec4<f32>(load_cols4(cols_lo, kb)),
                     vec4<f32>(load_cols4(cols_hi, kb)));
    }
    store_tile(r, bias_base, m0, lane, own_tile, acc.r0, acc.r1);
    if (TILES > 1u) { store_tile(r, bias_base, m0 + 8u, lane, own_tile, acc.r2, acc.r3); }
    if (TILES > 2u) {
      store_tile(r, bias_base, m0 + 16u, lane, own_tile, acc.r4, acc.r5);
      store_tile(r, bias_base, m0 + 24u, lane, own_tile, acc.r6, acc.r7);
    }
  }
}

// main_sgc: main_sgt with the operands' roles swapped, for B whose columns are not 4-vectors
// (H * W not a multiple of 4: GoogLeNet's 15 x 15 maps, ResNet's 7 x 7): there main_sgt loads
// its 8 columns one by one (on lavapipe 1.5x slower per multiply-add). Here each invocation
// takes 8 rows of C, whose weights are two aligned 4-vectors of the repacked A whatever N, and
// TILES 8-column tiles of B that its workgroup row of wx invocations shares: at every k the
// subgroup loads each tile once (lane r: column r; with 4-lane subgroups, r and r + 4) and
// broadcasts it, as main_sgt does with A's tiles. The columns run over the whole batch (as
// FOLD), each read and stored at its own image's offset. A row of wx invocations covers
// 8 * wx rows (those past MP read the last 8 and store nothing); the workgroup's rows take
// consecutive column blocks. Each output's sum keeps main_sgt's order.
// Grid: x = min(ceil(ceil(N * batches / (8 * TILES)) / (64 / wx)), 65535) (looped over),
// y = ceil(MP / (8 * wx)), z = groups.

// The TILES column tiles' values at row offset kb, the lane's own column of tile t at
// element offset cx[t] (and cy[t] with 4-lane subgroups). From uniform control flow only.
fn column_tiles(cx: vec4<u32>, cy: vec4<u32>, kb: u32) -> StepWeights {
  var s: StepWeights;
  s.t0 = column_tile(cx.x, cy.x, kb);
  if (TILES > 1u) { s.t1 = column_tile(cx.y, cy.y, kb); }
  if (TILES > 2u) {
    s.t2 = column_tile(cx.z, cy.z, kb);
    s.t3 = column_tile(cx.w, cy.w, kb);
  }
  return s;
}

// One tile of column_tiles: the lane's column at x + kb (and at y + kb, read only with 4-lane
// subgroups, as tile_weights does).
fn column_tile(x: u32, y: u32, kb: u32) -> TileWeights {
  let a = f32(load_x(x + kb));
  var b = a;
  if (SUBGROUP < 8u) { b = f32(load_x(y + kb)); }
  return share_tile(a, b);
}

// Two k steps of main_sgc: the invocation's rows' weights (lo: rows 0 .. 3, hi: 4 .. 7) times
// the column tiles c0 and c1; r{2t} holds tile t's columns for rows 0 .. 3, r{2t + 1} for 4 .. 7.
fn cols_step2(acc: Acc, lo0: vec4<f32>, hi0: vec4<f32>, c0: StepWeights, lo1: vec4<f32>,
              hi1: vec4<f32>, c1: StepWeights) -> Acc {
  var q = acc;
  q.r0 = cols8_fma2(q.r0, lo0, c0.t0.lo, c0.t0.hi, lo1, c1.t0.lo, c1.t0.hi);
  q.r1 = cols8_fma2(q.r1, hi0, c0.t0.lo, c0.t0.hi, hi1, c1.t0.lo, c1.t0.hi);
  if (TILES > 1u) {
    q.r2 = cols8_fma2(q.r2, lo0, c0.t1.lo, c0.t1.hi, lo1, c1.t1.lo, c1.t1.hi);
    q.r3 = cols8_fma2(q.r3, hi0, c0.t1.lo, c0.t1.hi, hi1, c1.t1.lo, c1.t1.hi);
  }
  if (TILES > 2u) {
    q.r4 = cols8_fma2(q.r4, lo0, c0.t2.lo, c0.t2.hi, lo1, c1.t2.lo, c1.t2.hi);
    q.r5 = cols8_fma2(q.r5, hi0, c0.t2.lo, c0.t2.hi, hi1, c1.t2.lo, c1.t2.hi);
    q.r6 = cols8_fma2(q.r6, lo0, c0.t3.lo, c0.t3.hi, lo1, c1.t3.lo, c1.t3.hi);
    q.r7 = cols8_fma2(q.r7, hi0, c0.t3.lo, c0.t3.hi, hi1, c1.t3.lo, c1.t3.hi);
  }
  return q;
}

// One k step of main_sgc.
fn cols_step(acc: Acc, lo: vec4<f32>, hi: vec4<f32>, c: StepWeights) -> Acc {
  var q = acc;
  q.r0 = cols8_fma(q.r0, lo, c.t0.lo, c.t0.hi);
  q.r1 = cols8_fma(q.r1, hi, c.t0.lo, c.t0.hi);
  if (TILES > 1u) {
    q.r2 = cols8_fma(q.r2, lo, c.t1.lo, c.t1.hi);
    q.r3 = cols8_fma(q.r3, hi, c.t1.lo, c.t1.hi);
  }
  if (TILES > 2u) {
    q.r4 = cols8_fma(q.r4, lo, c.t2.lo, c.t2.hi);
    q.r5 = cols8_fma(q.r5, hi, c.t2.lo, c.t2.hi);
    q.r6 = cols8_fma(q.r6, lo, c.t3.lo, c.t3.hi);
    q.r7 = cols8_fma(q.r7, hi, c.t3.lo, c.t3.hi);
  }
  return q;
}

// The element offset in B of batch column n (past the last, the last) for group g.
fn column_at(n: u32, n_all: u32, g: u32) -> u32 {
  return fold_offset(min(n, n_all - 1u), g, p.sb_b, p.sb_g, p.sb_n);
}

// Tile t's 8 columns from n (those below n_all) for the invocation's rows m0 .. m0 + 7 with
// their biases (lo: rows 0 .. 3, hi: 4 .. 7).
fn store_column_tile(g: u32, n: u32, n_all: u32, m0: u32, b_lo: vec4<f32>, b_hi: vec4<f32>,
                     lo: Cols8, hi: Cols8) {
  var r: Run8;
  r.c_lo = fold_c_offsets(g, n, n_all);
  r.c_hi = fold_c_offsets(g, n + 4u, n_all);
  store_cols8(r, m0, b_lo, lo);
  store_cols8(r, m0 + 4u, b_hi, hi);
}

@compute @workgroup_size(64)
fn main_sgc(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32,
            @builtin(subgroup_invocation_id) lane: u32) {
  let wx = p.wx;
  let g = wid.z;
  let n_all = p.n * p.batches;
  let cols = 8u * TILES;
  let mp = (p.m + 7u) / 8u * 8u;
  let tm = wid.y * wx + li % wx;
  // Rows past MP read the last 8-row tile and store nothing.
  let m0 = min(tm, mp / 8u - 1u) * 8u;
  let own = tm * 8u < mp;
  let bias_base = g * p.m;
  var b_lo = vec4<f32>(0.0);
  var b_hi = vec4<f32>(0.0);
  for (var i = 0u; i < 4u; i++) {
    b_lo[i] = f32(load_b(bias_base + min(m0 + i, p.m - 1u)));
    b_hi[i] = f32(load_b(bias_base + min(m0 + 4u + i, p.m - 1u)));
  }
  let a0 = (g * p.k * mp + m0) / 4u;
  let step = mp / 4u;
  let o = tile_lane(lane);
  let per_wg = 64u / wx;
  // A workgroup row's column block (the same for every lane of a subgroup).
  for (var blk = wid.x * per_wg + li / wx; blk * cols < n_all; blk += nwg.x * per_wg) {
    let n0 = blk * cols;
    let cx = vec4<u32>(column_at(n0 + o.x, n_all, g), column_at(n0 + 8u + o.x, n_all, g),
                       column_at(n0 + 16u + o.x, n_all, g), column_at(n0 + 24u + o.x, n_all, g));
    let cy = vec4<u32>(column_at(n0 + o.y, n_all, g), column_at(n0 + 8u + o.y, n_all, g),
                       column_at(n0 + 16u + o.y, n_all, g), column_at(n0 + 24u + o.y, n_all, g));
    var acc = Acc();
    // The first 8 invocations of each workgroup row, one per 4 of its row's 32 columns.
    let lead = li % wx;
    acc.r0.c0.x = kept(warm_rows(column_at(n0 + 4u * min(lead, 7u), n_all, g), lead < 8u));
    var ai = a0;
    var kb = 0u;
    var kk = 0u;
    for (; kk + 1u < p.k; kk += 2u) {
      let lo0 = vec4<f32>(load4_w(ai));
      let hi0 = vec4<f32>(load4_w(ai + 1u));
      let c0 = column_tiles(cx, cy, kb);
      let lo1 = vec4<f32>(load4_w(ai + step));
      let hi1 = vec4<f32>(load4_w(ai + step + 1u));
      let c1 = column_tiles(cx, cy, kb + p.sb_k);
      ai += 2u * step;
      kb += 2u * p.sb_k;
      acc = cols_step2(acc, lo0, hi0, c0, lo1, hi1, c1);
    }
    if (kk < p.k) {
      acc = cols_step(acc, vec4<f32>(load4_w(ai)), vec4<f32>(load4_w(ai + 1u)),
                      column_tiles(cx, cy, kb));
    }
    if (own) {
      store_column_tile(g, n0, n_all, m0, b_lo, b_hi, acc.r0, acc.r1);
      if (TILES > 1u) { store_column_tile(g, n0 + 8u, n_all, m0, b_lo, b_hi, acc.r2, acc.r3); }
      if (TILES > 2u) {
        store_column_tile(g, n0 + 16u, n_all, m0, b_lo, b_hi, acc.r4, acc.r5);
        store_column_tile(g, n0 + 24u, n_all, m0, b_lo, b_hi, acc.r6, acc.r7);
      }
    }
  }
}
