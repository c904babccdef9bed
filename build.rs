//! Fingerprints the kernels: a hash of the WGSL sources and of the Rust files that assemble,
//! choose and launch the convolution kernels (src/ops/mod.rs: the device target and its row
//! widths), so that the tuning cache (src/tune.rs) does not hand one build's measured choices
//! to another whose kernels differ. The versions of wgpu and naga that Cargo.lock pins (where
//! the build has one) go into the hash too: naga translates the WGSL, so a new version can
//! change what a kernel compiles to.

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
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        h = fnv1a(h, &bytes);
    }
    println!("cargo:rerun-if-changed=Cargo.lock");
    if let Ok(lock) = std::fs::read_to_string("Cargo.lock") {
        h = fnv1a(h, translator_versions(&lock).as_bytes());
    }
    println!("cargo:rustc-env=DEEPROOTS_KERNELS={h:016x}");
}

/// FNV-1a, 64 bits, continued from `h` over `bytes`: stable across Rust versions, unlike std's
/// hasher.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// `name version` lines of the wgpu and naga packages in a Cargo.lock, in file order.
fn translator_versions(lock: &str) -> String {
    let mut out = String::new();
    let mut name = "";
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = n.trim_matches('"');
        } else if let Some(v) = line.strip_prefix("version = ") {
            if name.starts_with("wgpu") || name.starts_with("naga") {
                out.push_str(&format!("{name} {}\n", v.trim_matches('"')));
            }
        }
    }
    out
}
