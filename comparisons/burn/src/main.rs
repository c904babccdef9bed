//! NIN for CIFAR-10 (3x32x32, 10 classes) and its root-g variants on burn's wgpu backend,
//! built layer for layer as deeproots' zoo builds them (src/zoo/nin.rs), timed the way
//! `deeproots bench --wall-clock` times a run: input upload, forward pass, logits read back.
//!
//! Batch norms are left out: deeproots folds them into the convolutions before it runs a
//! model, so what runs there is conv + bias + ReLU, as here. Weights are burn's random
//! initialization (the timing does not depend on them).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{
    AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig, MaxPool2d,
    MaxPool2dConfig,
};
use burn::nn::PaddingConfig2d;
use burn::tensor::activation::relu;
use burn::tensor::wgpu::WgpuBackend;
use burn::tensor::{Device, DeviceKind, Tensor, TensorData};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// The burn release this project pins in Cargo.toml.
const BURN_VERSION: &str = "0.22.1";
const CLASSES: usize = 10;
const CHANNELS: usize = 3;
const SIZE: usize = 32;

/// A zoo variant: `orig` or `root-g`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    Orig,
    Root(usize),
}

impl Variant {
    fn parse(s: &str) -> Option<Self> {
        if s == "orig" {
            return Some(Variant::Orig);
        }
        let g: usize = s.strip_prefix("root-")?.parse().ok()?;
        [2, 4, 8, 16].contains(&g).then_some(Variant::Root(g))
    }

    fn name(self) -> String {
        match self {
            Variant::Orig => "orig".into(),
            Variant::Root(g) => format!("root-{g}"),
        }
    }

    /// deeproots' zoo name (`nin`, `nin-root-8`).
    fn zoo_name(self) -> String {
        match self {
            Variant::Orig => "nin".into(),
            v => format!("nin-{}", v.name()),
        }
    }

    /// Groups of conv2a and conv3a (src/zoo/nin.rs: root-g = (g, g/2), orig = (1, 1)).
    fn groups(self) -> (usize, usize) {
        match self {
            Variant::Orig => (1, 1),
            Variant::Root(g) => (g, (g / 2).max(1)),
        }
    }
}

