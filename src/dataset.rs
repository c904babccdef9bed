//! Test sets read straight from the files their packages install.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// Where Debian's `dataset-fashion-mnist` puts the IDX files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Labelled 8-bit grey images.
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// All pixels, image after image, row-major.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

fn read_idx(path: &Path, magic: u32, dims: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let err = |m: String| Error::ModelFile(format!("{}: {m}", path.display()));
    let file = std::fs::File::open(path)
        .map_err(|e| err(format!("{e} (apt-get install dataset-fashion-mnist)")))?;
    let mut bytes = Vec::new();
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    // An IDX file is at most a few hundred MB; refuse anything far larger.
    reader
        .take(1 << 30)
        .read_to_end(&mut bytes)
        .map_err(|e| err(e.to_string()))?;
    let word = |i: usize| -> Result<u32> {
        bytes
            .get(4 * i..4 * i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| err("truncated header".into()))
    };
    if word(0)? != magic {
        return Err(err(format!("magic {:#x}, expected {magic:#x}", word(0)?)));
    }
    let shape: Vec<usize> = (1..=dims)
        .map(|i| word(i).map(|v| v as usize))
        .collect::<Result<_>>()?;
    let body = &bytes[4 * (dims + 1)..];
    let n: usize = shape.iter().product();
    if body.len() != n {
        return Err(err(format!(
            "{} bytes of data for shape {shape:?}",
            body.len()
        )));
    }
    Ok((shape, body.to_vec()))
}

/// The 10,000 Fashion-MNIST test images and labels from `dir`
/// (`t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`).
pub fn fashion_mnist_test(dir: &Path) -> Result<ImageSet> {
    let pick = |stem: &str| {
        let gz = dir.join(format!("{stem}.gz"));
        if gz.exists() {
            gz
        } else {
            dir.join(stem)
        }
    };
    let (ishape, pixels) = read_idx(&pick("t10k-images-idx3-ubyte"), 0x0803, 3)?;
    let (lshape, labels) = read_idx(&pick("t10k-labels-idx1-ubyte"), 0x0801, 1)?;
    if ishape[0] != lshape[0] {
        return Err(Error::ModelFile(format!(
            "{}: {} images but {} labels",
            dir.display(),
            ishape[0],
            lshape[0]
        )));
    }
    Ok(ImageSet {
        height: ishape[1],
        width: ishape[2],
        pixels,
        labels,
    })
}

/// Top-1 accuracy of a classifier on a labelled set.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalReport {
    /// Images evaluated.
    pub images: usize,
    /// Images whose top-1 class is the label.
    pub correct: usize,
    /// `correct / images`.
    pub top1: f64,
}

/// Runs `exec` (one input `[C, H, W]` matching the set, scores as its first output) over `set`
/// in batches of `batch`, normalizing pixels as the input's `preprocess` says; calls
/// `progress(done, total)` after each batch.
pub fn evaluate(
    exec: &crate::Executor,
    set: &ImageSet,
    batch: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<EvalReport> {
    let g = exec.graph();
    let spec = match g.inputs.as_slice() {
        [s] => s,
        _ => {
            return Err(crate::error::invalid(
                &g.name,
                "evaluation needs a model with one input",
            ))
        }
    };
    if spec.shape != [1, set.height, set.width] {
        return Err(crate::error::invalid(
            &g.name,
            format!(
                "the model takes {:?}, the images are [1, {}, {}]",
                spec.shape, set.height, set.width
            ),
        ));
    }
    let (mean, std) = spec.preprocess.as_ref().map_or((0.0, 1.0), |p| {
        (
            p.mean.first().copied().unwrap_or(0.0),
            p.std.first().copied().unwrap_or(1.0),
        )
    });
    let per = set.height * set.width;
    let mut correct = 0;
    let mut start = 0;
    while start < set.len() {
        let n = batch.max(1).min(set.len() - start);
        let data: Vec<f32> = set.pixels[start * per..(start + n) * per]
            .iter()
            .map(|&p| (p as f32 - mean) / std)
            .collect();
        let x = crate::Tensor::new([n, 1, set.height, set.width], data)?;
        let out = exec.run(&[&x])?;
        let classes = out[0].len() / n;
        for (i, row) in out[0].data().chunks(classes).enumerate() {
            let best = row
                .iter()
                .enumerate()
                .fold(0, |b, (k, &v)| if v > row[b] { k } else { b });
            correct += (best == set.labels[start + i] as usize) as usize;
        }
        start += n;
        progress(start, set.len());
    }
    Ok(EvalReport {
        images: set.len(),
        correct,
        top1: correct as f64 / set.len().max(1) as f64,
    })
}
