
// main8_sg: the 8 x 4 tiles of `main8` for adapters with subgroups (appended to
// conv2d_gemm.wgsl only where the device has them). A workgroup is wx x (64 / wx) invocations;
// each row of wx shares one tile of 8 output channels and takes 4 output pixels per invocation,
// so at every step the subgroup loads the tile's 8 weights once (lane r: channel r; with 4-lane
// subgroups, channels r and r + 4) and shares them by broadcast, instead of every invocation
// loading all eight: on CPU adapters each load is a gather, one lane at a time. wx is a
// multiple of the largest subgroup, whose lanes are consecutive invocations, so a subgroup
// never spans two rows. No invocation leaves early (broadcasts need the whole subgroup): pixels
// and channel tiles past the edge read valid elements and are not stored.
// Overrides: SUBGROUP (subgroup_weights.wgsl); SX: main8_row8_sg's stride along x (the layer's
// sw). Params.wx: invocations along the pixels per workgroup row (a power of two, 4 to 64; a
// uniform, as in matmul8_sg.wgsl).
// Grid: x = min(ceil(N / (4 * wx)), 65535) (blocks of pixel tiles, looped over),
// y = ceil(groups * tiles_m / (64 / wx)): the workgroup rows take the (group, channel tile)
// pairs in order (tile_row), so a group's odd tile count leaves no row idle.
override SX: u32 = 1u;

// The (group, channel tile) of workgroup row `row` of workgroup `wy` (64 / wx rows each) over
// `n_t` channel tiles per group, and whether that pair exists (x, y, z = g, tm, exists); rows
// past the last pair take the last and store nothing. Uniform within a row, so within a
// subgroup (wx is a multiple of the subgroup size).
fn tile_row(wy: u32, row: u32, wx: u32, n_t: u32) -> vec3<u32> {
  let own = wy * (64u / wx) + row;
  let pairs = p.groups * n_t;
  let i = min(own, pairs - 1u);
  return vec3<u32>(i / n_t, i % n_t, u32(own < pairs));
}

@compute @workgroup_size(64)
fn main8_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32,
            @builtin(subgroup_invocation_id) lane: u32) {
  let wx = p.wx;
  // Row lid3.y of wx invocations, lid3.x along it (a 1-D workgroup: naga takes subgroup
  // builtins only there).
  let lid3 = vec2<u32>(li % wx, li / wx);
  let lid = lid3.x;
  let gt = tile_row(wid.y, lid3.y, wx, p.tiles_m);
  let g = gt.x;
  let tm = gt.y;
  let cin_g = p.c_in / p.groups;
  let hw = p.h * p.w;
  let last = p.n - 1u;
  let wbase = g * p.k * p.mp + tm * 8u;
  let wstep = p.kh * p.kw * p.mp;
  let tiles_n = (p.n + 3u) / 4u;
  for (var blk = wid.x; blk * wx < tiles_n; blk += nwg.x) {
    let tn = blk * wx + lid;
    let w0 = window(min(tn * 4u, last), g, cin_g);
    let w1 = window(min(tn * 4u + 1u, last), g, cin_g);
    let w2 = window(min(tn * 4u + 2u, last), g, cin_g);
    let w3 = window(min(tn * 4u + 3u, last), g, cin_g);
    var lo0 = vec4<f32>(0.0);
    var lo1 = vec4<f32>(0.0);
    var lo2 = vec4<f32>(0.0);
    var lo3 = vec4<f32>(0.0);
    var hi0 = vec4<f32>(0.0);
    var hi1 = vec4<f32>(0.0);
    var hi2 = vec4<f32>(0.0);
    var hi3 = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.kh; ky++) {
      let dy = i32(ky * p.dh);
      for (var kx = 0u; kx < p.kw; kx++) {
        let dx = i32(kx * p.dw);
        let r0 = w0.y + dy; let q0 = w0.z + dx;
        let r1 = w1.y + dy; let q1 = w1.z + dx;
        let r2 = w2.y + dy; let q2 = w2.z + dx;
        let r3 = w3.y + dy; let q3 = w3.z + dx;
        let ok0 = u32(r0) < p.h && u32(q0) < p.w;
        let ok1 = u32(r1) < p.h && u32(q1) < p.w;
        let ok2 = u32(r2) < p.h && u32(q2) < p.w;
        let ok3 = u32(r3) < p.h && u32(q3) < p.w;
        var i0 = u32(select(0, w0.x + r0 * i32(p.w) + q0, ok0));
        var i1 = u32(select(0, w1.x + r1 * i32(p.w) + q1, ok1));
        var i2 = u32(select(0, w2.x + r2 * i32(p.w) + q2, ok2));
        var i3 = u32(select(0, w3.x + r3 * i32(p.w) + q3, ok3));
        var wi = wbase + (ky * p.kw + kx) * p.mp;
        for (var ci = 0u; ci < cin_g; ci++) {
          let t = tile_weights(wi, lane);
          let a = t.lo;
          let c = t.hi;
          wi += wstep;
          let x0 = select(0.0, f32(load_x(i0)), ok0);
          let x1 = select(0.0, f32(load_x(i1)), ok1);
          let x2 = select(0.0, f32(load_x(i2)), ok2);
          let x3 = select(0.0, f32(load_x(i3)), ok3);
          i0 += hw;
          i1 += hw;
          i2 += hw;
          i3 += hw;
          lo0 += a * x0;
          lo1 += a * x1;
          lo2 += a * x2;
          lo3 += a * x3;
          hi0 += c * x0;
          hi1 += c * x1;
          hi2 += c * x2;
          hi3 += c * x3;
        }
      }
    }
    if (gt.z == 1u) {
      store_tile(tn * 4u, tm, g, lo0, lo1, lo2, lo3, hi0, hi1, hi2, hi3);
    }
  }
}


