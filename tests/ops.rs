//! Every op other than conv2d on the GPU against the CPU reference, and the refusals.

mod common;

use common::{check, gpu, modes, random, rng};
use deeproots::ops::{
    add, batch_norm, batch_norm::BatchNorm, concat, conv2d, conv2d::ConvParams, global_avg_pool,
    linear, linear::LinearKernel, linear::LinearParams, pool, pool::PoolKind, pool::PoolParams,
    softmax, Activation,
};
use deeproots::{reference, tensor::rel_l2, Error, Precision, Tensor};
use rand::Rng;

fn pool_params(kind: PoolKind, k: usize, s: usize, pad: [usize; 4], ceil: bool) -> PoolParams {
    PoolParams {
        kind,
        kernel: [k, k],
        stride: [s, s],
        padding: pad,
        ceil_mode: ceil,
    }
}

#[test]
fn pools_at_real_and_random_shapes() {
    let mut rng = rng("pools_at_real_and_random_shapes");
    let avg = |c| PoolKind::Avg {
        count_include_pad: c,
    };
    let mut cases = vec![
        (
            "nin-pool1-max-3s2-ceil",
            pool_params(PoolKind::Max, 3, 2, [0; 4], true),
            [2, 96, 32, 32],
        ),
        (
            "nin-pool2-avg-3s2-ceil",
            pool_params(avg(false), 3, 2, [0; 4], true),
            [2, 192, 16, 16],
        ),
        (
            "resnet-maxpool-3s2p1",
            pool_params(PoolKind::Max, 3, 2, [1; 4], false),
            [1, 64, 112, 112],
        ),
        (
            "avg-pad-counted",
            pool_params(avg(true), 3, 1, [1; 4], false),
            [2, 8, 13, 13],
        ),
        (
            "avg-pad-not-counted",
            pool_params(avg(false), 3, 1, [1; 4], false),
            [2, 8, 13, 13],
        ),
        (
            "avg-asymmetric-ceil",
            pool_params(avg(true), 3, 2, [0, 1, 2, 0], true),
            [1, 5, 7, 8],
        ),
        (
            "googlenet-max-3s2-ceil",
            pool_params(PoolKind::Max, 3, 2, [0; 4], true),
            [1, 192, 56, 56],
        ),
        // Stride 1 along y: 4 output rows per invocation (H_out 28, 14 and 7: the last band
        // whole, whole, short), 4-vector stores where W_out is a multiple of 4.
        (
            "googlenet-inception-max-3s1p1-28",
            pool_params(PoolKind::Max, 3, 1, [1; 4], false),
            [2, 8, 28, 28],
        ),
        (
            "googlenet-inception-max-3s1p1-14",
            pool_params(PoolKind::Max, 3, 1, [1; 4], false),
            [2, 8, 14, 14],
        ),
        (
            "avg-3s1p1-7-counted",
            pool_params(avg(true), 3, 1, [1; 4], false),
            [2, 8, 7, 7],
        ),
        // Rows read as 4-vectors (W a multiple of 4, left padding 0 or 1): non-square maps, and one
        // 4 wide whose second 4-vector lies past the row.
        (
            "avg-3s1p1-4-vector-rows",
            pool_params(avg(false), 3, 1, [1; 4], false),
            [2, 3, 12, 16],
        ),
        (
            "max-3s2-ceil-4-wide",
            pool_params(PoolKind::Max, 3, 2, [0; 4], true),
            [1, 3, 5, 4],
        ),
        (
            "max-3s1p0-4-vector-rows",
            pool_params(PoolKind::Max, 3, 1, [0; 4], true),
            [1, 3, 9, 12],
        ),
        (
            "avg-3s2p1-4-vector-rows",
            pool_params(avg(true), 3, 2, [1; 4], true),
            [2, 3, 10, 20],
        ),
    ]
    .into_iter()
    .map(|(n, p, s)| (n.to_string(), p, s))
    .collect::<Vec<_>>();
    while cases.len() < 40 {
        let k = rng.random_range(1..=5usize);
        let kind = match rng.random_range(0..3) {
            0 => PoolKind::Max,
            1 => avg(true),
            _ => avg(false),
        };
        let mut p = pool_params(
            kind,
            k,
            rng.random_range(1..=3),
            [0; 4],
            rng.random_bool(0.5),
        );
        p.kernel[1] = rng.random_range(1..=5);
        p.padding = [
            rng.random_range(0..p.kernel[0]),
            rng.random_range(0..p.kernel[1]),
            rng.random_range(0..p.kernel[0]),
            rng.random_range(0..p.kernel[1]),
        ];
        let shape = [
            rng.random_range(1..=2),
            rng.random_range(1..=4),
            rng.random_range(1..=11),
            rng.random_range(1..=11),
        ];
        if p.out_dims(&shape).is_ok() {
            cases.push((format!("pool-sweep-{p:?}-{shape:?}"), p, shape));
        }
    }
    for (name, p, shape) in &cases {
        let x = random(&mut rng, shape);
        let want = reference::pool(p, &x).unwrap();
        for m in &modes() {
            check(
                name,
                m,
                &pool::run(m.gpu, m.precision, p, &x).unwrap(),
                &want,
            );
        }
    }
}

