//! conv2d on the GPU against the CPU reference: real layer shapes and a random sweep.

mod common;

use common::{check_scaled, modes, random, rng};
use deeproots::ops::{conv2d, conv2d::ConvAlgorithm, conv2d::ConvParams, Activation, Target};
use deeproots::{reference, Tensor};
use rand::Rng;

struct Case {
    name: String,
    p: ConvParams,
    input: [usize; 4],
    bias: bool,
}

fn run_cases(test: &str, cases: &[Case]) {
    let modes = modes();
    if modes.is_empty() {
        return;
    }
    let mut rng = rng(test);
    for c in cases {
        let x = random(&mut rng, &c.input);
        let w = random(&mut rng, &c.p.weight_shape());
        let b = c.bias.then(|| random(&mut rng, &[c.p.c_out]));
        let want = reference::conv2d(&c.p, &x, &w, b.as_ref()).unwrap();
        // Errors are measured against each output's root sum of squared products: the f16
        // kernels multiply in f16, whose rounding is relative to the products, not the sum.
        let sq =
            |t: &Tensor| Tensor::new(t.shape().to_vec(), t.data().iter().map(|v| v * v).collect());
        let linear = ConvParams {
            activation: Activation::None,
            ..c.p.clone()
        };
        let b_sq = b.as_ref().map(|b| sq(b).unwrap());
        let sum_sq =
            reference::conv2d(&linear, &sq(&x).unwrap(), &sq(&w).unwrap(), b_sq.as_ref()).unwrap();
        let scale = Tensor::new(
            sum_sq.shape().to_vec(),
            sum_sq.data().iter().map(|v| v.sqrt()).collect(),
        )
        .unwrap();
        // Every kernel that can run the layer, not only the one a model would pick; the
        // subgroup kernels in every form the device can run (8 lanes and 4).
        let algorithms: Vec<_> = ConvAlgorithm::ALL
            .into_iter()
            .filter(|a| c.p.is_pointwise() || !a.is_matmul())
            .collect();
        for &a in &algorithms {
            let len = c.p.device_weight(a, &w).unwrap().len();
            assert_eq!(len, c.p.device_weight_len(a), "{} {a:?}", c.name);
        }
        for m in &modes {
            let device = deeproots::ops::target(m.gpu);
            for &a in &algorithms {
                let targets: Vec<_> = match device.subgroup {
                    // Launched as for a large GPU too, where it splits K wherever tiles are few.
                    _ if a == ConvAlgorithm::Gemm8Split => vec![
                        device,
                        Target {
                            cpu: false,
                            min_workgroups: 512,
                            ..device
                        },
                    ],
                    _ if !a.needs_subgroups() => vec![device],
                    None => vec![],
                    Some(s) => [8, 4]
                        .into_iter()
                        .filter(|&k| k <= s)
                        .map(|k| Target {
                            subgroup: Some(k),
                            ..device
                        })
                        .collect(),
                };
                for t in targets {
                    let got = conv2d::run_for(m.gpu, t, m.precision, a, &c.p, &x, &w, b.as_ref())
                        .unwrap_or_else(|e| panic!("{} {a:?}: {e}", c.name));
                    let name = format!(
                        "{}-{a:?}-sg{}-{}",
                        c.name,
                        t.subgroup.unwrap_or(0),
                        t.min_workgroups
                    );
                    check_scaled(&name, m, &got, &want, &scale);
                }
            }
        }
    }
}

fn layer(
    c_in: usize,
    c_out: usize,
    k: usize,
    pad: usize,
    stride: usize,
    groups: usize,
) -> ConvParams {
    ConvParams {
        c_in,
        c_out,
        kernel: [k, k],
        stride: [stride, stride],
        dilation: [1, 1],
        padding: [pad; 4],
        groups,
        activation: Activation::Relu,
    }
}