// main8_row8_sg: row8x8's tiles (8 output channels x 8 consecutive pixels of one output row,
// each input row segment read once per (input channel, ky) and slid along kx) with the weights
// shared by subgroup broadcast as in main8_sg: per kernel column one input load and one weight
// load per invocation feed 64 multiply-adds. Pixel tiles are (image, output row, run of 8
// columns), so every tile is a row tile and all lanes run one loop (runs past the row's end
// read zeros and store nothing). With stride sw along x the kernel columns go in sw phases
// (columns ph, ph + sw, ...): within a phase, pixel j's input at the m-th column is
// c0 + ph + sw * (j + m), so the 8 values slide by one as in the stride-1 case (sw = 1 is one
// phase). Needs dw == 1. The stride is the override SX (= sw), so that the stride-1 pipeline
// has one phase and a unit step compiled in. Workgroups as main8_sg's, over
// batch * H_out * ceil(W_out / 8) pixel tiles.
// Override HALF: the launch runs only each group's channel tile, which holds 4 or fewer
// channels (M <= 4: the default rule takes this kernel from M = 3, tuning or forcing below):
// channels 4..7 are neither computed nor stored.
override HALF: bool = false;
// Override WIDE: the launch runs only each group's last two channel tiles as one of 12
// channels (M mod 8 in 1..4 and M > 8: groups of 12 or 20 outputs): channels 8..11 in a third
// set of accumulators (the other launch runs the full tiles before them with Params.tiles_m
// two lower).
override WIDE: bool = false;
// Override TALL (with ROW_X or ROW_X2; never with HALF or WIDE): each workgroup row takes two
// consecutive channel tiles as one of 16 channels (Params.tiles_m: tile pairs per group), so
// each kernel row's window, loaded once, feeds twice the multiply-adds: channels 8..11 in the
// md accumulators, 12..15 in ex.
override TALL: bool = false;
// Override VEC_Y: W_out is a multiple of 4 (store_run).
override VEC_Y: bool = false;
// Override ROWS2 (with ROW_X, stride and dilation 1 along y): each pixel tile is a run of 8 in
// output rows oy and oy + 1, over batch * ceil(H_out / 2) * ceil(W_out / 8) tiles.
override ROWS2: bool = false;
// ROW_X, VEC_X, SHIFT, X4, KW (row_vec.wgsl): kernel rows as 14-value windows (stride 1, kw <=
// 7; read as 4-vectors where VEC_X), or with ROW_X2 as 14 + KW values (stride 2): no phase loop,
// and each (kernel row, input channel) step takes the row's 14 values and unrolls its KW taps
// (on CPU adapters every variable a loop carries is selected by the lane mask at each step).

