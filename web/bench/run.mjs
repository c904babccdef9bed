// Runs the speed comparison page (web/bench/) in headless Chromium and prints a table.
//
//   node web/bench/run.mjs [--models nin,nin-root-8] [--providers webgpu,wasm,deeproots]
//       [--builds default,webgpu] [--runs 10] [--warmup 3] [--threads 2]
//       [--deeproots PATH] [--chromium /usr/bin/chromium] [--timeout 900] [--out FILE.json]
//
// Needs the files web/bench/prepare.sh writes (web/generated/): the ONNX models and the
// deeproots model files. GFLOP/s counts 2 FLOPs per multiply-add, the multiply-adds being
// `deeproots inspect <model> --json`'s (binary: --deeproots, else $DEEPROOTS, else
// target/release/deeproots). The page is loaded once per ORT-web build (--builds): `default` is
// the package's main entry (JSEP WebGPU provider and the wasm provider), `webgpu` is
// `onnxruntime-web/webgpu` (the C++ WebGPU provider); the deeproots rows run in the first load.
// The JSON of every load, with the adapter, goes to --out (default web/generated/bench-results.json)
// and a screenshot of the last page beside it.

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { launchChromium } from "../chromium.mjs";
import { startServer } from "../serve.mjs";

const WEB = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const REPO = path.dirname(WEB);
const GENERATED = path.join(WEB, "generated");

const { values: opt } = parseArgs({
  options: {
    models: { type: "string", default: "nin,nin-root-8" },
    providers: { type: "string", default: "webgpu,wasm,deeproots,deeproots-tuned" },
    builds: { type: "string", default: "default,webgpu" },
    runs: { type: "string", default: "10" },
    warmup: { type: "string", default: "3" },
    threads: { type: "string", default: "2" },
    deeproots: { type: "string", default: process.env.DEEPROOTS ?? path.join(REPO, "target/release/deeproots") },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    timeout: { type: "string", default: "900" },
    out: { type: "string", default: path.join(GENERATED, "bench-results.json") },
    verbose: { type: "boolean", default: false },
  },
});
const models = opt.models.split(",").filter(Boolean);
const builds = opt.builds.split(",").filter(Boolean);

for (const m of models) {
  for (const f of [`onnx/${m}.onnx`, `models/${m}.safetensors`]) {
    if (!existsSync(path.join(GENERATED, f))) {
      console.error(`error: web/generated/${f} is missing: run web/bench/prepare.sh first`);
      process.exit(1);
    }
  }
}

/** Multiply-adds per image of each model, from `deeproots inspect --json` (null when unavailable). */
function multiplyAdds(model) {
  try {
    const json = execFileSync(opt.deeproots, ["inspect", path.join(GENERATED, "models", `${model}.safetensors`), "--json"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    return JSON.parse(json).multiply_adds;
  } catch (e) {
    console.error(`warning: ${opt.deeproots} inspect failed for ${model} (${e.message.split("\n")[0]}); no GFLOP/s`);
    return null;
  }
}
const mas = Object.fromEntries(models.map((m) => [m, multiplyAdds(m)]));

const server = await startServer({ port: 0 });
const base = `http://127.0.0.1:${server.address().port}`;
const userDataDir = mkdtempSync(path.join(tmpdir(), "deeproots-bench-chromium-"));
const context = await launchChromium(chromium, userDataDir, { executablePath: opt.chromium });

const loads = [];
let exitCode = 0;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => opt.verbose && console.error(`[page ${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
  const browserVersion = context.browser()?.version() ?? null;
  for (const [i, build] of builds.entries()) {
    // deeproots does not depend on the ORT build: time it in the first load only.
    const providers = opt.providers.split(",").filter((p) => p && (i === 0 || !p.startsWith("deeproots")));
    if (!providers.length) continue;
    const q = new URLSearchParams({ models: opt.models, providers: providers.join(","), runs: opt.runs, warmup: opt.warmup, threads: opt.threads, build });
    console.error(`loading ${base}/bench/?${q}`);
    await page.goto(`${base}/bench/?${q}`);
    await page.waitForFunction(() => document.getElementById("results")?.dataset.state === "done", null, {
      timeout: Number(opt.timeout) * 1000,
      polling: 500,
    });
    const r = JSON.parse(await page.locator("#results").textContent());
    r.browser_version = browserVersion;
    loads.push(r);
    for (const e of r.errors) console.error(`error (${build}): ${e}`);
    if (r.errors.length) exitCode = 1;
  }
  mkdirSync(path.dirname(opt.out), { recursive: true });
  await page.screenshot({ path: opt.out.replace(/\.json$/, "") + ".png", fullPage: true });
} finally {
  await context.close();
  server.close();
  rmSync(userDataDir, { recursive: true, force: true });
}

const first = loads[0] ?? {};
const a = first.adapter ?? {};
console.log(`browser: Chromium ${first.browser_version ?? "?"}; cross-origin isolated: ${first.cross_origin_isolated}; hardware threads: ${first.hardware_concurrency}`);
console.log(`onnxruntime-web ${first.ort_version ?? "?"}`);
console.log(
  a.error
    ? `WebGPU adapter: none (${a.error})`
    : `WebGPU adapter: vendor "${a.vendor}", architecture "${a.architecture}", device "${a.device}", description "${a.description}"` +
        (a.isFallbackAdapter !== undefined ? `, fallback ${a.isFallbackAdapter}` : ""),
);

const rows = loads.flatMap((l) => l.rows);
const label = (r) =>
  r.provider === "deeproots" ? "deeproots (wasm, WebGPU)"
  : r.provider === "deeproots-tuned" ? "deeproots (wasm, WebGPU, tuned)"
  : r.provider === "wasm" ? `ort wasm (${r.threads} thread${r.threads === 1 ? "" : "s"})`
  : `ort ${r.provider} (${r.build === "webgpu" ? "C++ EP, ort.webgpu" : "JSEP, ort"})`;
const table = [["model", "runtime", "median ms", "min ms", "GFLOP/s", "rel L2 vs ort wasm"]];
for (const r of rows) {
  const ma = mas[r.model];
  const gflops = r.median_ms && ma ? ((2 * ma) / (r.median_ms * 1e6)).toFixed(3) : "";
  table.push([
    r.model,
    label(r),
    r.median_ms !== undefined ? r.median_ms.toFixed(2) : (r.skipped ? "skipped" : "error"),
    r.min_ms !== undefined ? r.min_ms.toFixed(2) : "",
    gflops,
    r.rel_l2_vs_wasm != null ? r.rel_l2_vs_wasm.toExponential(1) : "",
  ]);
}
const widths = table[0].map((_, c) => Math.max(...table.map((row) => String(row[c]).length)));
for (const [i, row] of table.entries()) {
  console.log(row.map((v, c) => (c < 2 ? String(v).padEnd(widths[c]) : String(v).padStart(widths[c]))).join("  "));
  if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
}
for (const r of rows.filter((r) => r.provider === "deeproots" && r.adapter)) console.log(`deeproots on ${r.model}: adapter ${r.adapter}`);
for (const r of rows.filter((r) => r.kernels)) console.log(`deeproots tuned on ${r.model} (${r.load_ms.toFixed(0)} ms to load and tune): ${r.kernels}`);
for (const r of rows.filter((r) => r.skipped)) console.log(`(${r.model} / ${r.provider}: ${r.skipped})`);

writeFileSync(opt.out, JSON.stringify({ multiply_adds: mas, loads }, null, 2) + "\n");
console.error(`wrote ${path.relative(REPO, opt.out)} and its screenshot`);
process.exit(exitCode);
