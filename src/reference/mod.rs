//! A plain CPU implementation of every op, accumulating in f64: the oracle the GPU kernels are
//! tested against. Written for obviousness, not speed; it knows nothing about the GPU.

pub mod graph;

use crate::error::{invalid, Result};
use crate::ops::{
    add, batch_norm::BatchNorm, concat, conv2d::ConvParams, flatten, global_avg_pool,
    linear::LinearParams, pool::PoolKind, pool::PoolParams, softmax, Activation,
};
use crate::Tensor;

/// Convolution (a missing bias is zero).
pub fn conv2d(p: &ConvParams, x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    crate::ops::conv2d::check_weights(p, w, bias)?;
    let [n, co_n, ho, wo] = p.out_dims(x.shape())?;
    let [_, c_in, h, wd] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
    let (cin_g, cout_g) = (c_in / p.groups, co_n / p.groups);
    let [kh, kw] = p.kernel;
    let (xd, wdat) = (x.data(), w.data());
    let mut y = Tensor::zeros([n, co_n, ho, wo]);
    let yd = y.data_mut();
    for b in 0..n {
        for co in 0..co_n {
            let g = co / cout_g;
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = bias.map_or(0.0, |t| t.data()[co] as f64);
                    for ci in 0..cin_g {
                        let c = g * cin_g + ci;
                        for ky in 0..kh {
                            let iy = (oy * p.stride[0] + ky * p.dilation[0]) as isize
                                - p.padding[0] as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            for kx in 0..kw {
                                let ix = (ox * p.stride[1] + kx * p.dilation[1]) as isize
                                    - p.padding[1] as isize;
                                if ix < 0 || ix >= wd as isize {
                                    continue;
                                }
                                let xv = xd[((b * c_in + c) * h + iy as usize) * wd + ix as usize]
                                    as f64;
                                let wv = wdat[((co * cin_g + ci) * kh + ky) * kw + kx] as f64;
                                acc += xv * wv;
                            }
                        }
                    }
                    yd[((b * co_n + co) * ho + oy) * wo + ox] = p.activation.apply(acc) as f32;
                }
            }
        }
    }
    Ok(y)
}

/// Max or average pooling, with PyTorch's window and divisor rules.
pub fn pool(p: &PoolParams, x: &Tensor) -> Result<Tensor> {
    let [n, c, ho, wo] = p.out_dims(x.shape())?;
    let (h, w) = (x.shape()[2] as isize, x.shape()[3] as isize);
    let [pt, pl, pb, pr] = p.padding.map(|v| v as isize);
    let mut y = Tensor::zeros([n, c, ho, wo]);
    for plane in 0..n * c {
        let src = &x.data()[plane * (h * w) as usize..][..(h * w) as usize];
        for oy in 0..ho {
            for ox in 0..wo {
                let y0 = oy as isize * p.stride[0] as isize - pt;
                let x0 = ox as isize * p.stride[1] as isize - pl;
                let y1 = (y0 + p.kernel[0] as isize).min(h + pb);
                let x1 = (x0 + p.kernel[1] as isize).min(w + pr);
                let padded = ((y1 - y0) * (x1 - x0)) as f64;
                let (mut best, mut sum, mut count) = (f64::NEG_INFINITY, 0.0, 0.0);
                for iy in y0.max(0)..y1.min(h) {
                    for ix in x0.max(0)..x1.min(w) {
                        let v = src[(iy * w + ix) as usize] as f64;
                        best = best.max(v);
                        sum += v;
                        count += 1.0;
                    }
                }
                let v = match p.kind {
                    PoolKind::Max => best,
                    PoolKind::Avg { count_include_pad } => {
                        sum / if count_include_pad { padded } else { count }
                    }
                };
                y.data_mut()[(plane * ho + oy) * wo + ox] = v as f32;
            }
        }
    }
    Ok(y)
}