@compute @workgroup_size(64)
fn main8_row8_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32,
                 @builtin(subgroup_invocation_id) lane: u32) {
  let wx = p.wx;
  // The half and wide launches take one tile per group: the last, the last but one.
  let gt = tile_row(wid.y, li / wx, wx, select(p.tiles_m, 1u, HALF || WIDE));
  let g = gt.x;
  let tm = select(select(select(gt.y, p.tiles_m - 1u, HALF), p.tiles_m - 2u, WIDE), 2u * gt.y,
                  TALL);
  let cin_g = p.c_in / p.groups;
  let hw = p.h * p.w;
  let runs = (p.wo + 7u) / 8u;
  // Output rows per pixel tile: 2 with ROWS2.
  let bands = select(p.ho, (p.ho + 1u) / 2u, ROWS2);
  let tiles_n = p.batch * bands * runs;
  let wbase = g * p.k * p.mp + tm * 8u;
  let wci = p.kh * p.kw * p.mp;
  for (var blk = wid.x; blk * wx < tiles_n; blk += nwg.x) {
    let tn_own = blk * wx + li % wx;
    let tn = min(tn_own, tiles_n - 1u);
    let b = tn / (bands * runs);
    let oy = (tn / runs) % bands * select(1u, 2u, ROWS2);
    let ox0 = (tn % runs) * 8u;
    let base = i32((b * p.c_in + g * cin_g) * hw);
    let c0 = i32(ox0 * SX) - i32(p.pl);
    let top = i32(oy * p.sh) - i32(p.pt);
    let s = i32(SX);
    let phases = min(SX, p.kw);
    var acc = Tile8();
    // ROWS2: output row oy + 1's accumulators.
    var acc1 = Tile8();
    if (ROW_X && ROWS2) {
      // Stride and dilation 1 along y: per input channel, input rows top .. top + kh each read
      // once; kernel row ky's weights, loaded once, apply to row top + ky (output row oy) and
      // row top + ky + 1 (output row oy + 1).
      let cols = row_columns(c0);
      var plane = 0u;
      var wc = wbase;
      for (var ci = 0u; ci < cin_g; ci++) {
        var e = masked_window(row_window_at(row_start(base, top, c0) + i32(plane)), cols,
                              u32(top) < p.h);
        for (var ky = 0u; ky < p.kh; ky++) {
          let w = row_weights(wc + ky * p.kw * p.mp, lane);
          acc = row_apply(acc, win24(e), w);
          let row = top + i32(ky) + 1;
          e = masked_window(row_window_at(row_start(base, row, c0) + i32(plane)), cols,
                            u32(row) < p.h);
          acc1 = row_apply(acc1, win24(e), w);
        }
        plane += hw;
        wc += wci;
      }
    } else if (ROW_X) {
      // Stride 1 (one phase): each (input channel, kernel row) a step that takes the row's 14
      // values and unrolls its KW taps, in the order of the ROWS2 path (so that a layer adds
      // in the same order whichever the launch takes).
      let cols = row_columns(c0);
      var plane = 0u;
      var wc = wbase;
      for (var ci = 0u; ci < cin_g; ci++) {
        for (var ky = 0u; ky < p.kh; ky++) {
          let row = top + i32(ky * p.dh);
          let e = masked_window(row_window_at(row_start(base, row, c0) + i32(plane)), cols,
                                u32(row) < p.h);
          acc = row_apply(acc, win24(e), row_weights(wc + ky * p.kw * p.mp, lane));
        }
        plane += hw;
        wc += wci;
      }
    } else if (ROW_X2) {
      // Stride 2 along x: likewise, each (input channel, kernel row) step taking the row's 14 +
      // KW values at once.
      var plane = 0u;
      var wc = wbase;
      for (var ci = 0u; ci < cin_g; ci++) {
        for (var ky = 0u; ky < p.kh; ky++) {
          let row = top + i32(ky * p.dh);
          let e = row_window2(row_start(base, row, c0) + i32(plane), c0, u32(row) < p.h);
          acc = row_apply(acc, e, row_weights(wc + ky * p.kw * p.mp, lane));
        }
        plane += hw;
        wc += wci;
      }
    } else {
      for (var ph = 0u; ph < phases; ph++) {
        let c = c0 + i32(ph);
        let ok0 = u32(c) < p.w;
        let ok1 = u32(c + s) < p.w;
        let ok2 = u32(c + 2 * s) < p.w;
        let ok3 = u32(c + 3 * s) < p.w;
        let ok4 = u32(c + 4 * s) < p.w;
        let ok5 = u32(c + 5 * s) < p.w;
        let ok6 = u32(c + 6 * s) < p.w;
        for (var ky = 0u; ky < p.kh; ky++) {
          let row = top + i32(ky * p.dh);
          // No branch on the row (lanes differ; the broadcasts need them all): loads outside it
          // read offset `plane` and use zero.
          let rok = u32(row) < p.h;
          let rs = base + row * i32(p.w) + c;
          var wk = wbase + (ky * p.kw + ph) * p.mp;
          var plane = 0u;
          for (var ci = 0u; ci < cin_g; ci++) {
            var x0 = select(0.0, f32(load_x(u32(select(0, rs, rok && ok0)) + plane)), rok && ok0);
            var x1 = select(0.0, f32(load_x(u32(select(0, rs + s, rok && ok1)) + plane)),
                            rok && ok1);
            var x2 = select(0.0, f32(load_x(u32(select(0, rs + 2 * s, rok && ok2)) + plane)),
                            rok && ok2);
            var x3 = select(0.0, f32(load_x(u32(select(0, rs + 3 * s, rok && ok3)) + plane)),
                            rok && ok3);
            var x4 = select(0.0, f32(load_x(u32(select(0, rs + 4 * s, rok && ok4)) + plane)),
                            rok && ok4);
            var x5 = select(0.0, f32(load_x(u32(select(0, rs + 5 * s, rok && ok5)) + plane)),
                            rok && ok5);
            var x6 = select(0.0, f32(load_x(u32(select(0, rs + 6 * s, rok && ok6)) + plane)),
                            rok && ok6);
            var wi = wk;
            // Offset of the value entering the window (pixel 7's input).
            var col = 7 * s;
            for (var kx = ph; kx < p.kw; kx += SX) {
              let ok = rok && u32(c + col) < p.w;
              let x7 = select(0.0, f32(load_x(u32(select(0, rs + col, ok)) + plane)), ok);
              acc = tile_fma(acc, tile_weights(wi, lane), wide_weights(wi, lane),
                             vec4<f32>(x0, x1, x2, x3), vec4<f32>(x4, x5, x6, x7));
              wi += SX * p.mp;
              col += s;
              x0 = x1; x1 = x2; x2 = x3; x3 = x4; x4 = x5; x5 = x6; x6 = x7;
            }
            plane += hw;
            wk += wci;
          }
        }
      }
    }
    // The tile's 8 biases: one load per lane and broadcasts, like the weights.
    let bias = tile_bias(g * p.m + tm * 8u, lane);
    var bias_md = vec4<f32>(0.0);
    var bias_ex = vec4<f32>(0.0);
    if (TALL) {
      let b2 = tile_bias(g * p.m + tm * 8u + 8u, lane);
      bias_md = b2.lo;
      bias_ex = b2.hi;
    }
    if (WIDE) {
      bias_md = share_quad(f32(load_b(min(g * p.m + tm * 8u + 8u + (lane & 3u), p.c_out - 1u))));
    }
    if (gt.z == 1u && tn_own < tiles_n) {
      let hw_out = p.ho * p.wo;
      let out = b * p.c_out * hw_out + oy * p.wo + ox0;
      let n_px = min(p.wo - ox0, 8u);
      store_run(out, g, tm * 8u, n_px, hw_out, bias.lo, acc.lo0, acc.lo1, acc.lo2, acc.lo3,
                acc.lo4, acc.lo5, acc.lo6, acc.lo7);
      if (!HALF) {
        store_run(out, g, tm * 8u + 4u, n_px, hw_out, bias.hi, acc.hi0, acc.hi1, acc.hi2, acc.hi3,
                  acc.hi4, acc.hi5, acc.hi6, acc.hi7);
      }
      if (TALL) {
        store_run(out, g, tm * 8u + 12u, n_px, hw_out, bias_ex, acc.ex0, acc.ex1, acc.ex2, acc.ex3,
                  acc.ex4, acc.ex5, acc.ex6, acc.ex7);
      }
      if (WIDE || TALL) {
        store_run(out, g, tm * 8u + 8u, n_px, hw_out, bias_md, acc.md0, acc.md1, acc.md2, acc.md3,
                  acc.md4, acc.md5, acc.md6, acc.md7);
      }
      if (ROWS2 && oy + 1u < p.ho) {
        let out1 = out + p.wo;
        store_run(out1, g, tm * 8u, n_px, hw_out, bias.lo, acc1.lo0, acc1.lo1, acc1.lo2, acc1.lo3,
                  acc1.lo4, acc1.lo5, acc1.lo6, acc1.lo7);
        if (!HALF) {
          store_run(out1, g, tm * 8u + 4u, n_px, hw_out, bias.hi, acc1.hi0, acc1.hi1, acc1.hi2,
                    acc1.hi3, acc1.hi4, acc1.hi5, acc1.hi6, acc1.hi7);
        }
        if (TALL) {
          store_run(out1, g, tm * 8u + 12u, n_px, hw_out, bias_ex, acc1.ex0, acc1.ex1, acc1.ex2,
                    acc1.ex3, acc1.ex4, acc1.ex5, acc1.ex6, acc1.ex7);
        }
        if (WIDE || TALL) {
          store_run(out1, g, tm * 8u + 8u, n_px, hw_out, bias_md, acc1.md0, acc1.md1, acc1.md2,
                    acc1.md3, acc1.md4, acc1.md5, acc1.md6, acc1.md7);
        }
      }
    }
  }
}