#[test]
fn nin_conv2a_all_group_counts() {
    let cases: Vec<Case> = [1, 2, 4, 8, 16]
        .iter()
        .map(|&g| Case {
            name: format!("nin-conv2a-g{g}"),
            p: layer(96, 192, 5, 2, 1, g),
            input: [2, 96, 16, 16],
            bias: true,
        })
        // At batch 1 the subgroup tiles put two (group, channel tile) pairs in a workgroup:
        // 3 tiles per group (g8) and a tile and a half (g16) straddle groups.
        .chain([8, 16].iter().map(|&g| Case {
            name: format!("nin-conv2a-g{g}-batch1"),
            p: layer(96, 192, 5, 2, 1, g),
            input: [1, 96, 16, 16],
            bias: true,
        }))
        .collect();
    run_cases("nin_conv2a_all_group_counts", &cases);
}

#[test]
fn resnet50_3x3_layers_up_to_64_groups() {
    let cases = vec![
        Case {
            name: "res2-g1".into(),
            p: layer(64, 64, 3, 1, 1, 1),
            input: [1, 64, 56, 56],
            bias: true,
        },
        Case {
            name: "res2-g32".into(),
            p: layer(64, 64, 3, 1, 1, 32),
            input: [1, 64, 56, 56],
            bias: true,
        },
        Case {
            name: "res2-g64-depthwise".into(),
            p: layer(64, 64, 3, 1, 1, 64),
            input: [1, 64, 56, 56],
            bias: true,
        },
        Case {
            name: "res3a-stride2-g8".into(),
            p: layer(128, 128, 3, 1, 2, 8),
            input: [1, 128, 56, 56],
            bias: false,
        },
        Case {
            name: "res4-g16".into(),
            p: layer(256, 256, 3, 1, 1, 16),
            input: [2, 256, 14, 14],
            bias: true,
        },
        Case {
            name: "res5-g1".into(),
            p: layer(512, 512, 3, 1, 1, 1),
            input: [1, 512, 7, 7],
            bias: true,
        },
        Case {
            name: "res5-g64".into(),
            p: layer(512, 512, 3, 1, 1, 64),
            input: [2, 512, 7, 7],
            bias: true,
        },
    ];
    run_cases("resnet50_3x3_layers_up_to_64_groups", &cases);
}

#[test]
fn googlenet_5x5_and_stems() {
    let cases = vec![
        Case {
            name: "inception4a-5x5".into(),
            p: layer(16, 48, 5, 2, 1, 1),
            input: [2, 16, 14, 14],
            bias: true,
        },
        Case {
            name: "inception3a-5x5-g2".into(),
            p: layer(16, 32, 5, 2, 1, 2),
            input: [1, 16, 28, 28],
            bias: true,
        },
        // GoogLeNet root-16's grouped 3x3 layers with 12 and 20 outputs per group: full
        // 8-channel tiles and a last tile of 4 (launched as a half tile: 64 or more pixel
        // tiles).
        Case {
            name: "googlenet-root16-conv2-3x3-g16".into(),
            p: layer(64, 192, 3, 1, 1, 16),
            input: [2, 64, 28, 29],
            bias: true,
        },
        Case {
            name: "googlenet-root16-4e-3x3-g16".into(),
            p: layer(160, 320, 3, 1, 1, 16),
            input: [3, 160, 15, 15],
            bias: false,
        },
        Case {
            name: "resnet-conv1-7x7-s2".into(),
            p: layer(3, 64, 7, 3, 2, 1),
            input: [1, 3, 64, 64],
            bias: false,
        },
        Case {
            name: "nin-conv1a-5x5".into(),
            p: layer(3, 192, 5, 2, 1, 1),
            input: [2, 3, 32, 32],
            bias: true,
        },
    ];
    run_cases("googlenet_5x5_and_stems", &cases);
}

