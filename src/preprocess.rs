//! From an image file to a model input: decode, resize, crop and normalize as the graph
//! input's `preprocess` says (docs/FORMAT.md).
//!
//! The resize is Pillow's BILINEAR resampling, reproduced exactly (8-bit fixed-point
//! coefficients, horizontal pass then vertical, rounded to 8 bits between passes), so inputs
//! match those of the PyTorch/torchvision pipelines the models were trained and checked with.

use crate::error::{Error, Result};
use crate::graph::json::{Preprocess, RawInput};
use crate::Tensor;
use std::path::Path;

/// An 8-bit image, interleaved channels.
#[derive(Debug, Clone, PartialEq)]
pub struct Image8 {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Channels per pixel (1 or 3).
    pub channels: usize,
    /// Row-major pixels.
    pub data: Vec<u8>,
}

/// The longest side an image may have, decoded, resized or as the model's input: larger ones
/// are refused before anything that size is allocated (a small file can claim a huge image).
/// Every buffer of the resize is then at most `MAX_SIDE^2` pixels.
pub const MAX_SIDE: usize = 8192;

/// The most bytes the decoder may allocate for one image.
const MAX_DECODE_BYTES: u64 = 256 << 20;

fn image_err(name: &str, message: impl std::fmt::Display) -> Error {
    // Decoders' messages may span lines; an error is one line.
    let message = message.to_string();
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    Error::Image {
        path: name.to_string(),
        message: lines.join("; "),
    }
}

/// Decodes a PNG or JPEG file as RGB (3 channels) or grey (1 channel, Pillow's ITU-R 601-2 luma).
pub fn decode(path: &Path, channels: usize) -> Result<Image8> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| image_err(&name, e))?;
    decode_bytes(&name, &bytes, channels)
}

/// [`decode`] for an image already in memory; `name` is what errors call it.
pub fn decode_bytes(name: &str, bytes: &[u8], channels: usize) -> Result<Image8> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| image_err(name, e))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE as u32);
    limits.max_image_height = Some(MAX_SIDE as u32);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| image_err(name, e))?;
    if img.width() == 0 || img.height() == 0 {
        return Err(image_err(
            name,
            format!("image is {}x{} pixels", img.width(), img.height()),
        ));
    }
    let rgb = img.to_rgb8();
    let (width, height) = (rgb.width() as usize, rgb.height() as usize);
    let data = match channels {
        3 => rgb.into_raw(),
        1 if img.color().channel_count() <= 2 => img.to_luma8().into_raw(),
        1 => rgb
            .pixels()
            .map(|p| {
                ((p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000) >> 16)
                    as u8
            })
            .collect(),
        c => {
            return Err(image_err(
                name,
                format!("the model wants {c} channels; images give 1 or 3"),
            ))
        }
    };
    Ok(Image8 {
        width,
        height,
        channels,
        data,
    })
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's coefficients for resampling `in_size` pixels to `out_size` with the triangle
/// (bilinear) filter: per output pixel, the first input pixel and fixed-point weights.
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut w: Vec<f64> = (xmin..xmax)
                .map(|x| {
                    let t = ((x as f64 - center + 0.5) / filterscale).abs();
                    if t < 1.0 {
                        1.0 - t
                    } else {
                        0.0
                    }
                })
                .collect();
            let total: f64 = w.iter().sum();
            if total != 0.0 {
                w.iter_mut().for_each(|v| *v /= total);
            }
            let fixed = w
                .iter()
                .map(|&k| {
                    let s = k * (1u32 << PRECISION_BITS) as f64;
                    (if k < 0.0 { s - 0.5 } else { s + 0.5 }) as i32
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes like Pillow's `Image.resize(size, Image.BILINEAR)`.
pub fn resize_bilinear(img: &Image8, width: usize, height: usize) -> Image8 {
    let c = img.channels;
    let mut cur = img.clone();
    if width != img.width {
        let coeffs = coefficients(img.width, width);
        let mut data = vec![0u8; width * img.height * c];
        for y in 0..img.height {
            for (xx, (xmin, k)) in coeffs.iter().enumerate() {
                for ch in 0..c {
                    let mut ss: i64 = 1 << (PRECISION_BITS - 1);
                    for (i, &kv) in k.iter().enumerate() {
                        ss += cur.data[(y * cur.width + xmin + i) * c + ch] as i64 * kv as i64;
                    }
                    data[(y * width + xx) * c + ch] = clip8(ss);
                }
            }
        }
        cur = Image8 {
            width,
            height: img.height,
            channels: c,
            data,
        };
    }
    if height != img.height {
        let coeffs = coefficients(img.height, height);
        let mut data = vec![0u8; width * height * c];
        for (yy, (ymin, k)) in coeffs.iter().enumerate() {
            for x in 0..width {
                for ch in 0..c {
                    let mut ss: i64 = 1 << (PRECISION_BITS - 1);
                    for (i, &kv) in k.iter().enumerate() {
                        ss += cur.data[((ymin + i) * width + x) * c + ch] as i64 * kv as i64;
                    }
                    data[(yy * width + x) * c + ch] = clip8(ss);
                }
            }
        }
        cur = Image8 {
            width,
            height,
            channels: c,
            data,
        };
    }
    cur
}

/// The centre `w x h` window, offsets rounded as torchvision's `CenterCrop` does.
pub fn center_crop(img: &Image8, w: usize, h: usize) -> Image8 {
    let left = ((img.width as f64 - w as f64) / 2.0).round() as usize;
    let top = ((img.height as f64 - h as f64) / 2.0).round() as usize;
    let c = img.channels;
    let mut data = Vec::with_capacity(w * h * c);
    for y in top..top + h {
        data.extend_from_slice(
            &img.data[(y * img.width + left) * c..(y * img.width + left + w) * c],
        );
    }
    Image8 {
        width: w,
        height: h,
        channels: c,
        data,
    }
}

/// Resize (shorter side to `resize`, the other side rounded), crop, then as needed a final
/// resize to the input's exact size; returns the 8-bit image the model sees.
pub fn fit(img: &Image8, pre: Option<&Preprocess>, width: usize, height: usize) -> Image8 {
    let mut cur = img.clone();
    if let Some((nw, nh)) = resized_size(img, pre) {
        cur = resize_bilinear(&cur, nw, nh);
    }
    if let Some(c) = pre.and_then(|p| p.crop).map(|c| c as usize) {
        if cur.width >= c && cur.height >= c {
            cur = center_crop(&cur, c, c);
        }
    }
    if cur.width != width || cur.height != height {
        cur = resize_bilinear(&cur, width, height);
    }
    cur
}

/// The size after `preprocess.resize` (shorter side to `resize`, the other side rounded), if
/// the preprocess resizes.
fn resized_size(img: &Image8, pre: Option<&Preprocess>) -> Option<(usize, usize)> {
    let r = pre.and_then(|p| p.resize)? as usize;
    let (w, h) = (img.width as f64, img.height as f64);
    let (nw, nh) = if img.width <= img.height {
        (r, (h * r as f64 / w).round() as usize)
    } else {
        ((w * r as f64 / h).round() as usize, r)
    };
    Some((nw.max(1), nh.max(1)))
}

/// Reads `path` and returns the tensor `[C, H, W]` for the graph input `input`.
pub fn load(path: &Path, input: &RawInput) -> Result<Tensor> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| image_err(&name, e))?;
    load_bytes(&name, &bytes, input)
}