// main8_row8_sg's accumulators: channels 0..3 (lo), 4..7 (hi), with WIDE or TALL 8..11 (md)
// and with TALL 12..15 (ex) of the tile, pixel j of the run in lo<j>, hi<j>, md<j>, ex<j>.
struct Tile8 {
  lo0: vec4<f32>, lo1: vec4<f32>, lo2: vec4<f32>, lo3: vec4<f32>,
  lo4: vec4<f32>, lo5: vec4<f32>, lo6: vec4<f32>, lo7: vec4<f32>,
  hi0: vec4<f32>, hi1: vec4<f32>, hi2: vec4<f32>, hi3: vec4<f32>,
  hi4: vec4<f32>, hi5: vec4<f32>, hi6: vec4<f32>, hi7: vec4<f32>,
  md0: vec4<f32>, md1: vec4<f32>, md2: vec4<f32>, md3: vec4<f32>,
  md4: vec4<f32>, md5: vec4<f32>, md6: vec4<f32>, md7: vec4<f32>,
  ex0: vec4<f32>, ex1: vec4<f32>, ex2: vec4<f32>, ex3: vec4<f32>,
  ex4: vec4<f32>, ex5: vec4<f32>, ex6: vec4<f32>, ex7: vec4<f32>,
}

// WIDE: the weights of channels 8..11 at weight offset wi (lanes 0..3 load, all broadcast).
// From uniform control flow only.
fn wide_weights(wi: u32, lane: u32) -> vec4<f32> {
  if (WIDE) { return share_quad(f32(load_w(wi + 8u + (lane & 3u)))); }
  return vec4<f32>(0.0);
}