#[test]
fn pointwise_embedding_layers() {
    let mut strided = layer(256, 512, 1, 0, 2, 1);
    strided.activation = Activation::None;
    let cases = vec![
        Case {
            name: "nin-conv1b-1x1".into(),
            p: layer(192, 160, 1, 0, 1, 1),
            input: [2, 192, 32, 32],
            bias: true,
        },
        Case {
            name: "nin-conv3c-1x1".into(),
            p: layer(192, 10, 1, 0, 1, 1),
            input: [3, 192, 8, 8],
            bias: true,
        },
        Case {
            name: "1x1-g4".into(),
            p: layer(64, 96, 1, 0, 1, 4),
            input: [2, 64, 13, 13],
            bias: true,
        },
        Case {
            name: "1x1-g8-8x8".into(),
            p: layer(40, 72, 1, 0, 1, 8),
            input: [2, 40, 8, 8],
            bias: true,
        },
        Case {
            name: "1x1-odd-7x7".into(),
            p: layer(33, 17, 1, 0, 1, 1),
            input: [3, 33, 7, 7],
            bias: false,
        },
        // Batches folded into the columns (maps whose columns leave a workgroup row part idle):
        // 4-vectors from different images in one invocation, the batch's last one clamped.
        Case {
            name: "googlenet-4d-1x1-14x14-batches".into(),
            p: layer(64, 112, 1, 0, 1, 1),
            input: [3, 64, 14, 14],
            bias: true,
        },
        Case {
            name: "1x1-g2-28x28-batches".into(),
            p: layer(34, 48, 1, 0, 1, 2),
            input: [2, 34, 28, 28],
            bias: true,
        },
        Case {
            name: "1x1-odd-k-12x12-batches".into(),
            p: layer(37, 40, 1, 0, 1, 1),
            input: [5, 37, 12, 12],
            bias: false,
        },
        // Pixels that are not 4-vectors, outputs in several blocks of 64 (the roles-swapped
        // matmul's default), the batch folded across images mid-tile, an odd K.
        Case {
            name: "googlenet-1x1-15x15-batches".into(),
            p: layer(67, 128, 1, 0, 1, 1),
            input: [3, 67, 15, 15],
            bias: true,
        },
        Case {
            name: "1x1-g2-7x7-72".into(),
            p: layer(18, 144, 1, 0, 1, 2),
            input: [2, 18, 7, 7],
            bias: true,
        },
        Case {
            name: "resnet-downsample-1x1-s2".into(),
            p: strided,
            input: [1, 256, 28, 28],
            bias: false,
        },
    ];
    run_cases("pointwise_embedding_layers", &cases);
}

#[test]
fn depthwise_asymmetric_and_odd_shapes() {
    // TensorFlow SAME for a 3x3 stride-2 conv on an even input pads 0 before and 1 after.
    let mut same = layer(32, 32, 3, 0, 2, 32);
    same.padding = [0, 0, 1, 1];
    same.activation = Activation::Relu6;
    let mut multiplier = layer(16, 48, 3, 1, 1, 16);
    multiplier.activation = Activation::None;
    let mut same5 = layer(40, 40, 5, 0, 2, 40);
    same5.padding = [1, 1, 2, 2];
    let mut nonsquare = layer(8, 12, 1, 0, 1, 2);
    nonsquare.kernel = [1, 7];
    nonsquare.padding = [0, 3, 0, 3];
    let mut dilated = layer(12, 12, 3, 2, 1, 3);
    dilated.dilation = [2, 2];
    let cases = vec![
        Case {
            name: "tf-same-dw3x3-s2".into(),
            p: same,
            input: [2, 32, 14, 14],
            bias: true,
        },
        Case {
            name: "dw-multiplier-3".into(),
            p: multiplier,
            input: [2, 16, 13, 13],
            bias: true,
        },
        Case {
            name: "tf-same-dw5x5-s2".into(),
            p: same5,
            input: [1, 40, 13, 13],
            bias: true,
        },
        Case {
            name: "1x7".into(),
            p: nonsquare,
            input: [3, 8, 7, 9],
            bias: true,
        },
        Case {
            name: "dilated-3x3-g3".into(),
            p: dilated,
            input: [2, 12, 13, 7],
            bias: true,
        },
    ];
    run_cases("depthwise_asymmetric_and_odd_shapes", &cases);
}