/// [`load`] for an image already in memory; `name` is what errors call it.
pub fn load_bytes(name: &str, bytes: &[u8], input: &RawInput) -> Result<Tensor> {
    let [c, h, w] = match input.shape[..] {
        [c, h, w] if c > 0 && h > 0 && w > 0 && h.max(w) <= MAX_SIDE => [c, h, w],
        _ => {
            return Err(image_err(
                name,
                format!(
                "the model input '{}' has shape {:?}, not [C, H, W] with sides up to {MAX_SIDE}",
                input.name, input.shape
            ),
            ))
        }
    };
    let pre = input.preprocess.as_ref();
    let img = decode_bytes(name, bytes, c)?;
    if let Some((nw, nh)) = resized_size(&img, pre) {
        if nw.max(nh) > MAX_SIDE {
            return Err(image_err(
                name,
                format!(
                    "resizing {}x{} to a shorter side of {} gives {nw}x{nh}, over the {MAX_SIDE}-pixel limit",
                    img.width,
                    img.height,
                    nw.min(nh)
                ),
            ));
        }
    }
    normalize(name, &fit(&img, pre, w, h).data, input)
}

/// Pixels already at the input's size (row-major, channels interleaved, 0..255) as the tensor
/// `[C, H, W]` for `input`: channels reordered for `bgr`, `(x - mean) / std` per channel.
pub fn normalize(name: &str, pixels: &[u8], input: &RawInput) -> Result<Tensor> {
    let (c, hw) = match input.shape[..] {
        [c, h, w] => (c, h * w),
        _ => {
            return Err(image_err(
                name,
                format!(
                    "the model input '{}' has shape {:?}, not [C, H, W]",
                    input.name, input.shape
                ),
            ))
        }
    };
    if pixels.len() != c * hw {
        return Err(image_err(
            name,
            format!(
                "expected {} pixel values ({c} x {hw}), got {}",
                c * hw,
                pixels.len()
            ),
        ));
    }
    let pre = input.preprocess.as_ref();
    let (mean, std) = match pre {
        Some(p) => (p.mean.clone(), p.std.clone()),
        None => (vec![0.0; c], vec![1.0; c]),
    };
    if mean.len() != c || std.len() != c || std.contains(&0.0) {
        return Err(image_err(
            name,
            format!("preprocess needs {c} means and {c} non-zero stds"),
        ));
    }
    let bgr = pre.is_some_and(|p| p.color == "bgr");
    let mut data = vec![0.0f32; c * hw];
    for ch in 0..c {
        let src = if bgr { c - 1 - ch } else { ch };
        for i in 0..hw {
            data[ch * hw + i] = (pixels[i * c + src] as f32 - mean[ch]) / std[ch];
        }
    }
    Tensor::new(input.shape.clone(), data)
}