// One tap of the tile: the weights t (and u with WIDE) on the run's pixels 0..3 (xa), 4..7 (xb).
fn tile_fma(acc: Tile8, t: TileWeights, u: vec4<f32>, xa: vec4<f32>, xb: vec4<f32>) -> Tile8 {
  var q = acc;
  q.lo0 += t.lo * xa.x; q.lo1 += t.lo * xa.y; q.lo2 += t.lo * xa.z; q.lo3 += t.lo * xa.w;
  q.lo4 += t.lo * xb.x; q.lo5 += t.lo * xb.y; q.lo6 += t.lo * xb.z; q.lo7 += t.lo * xb.w;
  if (!HALF) {
    q.hi0 += t.hi * xa.x; q.hi1 += t.hi * xa.y; q.hi2 += t.hi * xa.z; q.hi3 += t.hi * xa.w;
    q.hi4 += t.hi * xb.x; q.hi5 += t.hi * xb.y; q.hi6 += t.hi * xb.z; q.hi7 += t.hi * xb.w;
  }
  if (WIDE) {
    q.md0 += u * xa.x; q.md1 += u * xa.y; q.md2 += u * xa.z; q.md3 += u * xa.w;
    q.md4 += u * xb.x; q.md5 += u * xb.y; q.md6 += u * xb.z; q.md7 += u * xb.w;
  }
  return q;
}