#[test]
fn random_sweep() {
    let mut rng = rng("random_sweep/configs");
    let acts = [Activation::None, Activation::Relu, Activation::Relu6];
    let mut cases = Vec::new();
    while cases.len() < 48 {
        let groups = rng.random_range(1..=4usize);
        let p = ConvParams {
            c_in: groups * rng.random_range(1..=5usize),
            c_out: groups * rng.random_range(1..=5usize),
            kernel: [rng.random_range(1..=7), rng.random_range(1..=7)],
            stride: [rng.random_range(1..=3), rng.random_range(1..=3)],
            dilation: [rng.random_range(1..=2), rng.random_range(1..=2)],
            padding: [0; 4].map(|_: usize| rng.random_range(0..=3)),
            groups,
            activation: acts[rng.random_range(0..3)],
        };
        let input = [
            rng.random_range(1..=3),
            p.c_in,
            rng.random_range(1..=12),
            rng.random_range(1..=12),
        ];
        if p.out_dims(&input).is_err() {
            continue;
        }
        cases.push(Case {
            name: format!("sweep-{p:?}-{input:?}"),
            p,
            input,
            bias: rng.random_bool(0.5),
        });
    }
    run_cases("random_sweep", &cases);
}

#[test]
fn row_reuse_paths_and_edges() {
    // Widths not divisible by 4: tiles straddle row ends and images (per-pixel fallback)
    // beside tiles in one row (row path), with padding on both sides.
    let mut odd = layer(6, 16, 3, 1, 1, 1);
    odd.padding = [1, 2, 0, 1];
    let mut wide = layer(4, 24, 7, 3, 1, 2);
    wide.kernel = [2, 7];
    wide.padding = [0, 3, 1, 3];
    // Dilation along x and stride along x: the whole layer falls back.
    let mut dilated = layer(8, 16, 3, 2, 1, 1);
    dilated.dilation = [1, 2];
    let mut strided = layer(8, 16, 5, 2, 1, 2);
    strided.stride = [1, 2];
    // Wider than 7 and the narrowest row window.
    let mut wide9 = layer(5, 8, 3, 1, 1, 1);
    wide9.kernel = [3, 9];
    wide9.padding = [1, 4, 1, 2];
    let mut narrow = layer(4, 9, 1, 0, 1, 1);
    narrow.kernel = [1, 2];
    narrow.padding = [0, 1, 0, 0];
    let cases = vec![
        Case {
            name: "row-nin-conv1a-5x5".into(),
            p: layer(3, 192, 5, 2, 1, 1),
            input: [2, 3, 32, 32],
            bias: true,
        },
        Case {
            name: "row-width13-pad".into(),
            p: odd,
            input: [2, 6, 9, 13],
            bias: true,
        },
        Case {
            name: "row-2x7-g2-width11".into(),
            p: wide,
            input: [3, 4, 5, 11],
            bias: false,
        },
        Case {
            name: "row-dilated-x2".into(),
            p: dilated,
            input: [2, 8, 10, 13],
            bias: true,
        },
        Case {
            name: "row-stride-x2".into(),
            p: strided,
            input: [2, 8, 11, 16],
            bias: true,
        },
        Case {
            name: "row-3x9-width12".into(),
            p: wide9,
            input: [2, 5, 6, 12],
            bias: true,
        },
        Case {
            name: "row-1x2-width8".into(),
            p: narrow,
            input: [1, 4, 3, 8],
            bias: false,
        },
    ];
    // Input rows read as 4-vectors (stride 1, width a multiple of 4) from each of the four
    // offsets a left padding gives, up to the widest window they take (7).
    let vec_rows = (0..4).flat_map(|pad| {
        [3, 7].map(|k| Case {
            name: format!("row-vec-{k}x{k}-pad{pad}-width20"),
            p: layer(6, 16, k, pad, 1, 2),
            input: [2, 6, 9, 20],
            bias: true,
        })
    });
    // Groups whose last 8-channel tile holds 1..4 channels: 9 and 12 outputs run one launch
    // of 12-channel tiles, 20 a launch of full tiles and one of 12-channel tiles after them.
    let short_tiles = [9, 12, 20].map(|m| Case {
        name: format!("row-{m}-outputs-per-group"),
        p: layer(8, 2 * m, 3, 1, 1, 2),
        input: [2, 8, 7, 12],
        bias: true,
    });
    // Groups of 1, 2 and 3 outputs (the direct row kernel, alone and in channel pairs) with
    // rows read as 4-vectors: two output rows per invocation where stride and dilation along y
    // are 1 (odd H_out leaves the last invocation one row), else one; padding of 0-3 rows
    // above and below, and a kernel taller than wide and wider than tall.
    let direct_rows = [
        ("dw-3x3-odd-rows", layer(4, 4, 3, 1, 1, 4), [2, 4, 7, 12]),
        ("pairs-3x3", layer(8, 8, 3, 1, 1, 4), [2, 8, 9, 16]),
        ("triples-3x3", layer(6, 6, 3, 1, 1, 2), [1, 6, 6, 8]),
        (
            "dw-5x2-pad",
            {
                let mut p = layer(3, 3, 1, 0, 1, 3);
                p.kernel = [5, 2];
                p.padding = [3, 1, 0, 2];
                p
            },
            [2, 3, 6, 8],
        ),
        (
            "pairs-2x7-pad",
            {
                let mut p = layer(4, 4, 1, 0, 1, 2);
                p.kernel = [2, 7];
                p.padding = [0, 2, 2, 3];
                p
            },
            [1, 4, 5, 12],
        ),
        (
            "dw-stride-y2",
            {
                let mut p = layer(4, 4, 3, 1, 1, 4);
                p.stride = [2, 1];
                p
            },
            [2, 4, 9, 8],
        ),
        (
            "pairs-dilation-y2",
            {
                let mut p = layer(4, 4, 3, 2, 1, 2);
                p.dilation = [2, 1];
                p.padding = [2, 1, 2, 1];
                p
            },
            [1, 4, 8, 8],
        ),
    ]
    .map(|(name, p, input)| Case {
        name: format!("row-direct-{name}"),
        p,
        input,
        bias: true,
    });
    let cases: Vec<Case> = cases
        .into_iter()
        .chain(vec_rows)
        .chain(short_tiles)
        .chain(direct_rows)
        .collect();
    run_cases("row_reuse_paths_and_edges", &cases);
}

