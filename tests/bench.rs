//! `deeproots bench` and `deeproots profile` write well-formed JSON with consistent totals, on
//! both timer paths, and the plot file. No timing is asserted.

mod common;

use common::{deeproots_ok, deeproots_refuses, gpu, tmp};
use serde_json::Value;

fn bench_json(extra: &[&str]) -> Value {
    let json = tmp(&format!("bench{}.json", extra.len()));
    let plot = tmp(&format!("bench{}.svg", extra.len()));
    let mut args = vec![
        "bench",
        "--arch",
        "nin28",
        "--variants",
        "orig,root-8",
        "--batch",
        "1,2",
        "--min-rounds",
        "1",
        "--max-rounds",
        "2",
        "--seconds",
        "1",
    ];
    args.extend_from_slice(extra);
    args.extend([
        "--json",
        json.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let table = deeproots_ok(&args);
    assert!(table.contains("nin28-root-8"), "{table}");
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("root-8") && svg.trim_end().ends_with("</svg>")
    );
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

fn check_report(v: &Value, timer: &str) {
    assert_eq!(v["timer"], timer);
    assert!(v["adapter"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(v["backend"].is_string() && v["driver"].is_string());
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "2 variants x 2 batches");
    for e in entries {
        for key in [
            "name",
            "batch",
            "multiply_adds",
            "params",
            "median_ms_per_image",
        ] {
            assert!(!e[key].is_null(), "{key} in {e}");
        }
        let ms = e["median_ms_per_image"].as_f64().unwrap();
        assert!(ms > 0.0 && ms.is_finite());
        assert!(
            e["min_ms_per_image"].as_f64().unwrap() <= ms
                && ms <= e["max_ms_per_image"].as_f64().unwrap()
        );
        let ma = e["multiply_adds"].as_f64().unwrap();
        let gflops = e["gflops"].as_f64().unwrap();
        assert!((gflops - 2.0 * ma / (ms * 1e6)).abs() <= 1e-6 * gflops.max(1.0));
        if e["name"] == "nin28" {
            assert_eq!(e["time_ratio"], 1.0);
        }
    }
    let root = entries
        .iter()
        .find(|e| e["name"] == "nin28-root-8")
        .unwrap();
    assert!((root["ma_ratio"].as_f64().unwrap() - 71_594_880.0 / 162_814_848.0).abs() < 1e-9);
}

#[test]
fn bench_writes_the_table_as_json_and_a_plot() {
    let Some(g) = gpu() else { return };
    let v = bench_json(&[]);
    check_report(
        &v,
        if g.adapter().timestamp_query {
            "gpu-timestamps"
        } else {
            "wall-clock"
        },
    );
}

#[test]
fn bench_without_timestamp_queries_uses_the_wall_clock() {
    if gpu().is_none() {
        return;
    }
    let v = bench_json(&["--wall-clock"]);
    check_report(&v, "wall-clock");
}

#[test]
fn profile_layers_add_up_to_the_model() {
    let Some(g) = gpu() else { return };
    if !g.adapter().timestamp_query {
        eprintln!("SKIPPED: the adapter has no timestamp queries");
        return;
    }
    let json = tmp("profile.json");
    deeproots_ok([
        "profile",
        "nin28-root-4",
        "--batch",
        "2",
        "--json",
        json.to_str().unwrap(),
    ]);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let layers = v["layers"].as_array().unwrap();
    let ma: u64 = layers
        .iter()
        .map(|l| l["multiply_adds"].as_u64().unwrap())
        .sum();
    assert_eq!(ma, v["multiply_adds"].as_u64().unwrap());
    assert_eq!(ma, 86_948_736, "nin28-root-4 as the zoo counts it");
    let ms: f64 = layers.iter().map(|l| l["ms"].as_f64().unwrap()).sum();
    assert!((ms - v["total_ms"].as_f64().unwrap()).abs() < 1e-9 && ms > 0.0);
    let share: f64 = layers.iter().map(|l| l["share"].as_f64().unwrap()).sum();
    assert!((share - 1.0).abs() < 1e-9);
    assert!(layers.iter().all(|l| l["bytes"].as_u64().is_some()));
}

#[test]
fn bench_compares_a_layers_group_counts_with_its_dense_form() {
    if gpu().is_none() {
        return;
    }
    let json = tmp("bench-layer.json");
    let table = deeproots_ok([
        "bench",
        "--arch",
        "conv-16x8x8-32-k3",
        "--variants",
        "orig,g4,g16",
        "--batch",
        "2",
        "--min-rounds",
        "1",
        "--max-rounds",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(table.contains("conv-16x8x8-32-k3-g16"), "{table}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["arch"], "conv-16x8x8-32-k3");
    let entries = v["entries"].as_array().unwrap();
    let names: Vec<_> = entries.iter().map(|e| e["variant"].clone()).collect();
    assert_eq!(names, ["orig", "g4", "g16"]);
    for (e, g) in entries.iter().zip([1u64, 4, 16]) {
        // 32 outputs x 8 x 8 pixels x (16 / g inputs x 9 taps).
        assert_eq!(e["multiply_adds"].as_u64(), Some(32 * 64 * 16 / g * 9));
        let (t, m, f) = (
            e["time_ratio"].as_f64().unwrap(),
            e["ma_ratio"].as_f64().unwrap(),
            e["gflops_ratio"].as_f64().unwrap(),
        );
        assert!((m - 1.0 / g as f64).abs() < 1e-12 && (f - m / t).abs() < 1e-9 * f);
        // One round: its ratio is the ratio of the (one-round) medians.
        let r: Vec<f64> = e["time_ratio_rounds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(
            r.iter().all(|&x| (x - t).abs() < 1e-9 * t),
            "{r:?} against {t}"
        );
    }
    // Group counts that do not divide the channels are refused by name.
    let line = deeproots_refuses(["bench", "--arch", "conv-16x8x8-32-k3", "--variants", "g3"]);
    assert!(
        line.contains("conv-16x8x8-32-k3-g3: cannot build the layer")
            && line.contains("groups 3 must divide c_in 16 and c_out 32"),
        "{line}"
    );
    let line = deeproots_refuses([
        "bench",
        "--arch",
        "conv-16x8x8-32-k3",
        "--variants",
        "root-2",
    ]);
    assert!(
        line.contains("unknown variant 'root-2' of a layer"),
        "{line}"
    );
}