// A kernel row's KW tiles of weights (tap kx at wk + kx * MP; with WIDE also channels
// 8..11 in u<kx>). From uniform control flow only.
struct RowWeights {
  t0: TileWeights, t1: TileWeights, t2: TileWeights, t3: TileWeights,
  t4: TileWeights, t5: TileWeights, t6: TileWeights,
  u0: vec4<f32>, u1: vec4<f32>, u2: vec4<f32>, u3: vec4<f32>,
  u4: vec4<f32>, u5: vec4<f32>, u6: vec4<f32>,
  x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>,
  x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>,
}

fn row_weights(wk: u32, lane: u32) -> RowWeights {
  var w = RowWeights();
  w.t0 = tile_weights(wk, lane);
  w.u0 = wide_weights(wk, lane);
  if (KW > 1u) { w.t1 = tile_weights(wk + p.mp, lane); w.u1 = wide_weights(wk + p.mp, lane); }
  if (KW > 2u) {
    w.t2 = tile_weights(wk + 2u * p.mp, lane);
    w.u2 = wide_weights(wk + 2u * p.mp, lane);
  }
  if (KW > 3u) {
    w.t3 = tile_weights(wk + 3u * p.mp, lane);
    w.u3 = wide_weights(wk + 3u * p.mp, lane);
  }
  if (KW > 4u) {
    w.t4 = tile_weights(wk + 4u * p.mp, lane);
    w.u4 = wide_weights(wk + 4u * p.mp, lane);
  }
  if (KW > 5u) {
    w.t5 = tile_weights(wk + 5u * p.mp, lane);
    w.u5 = wide_weights(wk + 5u * p.mp, lane);
  }
  if (KW > 6u) {
    w.t6 = tile_weights(wk + 6u * p.mp, lane);
    w.u6 = wide_weights(wk + 6u * p.mp, lane);
  }
  if (TALL) {
    // The second tile's channels 8..11 in u<kx>, 12..15 in x<kx>.
    var t = tile_weights(wk + 8u, lane);
    w.u0 = t.lo; w.x0 = t.hi;
    if (KW > 1u) { t = tile_weights(wk + p.mp + 8u, lane); w.u1 = t.lo; w.x1 = t.hi; }
    if (KW > 2u) { t = tile_weights(wk + 2u * p.mp + 8u, lane); w.u2 = t.lo; w.x2 = t.hi; }
    if (KW > 3u) { t = tile_weights(wk + 3u * p.mp + 8u, lane); w.u3 = t.lo; w.x3 = t.hi; }
    if (KW > 4u) { t = tile_weights(wk + 4u * p.mp + 8u, lane); w.u4 = t.lo; w.x4 = t.hi; }
    if (KW > 5u) { t = tile_weights(wk + 5u * p.mp + 8u, lane); w.u5 = t.lo; w.x5 = t.hi; }
    if (KW > 6u) { t = tile_weights(wk + 6u * p.mp + 8u, lane); w.u6 = t.lo; w.x6 = t.hi; }
  }
  return w;
}

