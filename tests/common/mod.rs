//! Shared test fixtures: the devices under test, random tensors with a printed seed, and the
//! comparison against the CPU reference.
#![allow(dead_code)]

use deeproots::tensor::rel_l2;
use deeproots::{Gpu, GpuOptions, Precision, Tensor};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::sync::{Arc, OnceLock};

/// A device and precision under test, with its tolerance.
pub struct Mode {
    pub name: &'static str,
    pub gpu: &'static Arc<Gpu>,
    pub precision: Precision,
    pub tolerance: f64,
}

struct Devices {
    main: Arc<Gpu>,
    /// A second device with SHADER_F16 turned off, to cover packed f16 storage where the
    /// adapter would otherwise use native f16.
    packed: Option<Arc<Gpu>>,
}

fn devices() -> Option<&'static Devices> {
    static DEVICES: OnceLock<Option<Devices>> = OnceLock::new();
    DEVICES
        .get_or_init(|| {
            let options = GpuOptions::from_env().expect("DEEPROOTS_BACKEND");
            match Gpu::new(&options) {
                Ok(main) => {
                    eprintln!(
                        "testing on {} ({})",
                        main.adapter().name,
                        main.adapter().backend
                    );
                    let packed = if main.adapter().shader_f16 {
                        Gpu::new(&GpuOptions {
                            disable_shader_f16: true,
                            ..options
                        })
                        .ok()
                        .map(Arc::new)
                    } else {
                        None
                    };
                    Some(Devices {
                        main: Arc::new(main),
                        packed,
                    })
                }
                Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                    panic!("CI needs a GPU adapter and found none: {e}")
                }
                Err(e) => {
                    eprintln!("SKIPPED: no GPU adapter ({e}); install mesa-vulkan-drivers");
                    None
                }
            }
        })
        .as_ref()
}

/// The main device, or `None` (with a message) where a developer's machine has no adapter.
pub fn gpu() -> Option<&'static Arc<Gpu>> {
    devices().map(|d| &d.main)
}

/// Every (device, precision) combination to check: f32; f16 native where the adapter has
/// SHADER_F16; f16 packed in u32 otherwise (and also on a second device with SHADER_F16 off).
pub fn modes() -> Vec<Mode> {
    let Some(d) = devices() else { return vec![] };
    let mut v = vec![Mode {
        name: "f32",
        gpu: &d.main,
        precision: Precision::F32,
        tolerance: 1e-5,
    }];
    v.push(Mode {
        name: if d.main.adapter().shader_f16 {
            "f16"
        } else {
            "f16-packed"
        },
        gpu: &d.main,
        precision: Precision::F16,
        tolerance: 3e-3,
    });
    if let Some(p) = &d.packed {
        v.push(Mode {
            name: "f16-packed",
            gpu: p,
            precision: Precision::F16,
            tolerance: 3e-3,
        });
    }
    v
}

/// A random generator whose seed is printed, so a failure can be replayed with
/// `DEEPROOTS_TEST_SEED=<seed>`.
pub fn rng(test: &str) -> SmallRng {
    let seed = std::env::var("DEEPROOTS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{test}: seed {seed}");
    SmallRng::seed_from_u64(seed)
}

/// A tensor of uniform values in [-1, 1], each exactly representable in f16: storing the
/// inputs as f16 then loses nothing, so f16 comparisons measure the kernels' arithmetic and
/// output rounding, not the rounding of random inputs.
pub fn random(rng: &mut SmallRng, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    let data = (0..n)
        .map(|_| half::f16::from_f32(rng.random_range(-1.0..1.0)).to_f32())
        .collect();
    Tensor::new(shape.to_vec(), data).unwrap()
}

/// Compares every element of `got` with `want` by relative L2 error; prints the error so the
/// largest per op and precision can be collected from the test log (`--nocapture`).
pub fn check(op: &str, mode: &Mode, got: &Tensor, want: &Tensor) {
    check_scaled(op, mode, got, want, want);
}

/// [`check`] with the error measured against the L2 norm of `scale` instead of `want`'s. For
/// a sum of products, `scale` is each output's root sum of squared products: rounding each
/// product (the f16 kernels multiply in f16) adds errors of about the precision times that,
/// whatever the sum, so where the products cancel (a small output from large terms) an error
/// relative to the output grows without bound while one relative to `scale` stays at the
/// precision; a wrong or missing product is one term's size, as far over the tolerance as
/// against the output.
pub fn check_scaled(op: &str, mode: &Mode, got: &Tensor, want: &Tensor, scale: &Tensor) {
    assert_eq!(got.shape(), want.shape(), "{op} [{}]: shape", mode.name);
    assert_eq!(
        scale.shape(),
        want.shape(),
        "{op} [{}]: scale shape",
        mode.name
    );
    let l2 = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
    let num = l2(&mut got
        .data()
        .iter()
        .zip(want.data())
        .map(|(&a, &b)| a as f64 - b as f64));
    let den = l2(&mut scale.data().iter().map(|&x| x as f64));
    // rel_l2 is NaN where only one side has a non-finite element (a poisoned output).
    let e = if rel_l2(got.data(), want.data()).is_nan() {
        f64::NAN
    } else {
        num / if den == 0.0 { 1.0 } else { den }
    };
    println!(
        "relerr op={op} mode={} backend={} err={e:.3e}",
        mode.name,
        mode.gpu.adapter().backend
    );
    assert!(
        e <= mode.tolerance,
        "{op} [{}]: relative L2 error {e:.3e} over tolerance {:.0e} (NaN = an element never written)",
        mode.name,
        mode.tolerance
    );
}

/// A path in this test binary's own temporary folder.
pub fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("deeproots-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs the built `deeproots` binary (with this process's environment, so
/// `DEEPROOTS_BACKEND` carries over).
pub fn deeproots<I, S>(args: I) -> std::process::Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    std::process::Command::new(env!("CARGO_BIN_EXE_deeproots"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `deeproots` and returns its standard output, failing the test with its stderr when it
/// fails.
pub fn deeproots_ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = deeproots(&args);
    assert!(
        out.status.success(),
        "deeproots {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Lines some Vulkan drivers print on their own when an instance is created (Mesa's WSI
/// without a Wayland session); they are not ours.
fn driver_noise(line: &str) -> bool {
    line.starts_with("error: XDG_RUNTIME_DIR")
}

/// Runs `deeproots`, expecting a clean refusal: a failure exit code and exactly one line on
/// stderr that starts with `error: `, with no panic and no backtrace. Returns that line.
pub fn deeproots_refuses<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = deeproots(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "deeproots {args:?} succeeded: {stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "deeproots {args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !driver_noise(l)).collect();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "deeproots {args:?}: {stderr}"
    );
    assert_eq!(lines.len(), 1, "deeproots {args:?}: not one line: {stderr}");
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    println!("refused: {}", lines[0]);
    lines[0].to_string()
}