/// Mean over H x W.
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    let out = global_avg_pool::out_dims(x.shape())?;
    let hw = x.shape()[2] * x.shape()[3];
    let data = x
        .data()
        .chunks(hw)
        .map(|c| (c.iter().map(|&v| v as f64).sum::<f64>() / hw as f64) as f32)
        .collect();
    Tensor::new(out, data)
}

/// Element-wise `act(a + b)`.
pub fn add(a: &Tensor, b: &Tensor, activation: Activation) -> Result<Tensor> {
    let shape = add::out_dims(a.shape(), b.shape())?;
    let data = a
        .data()
        .iter()
        .zip(b.data())
        .map(|(&x, &y)| activation.apply(x as f64 + y as f64) as f32)
        .collect();
    Tensor::new(shape, data)
}

/// Concatenation along channels.
pub fn concat(inputs: &[&Tensor]) -> Result<Tensor> {
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
    let out = concat::out_dims(&shapes)?;
    let mut data = Vec::with_capacity(out.iter().product());
    for b in 0..out[0] {
        for t in inputs {
            let per = t.len() / out[0];
            data.extend_from_slice(&t.data()[b * per..(b + 1) * per]);
        }
    }
    Tensor::new(out, data)
}

/// `act(x W^T + b)` over `[N, in_features]` (any trailing shape is flattened).
pub fn linear(p: &LinearParams, x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let [n, out] = p.out_dims(x.shape())?;
    if w.shape() != p.weight_shape() {
        return Err(invalid(
            "linear",
            format!(
                "weight has shape {:?}, expected {:?}",
                w.shape(),
                p.weight_shape()
            ),
        ));
    }
    let k = p.in_features;
    let mut data = Vec::with_capacity(n * out);
    for b in 0..n {
        let row = &x.data()[b * k..(b + 1) * k];
        for o in 0..out {
            let wr = &w.data()[o * k..(o + 1) * k];
            let acc: f64 = row
                .iter()
                .zip(wr)
                .map(|(&a, &c)| a as f64 * c as f64)
                .sum::<f64>()
                + bias.map_or(0.0, |t| t.data()[o] as f64);
            data.push(p.activation.apply(acc) as f32);
        }
    }
    Tensor::new([n, out], data)
}

/// Softmax over axis 1.
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    let (c, inner) = softmax::split(x.shape())?;
    let mut y = x.clone();
    for b in 0..x.shape()[0] {
        for i in 0..inner {
            let idx = |k: usize| (b * c + k) * inner + i;
            let m = (0..c)
                .map(|k| x.data()[idx(k)] as f64)
                .fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = (0..c).map(|k| (x.data()[idx(k)] as f64 - m).exp()).sum();
            for k in 0..c {
                y.data_mut()[idx(k)] = ((x.data()[idx(k)] as f64 - m).exp() / s) as f32;
            }
        }
    }
    Ok(y)
}

/// Inference batch norm `act(gamma * (x - mean) / sqrt(var + eps) + beta)`.
pub fn batch_norm(bn: &BatchNorm, x: &Tensor, activation: Activation) -> Result<Tensor> {
    let c = bn.channels()?;
    if x.shape().len() != 4 || x.shape()[1] != c {
        return Err(invalid(
            "batch_norm",
            format!("has {c} channels, input {:?}", x.shape()),
        ));
    }
    let hw = x.shape()[2] * x.shape()[3];
    let mut y = x.clone();
    for (i, v) in y.data_mut().iter_mut().enumerate() {
        let ch = (i / hw) % c;
        let norm = (*v as f64 - bn.mean[ch] as f64) / (bn.var[ch] as f64 + bn.eps).sqrt();
        *v = activation.apply(norm * bn.gamma[ch] as f64 + bn.beta[ch] as f64) as f32;
    }
    Ok(y)
}

/// `[N, ...]` to `[N, rest]`.
pub fn flatten(x: &Tensor) -> Result<Tensor> {
    let out = flatten::out_dims(x.shape())?;
    x.clone().reshape(out)
}