#[test]
fn stride2_row_windows() {
    // Stride 2 along x with kw <= 7: kernel rows read as 14 + kw values at once, as 4-vectors
    // realigned by (-pad_left) mod 4 where W is a multiple of 4, else value by value; runs of 8
    // output pixels and short last runs, edges masked on both sides.
    let with = |k: [usize; 2], padding: [usize; 4], groups: usize| {
        let mut p = layer(groups * 2, groups * 8, 1, 0, 2, groups);
        p.kernel = k;
        p.padding = padding;
        p
    };
    let cases = [
        (
            "7x7-pad3-odd-width",
            layer(3, 64, 7, 3, 2, 1),
            [1, 3, 30, 37],
        ),
        (
            "3x3-pad1-g8-width34",
            layer(16, 64, 3, 1, 2, 8),
            [2, 16, 17, 34],
        ),
        ("5x5-pad2-width40", with([5, 5], [2; 4], 1), [1, 2, 11, 40]),
        ("3x3-pad0-width36", with([3, 3], [0; 4], 2), [2, 4, 9, 36]),
        ("1x1-width28", with([1, 1], [0; 4], 1), [1, 2, 6, 28]),
        (
            "2x6-asymmetric-width32",
            with([2, 6], [0, 1, 1, 3], 1),
            [1, 2, 7, 32],
        ),
        ("7x7-pad1-width44", with([7, 7], [1; 4], 1), [1, 2, 9, 44]),
    ];
    let cases: Vec<Case> = cases
        .into_iter()
        .map(|(name, p, input)| Case {
            name: name.into(),
            p,
            input,
            bias: true,
        })
        .collect();
    run_cases("stride2_row_windows", &cases);
}