/// One layer of the network as deeproots' zoo lists it.
#[derive(Clone, Copy, Debug)]
enum Spec {
    /// name, output channels, kernel side, groups, ReLU after it.
    Conv(&'static str, usize, usize, usize, bool),
    /// 3x3 max pool, stride 2, no padding, ceil mode.
    MaxPool3s2,
    /// 3x3 average pool, stride 2, no padding, ceil mode, padding counted.
    AvgPool3s2,
    /// Global average pool and flatten.
    GlobalAvg,
}

fn layers(v: Variant) -> Vec<Spec> {
    let (g2, g3) = v.groups();
    vec![
        Spec::Conv("conv1a", 192, 5, 1, true),
        Spec::Conv("conv1b", 160, 1, 1, true),
        Spec::Conv("conv1c", 96, 1, 1, true),
        Spec::MaxPool3s2,
        Spec::Conv("conv2a", 192, 5, g2, true),
        Spec::Conv("conv2b", 192, 1, 1, true),
        Spec::Conv("conv2c", 192, 1, 1, true),
        Spec::AvgPool3s2,
        Spec::Conv("conv3a", 192, 3, g3, true),
        Spec::Conv("conv3b", 192, 1, 1, true),
        Spec::Conv("conv3c", CLASSES, 1, 1, false),
        Spec::GlobalAvg,
    ]
}

/// Output side of a 3x3 stride-2 ceil-mode pool without padding (PyTorch's rule: the last
/// window must start inside the input).
fn pool_out(side: usize) -> usize {
    let mut out = (side - 3).div_ceil(2) + 1;
    if (out - 1) * 2 >= side {
        out -= 1;
    }
    out
}

/// Multiply-adds and parameters per image, from the layer shapes (convolutions only, as
/// deeproots counts them once batch norms are folded). `list` prints each convolution.
fn cost_of(v: Variant, list: bool) -> (u64, u64) {
    let (mut c, mut side) = (CHANNELS, SIZE);
    let (mut ma, mut params) = (0u64, 0u64);
    for l in layers(v) {
        match l {
            Spec::Conv(name, out, k, g, _) => {
                // Padding k/2 keeps the side.
                let per_out = (c / g * k * k) as u64;
                let layer_ma = (side * side * out) as u64 * per_out;
                if list {
                    println!(
                        "  {name}: {c}x{side}x{side} -> {out}x{side}x{side}, {k}x{k}, groups {g}, MA {}",
                        group(layer_ma)
                    );
                }
                ma += layer_ma;
                params += out as u64 * per_out + out as u64;
                c = out;
            }
            Spec::MaxPool3s2 | Spec::AvgPool3s2 => side = pool_out(side),
            Spec::GlobalAvg => side = 1,
        }
    }
    (ma, params)
}

fn cost(v: Variant) -> (u64, u64) {
    cost_of(v, false)
}

/// A CPU reference of one image through the same network and weights (PyTorch's semantics
/// for the ceil-mode pools), to show that the timed runs compute the whole network.
fn reference(net: &Nin, v: Variant, x: &[f32]) -> Vec<f32> {
    let (mut c, mut side) = (CHANNELS, SIZE);
    let mut a = x.to_vec();
    for (spec, layer) in layers(v).into_iter().zip(&net.layers) {
        match (spec, layer) {
            (Spec::Conv(_, out, k, g, act), Layer::Conv(conv, _)) => {
                let w = conv.weight.val().into_data().try_to_vec::<f32>().unwrap();
                let b = conv.bias.as_ref().unwrap().val().into_data().try_to_vec::<f32>().unwrap();
                let (cin_g, cout_g, p) = (c / g, out / g, (k / 2) as isize);
                let mut y = vec![0f32; out * side * side];
                for o in 0..out {
                    let gi = o / cout_g;
                    for oy in 0..side {
                        for ox in 0..side {
                            let mut acc = b[o] as f64;
                            for ci in 0..cin_g {
                                let ic = gi * cin_g + ci;
                                for ky in 0..k {
                                    let iy = oy as isize + ky as isize - p;
                                    if iy < 0 || iy >= side as isize {
                                        continue;
                                    }
                                    for kx in 0..k {
                                        let ix = ox as isize + kx as isize - p;
                                        if ix < 0 || ix >= side as isize {
                                            continue;
                                        }
                                        acc += w[((o * cin_g + ci) * k + ky) * k + kx] as f64
                                            * a[(ic * side + iy as usize) * side + ix as usize]
                                                as f64;
                                    }
                                }
                            }
                            let acc = acc as f32;
                            y[(o * side + oy) * side + ox] = if act { acc.max(0.0) } else { acc };
                        }
                    }
                }
                a = y;
                c = out;
            }
            (Spec::MaxPool3s2 | Spec::AvgPool3s2, _) => {
                let max = matches!(spec, Spec::MaxPool3s2);
                let os = pool_out(side);
                let mut y = vec![0f32; c * os * os];
                for ch in 0..c {
                    for oy in 0..os {
                        for ox in 0..os {
                            let (y0, x0) = (oy * 2, ox * 2);
                            let (y1, x1) = ((y0 + 3).min(side), (x0 + 3).min(side));
                            let mut m = f32::NEG_INFINITY;
                            let mut sum = 0f32;
                            for iy in y0..y1 {
                                for ix in x0..x1 {
                                    let t = a[(ch * side + iy) * side + ix];
                                    m = m.max(t);
                                    sum += t;
                                }
                            }
                            // No padding: the divisor is the window clipped to the input.
                            y[(ch * os + oy) * os + ox] =
                                if max { m } else { sum / ((y1 - y0) * (x1 - x0)) as f32 };
                        }
                    }
                }
                a = y;
                side = os;
            }
            (Spec::GlobalAvg, _) => {
                let n = (side * side) as f32;
                a = (0..c)
                    .map(|ch| a[ch * side * side..(ch + 1) * side * side].iter().sum::<f32>() / n)
                    .collect();
                side = 1;
            }
            _ => unreachable!("layer list and network disagree"),
        }
    }
    a
}

enum Layer {
    Conv(Conv2d, bool),
    Max(MaxPool2d),
    Avg(AvgPool2d),
    Global(AdaptiveAvgPool2d),
}

struct Nin {
    layers: Vec<Layer>,
}

impl Nin {
    fn new(v: Variant, device: &Device) -> Self {
        let mut c = CHANNELS;
        let layers = layers(v)
            .into_iter()
            .map(|l| match l {
                Spec::Conv(_, out, k, g, act) => {
                    let p = k / 2;
                    let conv = Conv2dConfig::new([c, out], [k, k])
                        .with_groups(g)
                        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                        .with_bias(true)
                        .init(device);
                    c = out;
                    Layer::Conv(conv, act)
                }
                Spec::MaxPool3s2 => Layer::Max(
                    MaxPool2dConfig::new([3, 3])
                        .with_strides([2, 2])
                        .with_ceil_mode(true)
                        .init(),
                ),
                Spec::AvgPool3s2 => Layer::Avg(
                    AvgPool2dConfig::new([3, 3])
                        .with_strides([2, 2])
                        .with_count_include_pad(true)
                        .with_ceil_mode(true)
                        .init(),
                ),
                Spec::GlobalAvg => {
                    Layer::Global(AdaptiveAvgPool2dConfig::new([1, 1]).init())
                }
            })
            .collect();
        Nin { layers }
    }

