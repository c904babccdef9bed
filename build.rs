//! Fingerprints the kernels: a hash of the WGSL sources and of the Rust files that assemble,
//! choose and launch the convolution kernels (src/ops/mod.rs: the device target and its row
//! widths), so that the tuning cache (src/tune.rs) does not hand one build's measured choices
//! to another whose kernels differ.

use std::path::PathBuf;

fn main() {
    let mut files: Vec<PathBuf> = std::fs::read_dir("shaders")
        .expect("the shaders/ directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .collect();
    files.sort();
    files.extend(
        [
            "src/gpu/shader.rs",
            "src/ops/mod.rs",
            "src/ops/conv2d.rs",
            "src/ops/matmul.rs",
        ]
        .map(PathBuf::from),
    );
    println!("cargo:rerun-if-changed=shaders");
    // FNV-1a, 64 bits: stable across Rust versions, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    println!("cargo:rustc-env=DEEPROOTS_KERNELS={h:016x}");
}