#[test]
fn the_split_kernel_splits_k_only_where_a_large_gpu_would_idle() {
    let gpu = Target {
        cpu: false,
        min_workgroups: 512,
        subgroup: None,
        subgroup_max: 32,
    };
    let cpu = Target {
        cpu: true,
        min_workgroups: 0,
        ..gpu
    };
    let split = ConvAlgorithm::Gemm8Split;
    // NIN conv3a (192 -> 192, 3x3 on 8x8): 24 x 512 tiles at batch 32, 24 x 16 at batch 1.
    let conv3a = layer(192, 192, 3, 1, 1, 1);
    assert_eq!(conv3a.k_slices(32 * 64, gpu), 4);
    assert_eq!(conv3a.launched(split, 32, 64, gpu), ConvAlgorithm::Gemm8K4);
    assert_eq!(conv3a.launched(split, 1, 64, gpu), ConvAlgorithm::Gemm8K8);
    assert_eq!(conv3a.launched(split, 1, 64, cpu), ConvAlgorithm::Gemm8);
    // Enough tiles: no split; pointwise layers then run the 8-channel matmul.
    let stem = layer(3, 64, 7, 3, 2, 1);
    assert_eq!(
        stem.launched(split, 16, 112 * 112, gpu),
        ConvAlgorithm::Gemm8
    );
    let pointwise = layer(256, 1024, 1, 0, 1, 1);
    assert_eq!(
        pointwise.launched(split, 16, 28 * 28, gpu),
        ConvAlgorithm::Matmul8
    );
    assert_eq!(
        pointwise.launched(split, 16, 7 * 7, gpu),
        ConvAlgorithm::Gemm8K2
    );
    // Never more slices than input channels per group, nor fewer than 32 of K per slice.
    let few_channels = layer(48, 128, 5, 2, 1, 16);
    assert_eq!(few_channels.k_slices(16 * 64, gpu), 2);
    let short_k = layer(64, 64, 1, 0, 1, 1);
    assert_eq!(short_k.k_slices(4, gpu), 2);
    // Other kernels launch as themselves; the GPU rule picks the shared-memory tiles, which
    // fall back to the split kernel where they do not fit.
    assert_eq!(
        conv3a.launched(ConvAlgorithm::Gemm, 1, 64, gpu),
        ConvAlgorithm::Gemm
    );
    let tile = ConvAlgorithm::Tile;
    assert_eq!(conv3a.algorithm(gpu), tile);
    assert_eq!(pointwise.algorithm(gpu), tile);
    assert_eq!(conv3a.algorithm(cpu), ConvAlgorithm::Gemm8);
    // 192 outputs on 8x8: 3 x 32 64-channel tiles at batch 32, too few: 6 x 64 32 x 32 tiles
    // with K split; 3 x 128 at batch 128.
    assert_eq!(conv3a.launched(tile, 32, 64, gpu), ConvAlgorithm::Tile32K4);
    assert_eq!(conv3a.launched(tile, 128, 64, gpu), ConvAlgorithm::Tile64);
    assert_eq!(conv3a.launched(tile, 1, 64, gpu), ConvAlgorithm::Gemm8K8);
    assert_eq!(conv3a.launched(tile, 32, 64, cpu), ConvAlgorithm::Gemm8);
    // 1024 outputs: 128-channel tiles, 8 x 196 of them at batch 16 of 28x28.
    assert_eq!(
        pointwise.launched(tile, 16, 28 * 28, gpu),
        ConvAlgorithm::Tile128
    );
    assert_eq!(
        pointwise.launched(tile, 16, 7 * 7, gpu),
        ConvAlgorithm::Tile64
    );
    // Groups of 24 outputs take the narrow tiles (NIN root-8 conv2a: 8 x 64 workgroups at
    // batch 32, 8 x 2 at batch 1).
    let root8 = layer(96, 192, 5, 2, 1, 8);
    assert_eq!(root8.launched(tile, 32, 256, gpu), ConvAlgorithm::Tile32);
    assert_eq!(
        root8.launched(tile, 1, 256, gpu),
        root8.launched(split, 1, 256, gpu)
    );
    // 8 outputs per group fill no tile.
    assert_eq!(
        few_channels.launched(tile, 16, 64, gpu),
        few_channels.launched(split, 16, 64, gpu)
    );
    // Fewer than 4 outputs per group: direct row runs, of 8 on CPU adapters.
    assert_eq!(
        layer(64, 64, 3, 1, 1, 64).algorithm(gpu),
        ConvAlgorithm::DirectRow
    );
    assert_eq!(
        layer(128, 128, 3, 1, 1, 64).algorithm(cpu),
        ConvAlgorithm::DirectRow8
    );
    // Three per group (GoogLeNet's conv2 at 64 groups): the row-reuse GEMM where subgroups
    // share its weights and the window is wider than 1; else still the direct row runs.
    let three = layer(64, 192, 3, 1, 1, 64);
    let cpu_sg = Target {
        subgroup: Some(8),
        ..cpu
    };
    assert_eq!(three.algorithm(cpu), ConvAlgorithm::DirectRow8);
    assert_eq!(three.algorithm(cpu_sg), ConvAlgorithm::Gemm8Row8Sg);
    let mut column = three.clone();
    column.kernel = [3, 1];
    column.padding = [1, 0, 1, 0];
    assert_eq!(column.algorithm(cpu_sg), ConvAlgorithm::DirectRow8);
    assert_eq!(
        layer(128, 128, 3, 1, 1, 64).algorithm(cpu_sg),
        ConvAlgorithm::DirectRow8
    );
}