    fn forward(&self, mut x: Tensor<4>) -> Tensor<2> {
        for l in &self.layers {
            x = match l {
                Layer::Conv(conv, true) => relu(conv.forward(x)),
                Layer::Conv(conv, false) => conv.forward(x),
                Layer::Max(p) => p.forward(x),
                Layer::Avg(p) => p.forward(x),
                Layer::Global(p) => p.forward(x),
            };
        }
        let [n, c, _, _] = x.dims();
        x.reshape([n, c])
    }
}

struct Args {
    batch: usize,
    variants: Vec<Variant>,
    rounds: usize,
    warmup: usize,
    api: WgpuBackend,
    device: DeviceKind,
    check_ma: Option<String>,
    list_layers: bool,
    verify: bool,
}

const USAGE: &str = "\
Times NIN-CIFAR and its root variants on burn's wgpu backend (upload, forward, readback).

Usage: burn-nin-bench [OPTIONS]

Options:
  --batch N              images per forward pass [default: 32]
  --variants LIST        comma-separated: orig, root-2, root-4, root-8, root-16
                         [default: orig,root-2,root-4,root-8,root-16]
  --rounds N             timed rounds, variants interleaved in each [default: 5]
  --warmup N             untimed runs per variant first (burn autotunes here) [default: 3]
  --api API              graphics API: vulkan, gl or auto [default: vulkan]
  --device KIND          adapter kind: default, cpu, discrete, integrated or virtual
                         [default: default; CUBECL_WGPU_DEFAULT_DEVICE overrides 'default']
  --check-ma DEEPROOTS   check MA/image and params against `DEEPROOTS zoo list`
  --layers               print each variant's convolutions and their MA, then time
  --verify               check the first and last image's logits against a CPU reference
  -h, --help             this text";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        batch: 32,
        variants: ["orig", "root-2", "root-4", "root-8", "root-16"]
            .iter()
            .map(|s| Variant::parse(s).unwrap())
            .collect(),
        rounds: 5,
        warmup: 3,
        api: WgpuBackend::Vulkan,
        device: DeviceKind::DefaultDevice,
        check_ma: None,
        list_layers: false,
        verify: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        if flag == "--layers" {
            a.list_layers = true;
            continue;
        }
        if flag == "--verify" {
            a.verify = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |s: &str| -> Result<usize, String> {
            s.parse::<usize>()
                .map_err(|_| format!("{flag}: '{s}' is not a number"))
        };
        match flag.as_str() {
            "--batch" => a.batch = num(&value)?,
            "--rounds" => a.rounds = num(&value)?,
            "--warmup" => a.warmup = num(&value)?,
            "--variants" => {
                a.variants = value
                    .split(',')
                    .map(|s| {
                        Variant::parse(s.trim()).ok_or_else(|| format!("unknown variant '{s}'"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--api" => {
                a.api = match value.as_str() {
                    "vulkan" => WgpuBackend::Vulkan,
                    "gl" => WgpuBackend::Gl,
                    "auto" => WgpuBackend::Auto,
                    _ => return Err(format!("unknown API '{value}'")),
                }
            }
            "--device" => {
                a.device = match value.as_str() {
                    "default" => DeviceKind::DefaultDevice,
                    "cpu" => DeviceKind::Cpu,
                    "discrete" => DeviceKind::DiscreteGpu(0),
                    "integrated" => DeviceKind::IntegratedGpu(0),
                    "virtual" => DeviceKind::VirtualGpu(0),
                    _ => return Err(format!("unknown device kind '{value}'")),
                }
            }
            "--check-ma" => a.check_ma = Some(value),
            _ => return Err(format!("unknown option '{flag}'\n\n{USAGE}")),
        }
    }
    if a.batch == 0 || a.rounds == 0 || a.variants.is_empty() {
        return Err("--batch, --rounds and --variants must not be empty or zero".into());
    }
    Ok(a)
}

/// Compares our MA and params with `deeproots zoo list`.
fn check_ma(deeproots: &str, variants: &[Variant]) -> Result<(), String> {
    let out = Command::new(deeproots)
        .args(["zoo", "list"])
        .output()
        .map_err(|e| format!("could not run {deeproots}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    for &v in variants {
        let name = v.zoo_name();
        let row = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))
            .ok_or_else(|| format!("`{deeproots} zoo list` has no {name}"))?;
        let nums: Vec<u64> = row
            .split_whitespace()
            .skip(1)
            .map(|s| s.replace(',', "").parse().unwrap_or(0))
            .collect();
        let (ma, params) = cost(v);
        if nums.len() < 2 || nums[0] != ma || nums[1] != params {
            return Err(format!(
                "{name}: here MA {ma} params {params}, `deeproots zoo list`: {row}"
            ));
        }
    }
    println!(
        "MA/image and params equal `deeproots zoo list` for {}",
        variants
            .iter()
            .map(|v| v.zoo_name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

fn median(t: &mut [f64]) -> f64 {
    t.sort_by(|a, b| a.total_cmp(b));
    let n = t.len();
    if n % 2 == 1 {
        t[n / 2]
    } else {
        (t[n / 2 - 1] + t[n / 2]) / 2.0
    }
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A deterministic input batch in [-1, 1).
fn input(batch: usize) -> Vec<f32> {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    (0..batch * CHANNELS * SIZE * SIZE)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// One timed run: upload the batch, forward, read the logits back. Returns ms and the logits.
///
/// In burn 0.22 `into_data` returns as soon as the read is queued: the `TensorData` holds lazy
/// storage that waits for the device when its bytes are first touched. The clock therefore
/// stops only after the logits are copied out of it; stopping it after `into_data` measures
/// about a millisecond whatever the network.
fn run_once(net: &Nin, x: &[f32], batch: usize, device: &Device) -> (f64, Vec<f32>) {
    let t = Instant::now();
    let data = TensorData::new(x.to_vec(), [batch, CHANNELS, SIZE, SIZE]);
    let y = net.forward(Tensor::<4>::from_data(data, device));
    let logits = y.into_data().try_to_vec::<f32>().expect("f32 logits");
    let ms = t.elapsed().as_secs_f64() * 1e3;
    (ms, logits)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if args.list_layers {
        for &v in &args.variants {
            let (ma, params) = cost_of(v, false);
            println!("{} (MA {}, params {}):", v.zoo_name(), group(ma), group(params));
            cost_of(v, true);
        }
    }
    if let Some(d) = &args.check_ma {
        if let Err(e) = check_ma(d, &args.variants) {
            eprintln!("error: MA check failed: {e}");
            return ExitCode::FAILURE;
        }
    }

    let (device, setup) = match Device::wgpu_options()
        .graphics_api(args.api)
        .device_kind(args.device)
        .init_with_setup()
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: burn could not open a wgpu device: {e}");
            return ExitCode::FAILURE;
        }
    };
    let info = setup.adapter.get_info();
    println!(
        "burn {} wgpu backend on {} ({:?}, {:?}), {} {}, f32, wall clock around upload + forward + readback",
        BURN_VERSION,
        info.name,
        info.backend,
        info.device_type,
        info.driver,
        info.driver_info,
    );
    println!(
        "shader compiler: {}; fusion and autotune on",
        if cfg!(feature = "spirv") {
            "SPIR-V where the adapter allows it, else WGSL (burn feature `vulkan`)"
        } else {
            "WGSL (burn feature `wgpu`)"
        }
    );

    let b = args.batch;
    let x = input(b);
    let nets: Vec<Nin> = args.variants.iter().map(|&v| Nin::new(v, &device)).collect();

    // Warm-up: first runs compile kernels and autotune them for these shapes.
    let t0 = Instant::now();
    for (net, v) in nets.iter().zip(&args.variants) {
        for _ in 0..args.warmup {
            let (_, y) = run_once(net, &x, b, &device);
            assert_eq!(y.len(), b * CLASSES, "{}: logits shape", v.name());
            assert!(y.iter().all(|f| f.is_finite()), "{}: logits", v.name());
        }
    }
    eprintln!(
        "warm-up: {} runs per variant in {:.1} s",
        args.warmup,
        t0.elapsed().as_secs_f64()
    );

    if args.verify {
        let per = CHANNELS * SIZE * SIZE;
        for (net, &v) in nets.iter().zip(&args.variants) {
            let (_, y) = run_once(net, &x, b, &device);
            let mut worst = 0f32;
            for i in [0, b - 1] {
                let r = reference(net, v, &x[i * per..(i + 1) * per]);
                let scale = r.iter().fold(0f32, |m, t| m.max(t.abs())).max(1e-6);
                for (got, want) in y[i * CLASSES..(i + 1) * CLASSES].iter().zip(&r) {
                    worst = worst.max((got - want).abs() / scale);
                }
            }
            println!(
                "{}: logits of images 0 and {} against the CPU reference: max |diff| / max |logit| = {worst:.2e}",
                v.zoo_name(),
                b - 1
            );
            if worst > 1e-5 {
                eprintln!("error: {} does not match the CPU reference", v.zoo_name());
                return ExitCode::FAILURE;
            }
        }
    }

    // Timed rounds, variants interleaved so drift hits all alike.
    let mut times = vec![Vec::new(); nets.len()];
    for _ in 0..args.rounds {
        for (i, net) in nets.iter().enumerate() {
            let (ms, y) = run_once(net, &x, b, &device);
            assert_eq!(y.len(), b * CLASSES);
            times[i].push(ms);
        }
    }

    let in_order = times.clone();
    let base = args
        .variants
        .iter()
        .position(|&v| v == Variant::Orig)
        .map(|i| (median(&mut times[i].clone()), cost(Variant::Orig).0));
    println!(
        "{:<12} {:>5} {:>12} {:>9} {:>10} {:>21} {:>9} {:>8} {:>9} {:>7}",
        "model", "batch", "MA/image", "params", "ms/batch", "[min, max]", "ms/image", "GFLOP/s",
        "time/orig", "MA/orig"
    );
    for (i, &v) in args.variants.iter().enumerate() {
        let t = &mut times[i];
        let med = median(t);
        let (min, max) = (t[0], t[t.len() - 1]);
        let (ma, params) = cost(v);
        let gflops = 2.0 * ma as f64 * b as f64 / (med * 1e-3) / 1e9;
        let (tr, mr) = match base {
            Some((bt, bm)) => (
                format!("{:.2}", med / bt),
                format!("{:.2}", ma as f64 / bm as f64),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<12} {:>5} {:>12} {:>9} {:>10.1} {:>21} {:>9.3} {:>8.2} {:>9} {:>7}",
            v.zoo_name(),
            b,
            group(ma),
            group(params),
            med,
            format!("[{min:.1}, {max:.1}]"),
            med / b as f64,
            gflops,
            tr,
            mr
        );
    }
    println!("rounds: {}, warm-up runs per variant: {}", args.rounds, args.warmup);
    for (v, t) in args.variants.iter().zip(&in_order) {
        let t: Vec<String> = t.iter().map(|ms| format!("{ms:.0}")).collect();
        println!("  {} ms per round, in order: {}", v.zoo_name(), t.join(" "));
    }
    ExitCode::SUCCESS
}