// One row of weights per tap: 4 channels' weights of taps 0 .. 6.
struct Taps {
  w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>, w4: vec4<f32>, w5: vec4<f32>,
  w6: vec4<f32>,
}

// Pixel j's 4 channels: acc plus the KW taps' weights w on the row's values SX j .. SX j + KW -
// 1, all taps of one accumulator in a row (on CPU adapters the accumulators live in memory: one
// load and one store per kernel row rather than per tap).
fn px_taps(acc: vec4<f32>, e: Win24, w: Taps, j: u32) -> vec4<f32> {
  let i = SX * j;
  var s = acc + w.w0 * win1(e, i);
  if (KW > 1u) { s = s + w.w1 * win1(e, i + 1u); }
  if (KW > 2u) { s = s + w.w2 * win1(e, i + 2u); }
  if (KW > 3u) { s = s + w.w3 * win1(e, i + 3u); }
  if (KW > 4u) { s = s + w.w4 * win1(e, i + 4u); }
  if (KW > 5u) { s = s + w.w5 * win1(e, i + 5u); }
  if (KW > 6u) { s = s + w.w6 * win1(e, i + 6u); }
  return s;
}

// A kernel row's KW taps (unrolled) with weights w on its values e (14 with stride 1, 14 + KW
// with stride 2).
fn row_apply(acc: Tile8, e: Win24, w: RowWeights) -> Tile8 {
  var q = acc;
  let lo = Taps(w.t0.lo, w.t1.lo, w.t2.lo, w.t3.lo, w.t4.lo, w.t5.lo, w.t6.lo);
  q.lo0 = px_taps(acc.lo0, e, lo, 0u); q.lo1 = px_taps(acc.lo1, e, lo, 1u);
  q.lo2 = px_taps(acc.lo2, e, lo, 2u); q.lo3 = px_taps(acc.lo3, e, lo, 3u);
  q.lo4 = px_taps(acc.lo4, e, lo, 4u); q.lo5 = px_taps(acc.lo5, e, lo, 5u);
  q.lo6 = px_taps(acc.lo6, e, lo, 6u); q.lo7 = px_taps(acc.lo7, e, lo, 7u);
  if (!HALF) {
    let hi = Taps(w.t0.hi, w.t1.hi, w.t2.hi, w.t3.hi, w.t4.hi, w.t5.hi, w.t6.hi);
    q.hi0 = px_taps(acc.hi0, e, hi, 0u); q.hi1 = px_taps(acc.hi1, e, hi, 1u);
    q.hi2 = px_taps(acc.hi2, e, hi, 2u); q.hi3 = px_taps(acc.hi3, e, hi, 3u);
    q.hi4 = px_taps(acc.hi4, e, hi, 4u); q.hi5 = px_taps(acc.hi5, e, hi, 5u);
    q.hi6 = px_taps(acc.hi6, e, hi, 6u); q.hi7 = px_taps(acc.hi7, e, hi, 7u);
  }
  if (TALL) {
    let ex = Taps(w.x0, w.x1, w.x2, w.x3, w.x4, w.x5, w.x6);
    q.ex0 = px_taps(acc.ex0, e, ex, 0u); q.ex1 = px_taps(acc.ex1, e, ex, 1u);
    q.ex2 = px_taps(acc.ex2, e, ex, 2u); q.ex3 = px_taps(acc.ex3, e, ex, 3u);
    q.ex4 = px_taps(acc.ex4, e, ex, 4u); q.ex5 = px_taps(acc.ex5, e, ex, 5u);
    q.ex6 = px_taps(acc.ex6, e, ex, 6u); q.ex7 = px_taps(acc.ex7, e, ex, 7u);
  }
  if (WIDE || TALL) {
    let md = Taps(w.u0, w.u1, w.u2, w.u3, w.u4, w.u5, w.u6);
    q.md0 = px_taps(acc.md0, e, md, 0u); q.md1 = px_taps(acc.md1, e, md, 1u);
    q.md2 = px_taps(acc.md2, e, md, 2u); q.md3 = px_taps(acc.md3, e, md, 3u);
    q.md4 = px_taps(acc.md4, e, md, 4u); q.md5 = px_taps(acc.md5, e, md, 5u);
    q.md6 = px_taps(acc.md6, e, md, 6u); q.md7 = px_taps(acc.md7, e, md, 7u);
  }
  return q;
}