#[test]
fn every_algorithm_has_a_distinct_name_and_consistent_facts() {
    let mut names = std::collections::HashSet::new();
    for a in ConvAlgorithm::ALL {
        assert!(names.insert(a.name()), "{a:?}: name {} repeated", a.name());
        assert_eq!(ConvAlgorithm::parse(a.name()), Some(a));
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            format!("\"{}\"", a.name())
        );
        // The shared-memory tiles run on GPUs only and read weights repacked in 8-channel
        // rows (their A loads are 4-vectors of MP = M rounded up to 8).
        if a.shared_tile().is_some() || a == ConvAlgorithm::Tile {
            assert!(a.suits(false) && !a.suits(true), "{a:?}");
            assert_eq!(a.tile_rows(), Some(8), "{a:?}");
        }
        let plain = a.without_subgroups();
        assert!(!plain.needs_subgroups(), "{a:?} -> {plain:?}");
        assert_eq!(plain.is_matmul(), a.is_matmul(), "{a:?} -> {plain:?}");
        assert_eq!(plain == a, !a.needs_subgroups(), "{a:?} -> {plain:?}");
    }
    assert_eq!(ConvAlgorithm::parse("no-such-kernel"), None);
    // The rule picks a candidate on every kind of device: no CPU-only kernel on a GPU, no
    // subgroup kernel without subgroups, no matmul for a kxk layer.
    let gpu = Target {
        cpu: false,
        min_workgroups: 512,
        subgroup: Some(8),
        subgroup_max: 32,
    };
    for t in [
        gpu,
        Target {
            subgroup: None,
            ..gpu
        },
        Target { cpu: true, ..gpu },
        Target {
            cpu: true,
            subgroup: None,
            ..gpu
        },
    ] {
        for p in [
            layer(192, 192, 1, 0, 1, 1),
            layer(192, 160, 1, 0, 1, 1),
            layer(192, 24, 1, 0, 1, 1),
            layer(96, 192, 5, 2, 1, 8),
            layer(3, 64, 7, 3, 2, 1),
            layer(64, 64, 3, 1, 1, 64),
            layer(64, 128, 3, 1, 1, 32),
        ] {
            let chosen = p.algorithm(t);
            assert!(p.candidates(t).contains(&chosen), "{p:?} {t:?}: {chosen:?}");
            assert!(chosen.suits(t.cpu), "{p:?} {t:?}: {chosen:?}");
        }
    }
}