#[test]
fn global_avg_pool_add_concat_softmax() {
    let mut rng = rng("global_avg_pool_add_concat_softmax");
    for m in &modes() {
        for shape in [[2, 1024, 7, 7], [3, 10, 8, 8], [1, 3, 1, 1]] {
            let x = random(&mut rng, &shape);
            let got = global_avg_pool::run(m.gpu, m.precision, &x).unwrap();
            check(
                "global_avg_pool",
                m,
                &got,
                &reference::global_avg_pool(&x).unwrap(),
            );
        }
        // Four elements per invocation: sizes with 0-3 left over for the last.
        for (act, shape) in [
            (Activation::None, [2, 256, 14, 14]),
            (Activation::Relu, [2, 256, 14, 14]),
            (Activation::Relu, [1, 3, 5, 7]),
            (Activation::None, [1, 2, 3, 1]),
            (Activation::Relu6, [1, 1, 1, 3]),
            (Activation::None, [1, 1, 1, 1]),
        ] {
            let a = random(&mut rng, &shape);
            let b = random(&mut rng, &shape);
            let got = add::run(m.gpu, m.precision, act, &a, &b).unwrap();
            check("add", m, &got, &reference::add(&a, &b, act).unwrap());
        }
        let parts: Vec<Tensor> = [64, 128, 32, 7]
            .iter()
            .map(|&c| random(&mut rng, &[2, c, 13, 13]))
            .collect();
        let refs: Vec<&Tensor> = parts.iter().collect();
        let got = concat::run(m.gpu, m.precision, &refs).unwrap();
        check("concat", m, &got, &reference::concat(&refs).unwrap());
        for (shape, scale) in [
            (vec![4, 1000], 1.0),
            (vec![2, 10, 3, 3], 1.0),
            (vec![3, 10], 60.0),
        ] {
            let mut x = random(&mut rng, &shape);
            x.data_mut().iter_mut().for_each(|v| *v *= scale);
            // Large logits stored as f16 move by up to 1/64: that is the storage, not the
            // kernel, so the reference gets the same rounded logits.
            if m.precision == Precision::F16 {
                x.data_mut()
                    .iter_mut()
                    .for_each(|v| *v = half::f16::from_f32(*v).to_f32());
            }
            let got = softmax::run(m.gpu, m.precision, &x).unwrap();
            check("softmax", m, &got, &reference::softmax(&x).unwrap());
        }
    }
}

#[test]
fn linear_layers() {
    let mut rng = rng("linear_layers");
    let kernels = [
        LinearKernel::Rows,
        LinearKernel::Rows4,
        LinearKernel::RowsSplit,
        LinearKernel::RowsSg,
        LinearKernel::Matmul,
    ];
    for (n, i, o, act) in [
        (4, 1024, 1000, Activation::None),
        (16, 1024, 1000, Activation::None),
        (9, 36, 129, Activation::Relu),
        (1, 4096, 1000, Activation::None),
        (3, 10, 7, Activation::Relu),
        (1, 1280, 1000, Activation::None),
        (33, 65, 31, Activation::Relu6),
        (2, 3, 130, Activation::Relu),
        (6, 12, 70, Activation::None),
    ] {
        let p = LinearParams {
            in_features: i,
            out_features: o,
            activation: act,
        };
        let x = random(&mut rng, &[n, i]);
        let w = random(&mut rng, &[o, i]);
        let b = random(&mut rng, &[o]);
        let want = reference::linear(&p, &x, &w, Some(&b)).unwrap();
        for m in &modes() {
            let target = deeproots::ops::target(m.gpu);
            for k in kernels {
                let run = |t| linear::run_with(m.gpu, m.precision, k, t, &p, &x, &w, Some(&b));
                if k == LinearKernel::RowsSg {
                    if target.subgroup.is_none() || i % 4 != 0 {
                        // Refused clearly, never run with what it needs missing.
                        let e = run(target).unwrap_err().to_string();
                        assert!(e.contains("rows-sg"), "{e}");
                        continue;
                    }
                    // The 4-lane form (items 4 .. 7 from a second load) runs on any subgroups
                    // of 4 or more lanes.
                    let four = deeproots::ops::Target {
                        subgroup: Some(4),
                        ..target
                    };
                    check(
                        &format!("linear {k:?}/4 {n}x{i}->{o}"),
                        m,
                        &run(four).unwrap(),
                        &want,
                    );
                }
                check(
                    &format!("linear {k:?} {n}x{i}->{o}"),
                    m,
                    &run(target).unwrap(),
                    &want,
                );
            }
        }
    }
    // A [N, C, 1, 1] input (after global pooling) is flattened implicitly.
    let p = LinearParams {
        in_features: 64,
        out_features: 10,
        activation: Activation::None,
    };
    let x = random(&mut rng, &[2, 64, 1, 1]);
    let w = random(&mut rng, &[10, 64]);
    let want = reference::linear(&p, &x, &w, None).unwrap();
    for m in &modes() {
        check(
            "linear",
            m,
            &linear::run(m.gpu, m.precision, &p, &x, &w, None).unwrap(),
            &want,
        );
    }
    let f = reference::flatten(&x).unwrap();
    assert_eq!(f.shape(), [2, 64]);
    assert_eq!(f.data(), x.data());
}