// The element of input row `row`, column c0, in the group's first channel (base: that
// channel's plane).
fn row_start(base: i32, row: i32, c0: i32) -> i32 {
  return base + row * i32(p.w) + c0;
}


// The biases of channels co .. co + 7 (those past C_out read the last), loaded once per
// subgroup and broadcast; from uniform control flow only.
fn tile_bias(co: u32, lane: u32) -> TileWeights {
  let o = tile_lane(lane);
  let x = f32(load_b(min(co + o.x, p.c_out - 1u)));
  var y = x;
  if (SUBGROUP < 8u) { y = f32(load_b(min(co + o.y, p.c_out - 1u))); }
  return share_tile(x, y);
}

// Stores channels m0 .. m0 + 3 of group g (those below its M) of the first n_px of 8 pixels of
// a row run starting at output offset `out` (channel 0), with the biases and the activation.
// With VEC_Y (W_out a multiple of 4, so runs start on 4-element boundaries and hold 4 or 8
// pixels) each channel's run is one or two 4-vector stores.
fn store_run(out: u32, g: u32, m0: u32, n_px: u32, hw_out: u32, bias: vec4<f32>, a0: vec4<f32>,
             a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>, a4: vec4<f32>, a5: vec4<f32>,
             a6: vec4<f32>, a7: vec4<f32>) {
  if (VEC_Y) {
    for (var i = 0u; i < 4u; i++) {
      if (m0 + i < p.m) {
        let o = out + (g * p.m + m0 + i) * hw_out;
        store4_y(o, activate4(vec4<f32>(a0[i], a1[i], a2[i], a3[i]) + bias[i], p.act));
        if (n_px > 4u) {
          store4_y(o + 4u, activate4(vec4<f32>(a4[i], a5[i], a6[i], a7[i]) + bias[i], p.act));
        }
      }
    }
    return;
  }
  for (var i = 0u; i < 4u; i++) {
    if (m0 + i < p.m) {
      let o = out + (g * p.m + m0 + i) * hw_out;
      store_y(o, activate(a0[i] + bias[i], p.act));
      if (n_px > 1u) { store_y(o + 1u, activate(a1[i] + bias[i], p.act)); }
      if (n_px > 2u) { store_y(o + 2u, activate(a2[i] + bias[i], p.act)); }
      if (n_px > 3u) { store_y(o + 3u, activate(a3[i] + bias[i], p.act)); }
      if (n_px > 4u) { store_y(o + 4u, activate(a4[i] + bias[i], p.act)); }
      if (n_px > 5u) { store_y(o + 5u, activate(a5[i] + bias[i], p.act)); }
      if (n_px > 6u) { store_y(o + 6u, activate(a6[i] + bias[i], p.act)); }
      if (n_px > 7u) { store_y(o + 7u, activate(a7[i] + bias[i], p.act)); }
    }
  }
}