#[test]
fn the_subgroup_matmul_narrows_its_tiles_where_a_cpu_would_idle() {
    let auto = ConvAlgorithm::MatmulSg;
    let cpu = Target {
        cpu: true,
        min_workgroups: 0,
        subgroup: Some(8),
        subgroup_max: 8,
    };
    // GoogLeNet at batch 1: 28 x 28, 15 x 15 and 8 x 8 maps.
    let launched =
        |c_in, c_out, n_pix| layer(c_in, c_out, 1, 0, 1, 1).launched(auto, 1, n_pix, cpu);
    assert_eq!(launched(192, 64, 784), ConvAlgorithm::Matmul32x8Sg);
    assert_eq!(launched(192, 16, 784), ConvAlgorithm::Matmul16x8Sg);
    assert_eq!(launched(480, 96, 225), ConvAlgorithm::Matmul16x8Sg);
    // Maps whose pixels are not 4-vectors: the roles swapped where a group's outputs fill
    // blocks of 64 to at least 7/8, at every batch.
    assert_eq!(launched(480, 192, 225), ConvAlgorithm::MatmulColsSg);
    assert_eq!(launched(512, 64, 225), ConvAlgorithm::MatmulColsSg);
    assert_eq!(
        layer(512, 64, 1, 0, 1, 1).launched(auto, 32, 225, cpu),
        ConvAlgorithm::MatmulColsSg
    );
    assert_eq!(launched(832, 112, 49), ConvAlgorithm::MatmulColsSg);
    assert_eq!(launched(832, 160, 225), ConvAlgorithm::Matmul32x8Sg);
    assert_eq!(launched(192, 192, 784), ConvAlgorithm::Matmul32x8Sg);
    assert_eq!(launched(528, 32, 225), ConvAlgorithm::Matmul8x8Sg);
    assert_eq!(launched(832, 160, 64), ConvAlgorithm::Matmul8x8Sg);
    assert_eq!(launched(832, 48, 64), ConvAlgorithm::Matmul8Sg);
    // Taller tiles also where they do not divide the outputs per group, where the rows they
    // compute past them cost less than what they save (lavapipe: 112 outputs, 32 rows 1.25x
    // faster than 16; 48 outputs, 16 rows 1.07x faster than 32).
    assert_eq!(launched(512, 112, 32 * 196), ConvAlgorithm::Matmul32x8Sg);
    assert_eq!(launched(512, 24, 32 * 225), ConvAlgorithm::Matmul32x8Sg);
    assert_eq!(launched(512, 48, 32 * 225), ConvAlgorithm::Matmul16x8Sg);
    // Large batches keep the widest tiles.
    assert_eq!(launched(192, 160, 32 * 1024), ConvAlgorithm::Matmul32x8Sg);
    for c_out in [16, 24, 48, 64, 112, 160] {
        let p = layer(64, c_out, 1, 0, 1, 1);
        let w = Tensor::new(
            p.weight_shape(),
            (0..64 * c_out).map(|i| i as f32).collect(),
        )
        .unwrap();
        let packed = p.device_weight(auto, &w).unwrap();
        // Every fixed matmul, and the row tiles where the matmul would idle (batch 32 of 8x8).
        for (batch, pixels) in [(1, 1), (1, 64), (1, 225), (1, 784), (32, 1024), (32, 64)] {
            let fixed = p.launched(auto, batch, pixels, cpu);
            assert_eq!(
                p.device_weight(fixed, &w).unwrap(),
                packed,
                "{c_out} outputs: {fixed:?} reads another layout"
            );
        }
    }
    assert_eq!(layer(192, 64, 1, 0, 1, 1).algorithm(cpu), auto);
    // NIN's last 1x1 layer (10 outputs on 8x8): one image per workgroup would keep 16 of its
    // 64 invocations busy; the row tiles run instead (over the whole batch), at every batch.
    let conv3c = layer(192, 10, 1, 0, 1, 1);
    assert!(conv3c.matmul_idles(64, cpu));
    assert_eq!(
        conv3c.launched(auto, 32, 64, cpu),
        ConvAlgorithm::Gemm8Row8Sg
    );
    assert_eq!(
        conv3c.launched(auto, 1, 64, cpu),
        ConvAlgorithm::Gemm8Row8Sg
    );
    // GoogLeNet's 1x1 layers on 7x7 at batch 16 fill theirs.
    assert!(!layer(832, 384, 1, 0, 1, 1).matmul_idles(49, cpu));
    assert!(!layer(832, 48, 1, 0, 1, 1).matmul_idles(49, cpu));
}