fn random_bn(rng: &mut rand::rngs::SmallRng, c: usize) -> BatchNorm {
    let mut v = |lo: f32, hi: f32| {
        (0..c)
            .map(|_| rng.random_range(lo..hi))
            .collect::<Vec<f32>>()
    };
    BatchNorm {
        gamma: v(0.5, 1.5),
        beta: v(-0.5, 0.5),
        mean: v(-0.3, 0.3),
        var: v(0.2, 2.0),
        eps: 1e-3,
    }
}

#[test]
fn batch_norm_kernel_and_folding() {
    let mut rng = rng("batch_norm_kernel_and_folding");
    let bn = random_bn(&mut rng, 48);
    let x = random(&mut rng, &[2, 48, 9, 9]);
    let want = reference::batch_norm(&bn, &x, Activation::Relu).unwrap();
    for m in &modes() {
        check(
            "batch_norm",
            m,
            &batch_norm::run(m.gpu, m.precision, &bn, Activation::Relu, &x).unwrap(),
            &want,
        );
    }
    // conv -> bn -> relu equals the folded conv with the relu fused.
    let mut p = ConvParams::new(16, 48, 3);
    p.padding = [1; 4];
    p.groups = 4;
    let xin = random(&mut rng, &[2, 16, 9, 9]);
    let w = random(&mut rng, &p.weight_shape());
    let b = random(&mut rng, &[48]);
    let conv = reference::conv2d(&p, &xin, &w, Some(&b)).unwrap();
    let want = reference::batch_norm(&bn, &conv, Activation::Relu).unwrap();
    let (fw, fb) = bn.fold_into_conv(&p, &w, Some(&b)).unwrap();
    p.activation = Activation::Relu;
    let folded = reference::conv2d(&p, &xin, &fw, Some(&fb)).unwrap();
    assert!(rel_l2(folded.data(), want.data()) < 1e-6);
    for m in &modes() {
        check(
            "conv+folded-bn",
            m,
            &conv2d::run(m.gpu, m.precision, &p, &xin, &fw, Some(&fb)).unwrap(),
            &want,
        );
    }
}

fn expect_invalid(r: Result<Tensor, Error>, what: &str) {
    match r {
        Err(e @ Error::InvalidOp { .. }) => eprintln!("refused as expected: {e}"),
        other => panic!("{what}: expected InvalidOp, got {other:?}"),
    }
}

#[test]
fn shapes_that_cannot_run_are_refused() {
    let Some(g) = gpu() else { return };
    let f = Precision::F32;
    let x = Tensor::zeros([1, 6, 8, 8]);
    let mut p = ConvParams::new(6, 8, 3);
    p.groups = 4;
    let w = Tensor::zeros([8, 1, 3, 3]);
    expect_invalid(
        conv2d::run(g, f, &p, &x, &w, None),
        "groups not dividing c_in",
    );
    p.groups = 0;
    expect_invalid(conv2d::run(g, f, &p, &x, &w, None), "zero groups");
    let p = ConvParams::new(6, 8, 3);
    expect_invalid(
        conv2d::run(g, f, &p, &x, &Tensor::zeros([8, 6, 3, 1]), None),
        "weight shape",
    );
    expect_invalid(
        conv2d::run(
            g,
            f,
            &p,
            &Tensor::zeros([1, 6, 0, 8]),
            &Tensor::zeros([8, 6, 3, 3]),
            None,
        ),
        "zero-sized input",
    );
    expect_invalid(
        conv2d::run(
            g,
            f,
            &p,
            &Tensor::zeros([1, 5, 8, 8]),
            &Tensor::zeros([8, 6, 3, 3]),
            None,
        ),
        "channel mismatch",
    );
    expect_invalid(
        conv2d::run(
            g,
            f,
            &ConvParams::new(6, 8, 11),
            &x,
            &Tensor::zeros([8, 6, 11, 11]),
            None,
        ),
        "kernel larger than input",
    );
    expect_invalid(
        add::run(g, f, Activation::None, &x, &Tensor::zeros([1, 6, 8, 7])),
        "add shapes",
    );
    expect_invalid(
        concat::run(g, f, &[&x, &Tensor::zeros([1, 6, 7, 8])]),
        "concat shapes",
    );
    expect_invalid(
        pool::run(
            g,
            f,
            &pool_params(PoolKind::Max, 3, 1, [3, 0, 0, 0], false),
            &x,
        ),
        "pool pad >= kernel",
    );
    expect_invalid(softmax::run(g, f, &Tensor::zeros([0, 10])), "softmax empty");
    let lp = LinearParams {
        in_features: 10,
        out_features: 3,
        activation: Activation::None,
    };
    expect_invalid(
        linear::run(
            g,
            f,
            &lp,
            &Tensor::zeros([2, 11]),
            &Tensor::zeros([3, 10]),
            None,
        ),
        "linear features",
    );

    // An output larger than one storage binding is refused before anything is dispatched.
    let mut big = ConvParams::new(1, 1024, 3);
    big.padding = [1; 4];
    let limit = g.max_binding_bytes();
    let side = ((limit / 4 / 1024) as f64).sqrt() as usize + 8;
    let r = conv2d::run(
        g,
        f,
        &big,
        &Tensor::zeros([1, 1, side, side]),
        &Tensor::zeros([1024, 1, 3, 3]),
        None,
    );
    match r {
        Err(Error::BufferTooLarge {
            bytes, limit: l, ..
        }) => assert!(bytes > l),
        other => panic!("expected BufferTooLarge, got {other:?}"),
    }
}

#[test]
fn an_unwritten_output_cannot_pass() {
    // The comparison used by every test: NaN (the poison) anywhere fails it.
    let want = [1.0f32, 2.0, 3.0];
    assert!(rel_l2(&[1.0, f32::NAN, 3.0], &want).is_nan());
    assert!(rel_l2(&[1.0, 2.0, 3.0], &want) == 0.0);
    assert!(rel_l2(&[1.0, 2.0], &want).is_nan());
}

/// A 64 x `n` x 32 matmul over 2 batches, dense strides, by `form`, not yet planned.
fn matmul_64xnx32(
    n: usize,
    form: deeproots::ops::matmul::MatmulForm,
) -> deeproots::ops::matmul::MatmulParams {
    deeproots::ops::matmul::MatmulParams {
        m: 64,
        n,
        k: 32,
        groups: 1,
        batches: 2,
        b_strides: [32 * n, 32 * n, n, 1],
        c_strides: [64 * n, 64 * n, n, 1],
        activation: deeproots::ops::Activation::None,
        form,
        warm_rows: false,
    }
}

#[test]
fn a_subgroup_matmul_without_a_planned_row_width_is_refused() {
    use deeproots::ops::matmul::MatmulForm;
    let p = matmul_64xnx32(225, MatmulForm::shared_columns(8));
    let e = p.dispatches("mm", 0, 1, 2, 3).unwrap_err().to_string();
    assert!(e.contains("row width 0"), "{e}");
    let planned = p.planned(deeproots::ops::Target {
        cpu: true,
        min_workgroups: 0,
        subgroup: Some(8),
        subgroup_max: 8,
    });
    assert_eq!(planned.form.row_width(), 8);
    assert!(planned.dispatches("mm", 0, 1, 2, 3).is_ok());
}

#[test]
fn matmuls_planned_for_cpu_adapters_warm_the_rows_of_b_and_others_do_not() {
    use deeproots::ops::matmul::MatmulForm;
    let target = |cpu| deeproots::ops::Target {
        cpu,
        min_workgroups: 0,
        subgroup: Some(8),
        subgroup_max: 8,
    };
    let forms = [
        MatmulForm::Wide { x8: false },
        MatmulForm::Wide { x8: true },
        MatmulForm::subgroup(8),
        MatmulForm::cols8(8, 32),
        MatmulForm::shared_columns(8),
    ];
    for form in forms {
        let p = matmul_64xnx32(256, form);
        for cpu in [true, false] {
            let d = p
                .clone()
                .planned(target(cpu))
                .dispatches("mm", 0, 1, 2, 3)
                .unwrap();
            let warm = d.constants.iter().find(|(name, _)| *name == "WARM");
            assert_eq!(warm, Some(&("WARM", f64::from(u8::from(cpu)))), "{form:?}");
        }
    }
}
