// End-to-end test of the demo page in headless Chromium (SwiftShader WebGPU):
//
//   node web/test/e2e.mjs [--deeproots PATH] [--chromium /usr/bin/chromium] [--screenshot FILE]
//
// For each shipped Fashion-MNIST model (models/manifest.json) the page loads the model file, runs the 16 test images of
// its reference file (models/<name>.reference.safetensors) in one batch, and the logits must equal
// the native engine's on the same images (`deeproots run --input`, rel L2 <= 1e-4) with the same
// predicted classes. The page's own preprocessing of the raw test images (pixelsInput) must give
// the reference inputs, and clicking a test image must show the native top class. A screenshot of
// the page is written (default web/generated/e2e.png). Exit code 0 only when every check passes.
//
// Needs web/pkg (web/build.sh), the native binary (cargo build --release) and playwright-core
// (npm ci in web/test).

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { gunzipSync } from "node:zlib";
import { chromium } from "playwright-core";
import { readHeader, readSafetensors, relL2 } from "../safetensors.js";
import { launchChromium } from "../chromium.mjs";
import { startServer } from "../serve.mjs";

const WEB = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const REPO = path.dirname(WEB);
const { values: opt } = parseArgs({
  options: {
    deeproots: { type: "string", default: process.env.DEEPROOTS ?? path.join(REPO, "target/release/deeproots") },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    screenshot: { type: "string", default: path.join(WEB, "generated", "e2e.png") },
    models: { type: "string" }, // comma-separated; default: every model of models/manifest.json
    fashion: { type: "string", default: "/usr/share/datasets/fashion-mnist" },
  },
});

const failures = [];
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
}

const argmax = (a, from, n) => {
  let best = from;
  for (let i = from; i < from + n; i++) if (a[i] > a[best]) best = i;
  return best - from;
};

/** The first `n` Fashion-MNIST test images as 28x28 gray pixels. */
function testImages(n) {
  const raw = gunzipSync(readFileSync(path.join(opt.fashion, "t10k-images-idx3-ubyte.gz")));
  return Array.from({ length: n }, (_, i) => Array.from(raw.subarray(16 + i * 784, 16 + (i + 1) * 784)));
}

const tmp = mkdtempSync(path.join(tmpdir(), "deeproots-e2e-"));
const server = await startServer({ port: 0, host: "127.0.0.1" });
const url = `http://127.0.0.1:${server.address().port}/`;
// A fresh profile each time: nothing cached from an earlier run.
const browser = await launchChromium(chromium, path.join(tmp, "profile"), {
  executablePath: opt.chromium,
  viewport: { width: 1000, height: 820 },
});
try {
  const page = browser.pages()[0] ?? (await browser.newPage());
  page.on("console", (m) => console.log(`  [page ${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => console.log(`  [page error] ${e.message}`));
  await page.goto(url);
  await page.evaluate(() => window.demo.ready);
  const adapter = await page.locator("#adapter").textContent();
  console.log(`adapter: ${adapter}`);

  const names = opt.models
    ? opt.models.split(",").filter(Boolean)
    : JSON.parse(readFileSync(path.join(REPO, "models", "manifest.json"), "utf8")).map((m) => m.name);
  for (const name of names) {
    const modelFile = path.join(REPO, "models", `${name}.safetensors`);
    const refFile = path.join(REPO, "models", `${name}.reference.safetensors`);
    const nativeOut = path.join(tmp, `${name}.native.safetensors`);
    execFileSync(opt.deeproots, ["run", modelFile, "--input", refFile, "--output", nativeOut], { stdio: "inherit" });
    const ref = readSafetensors(readFileSync(refFile));
    const native = readSafetensors(readFileSync(nativeOut)).logits.data;
    const n = ref.image.shape[0];
    const classes = native.length / n;

    await page.evaluate((m) => window.demo.load(m), name);
    const web = await page.evaluate(([x, b]) => window.demo.logits(x, b), [Array.from(ref.image.data), n]);
    const err = relL2(web, native);
    check(web.length === native.length && err <= 1e-4, `${name}: browser logits vs native, rel L2 ${err.toExponential(2)} (<= 1e-4)`);
    let same = 0;
    for (let i = 0; i < n; i++) same += argmax(web, i * classes, classes) === argmax(native, i * classes, classes);
    check(same === n, `${name}: predicted classes equal on ${same}/${n} images`);
    console.log(`     (PyTorch reference vs browser: rel L2 ${relL2(web, ref.logits.data).toExponential(2)})`);

    // Loaded with kernels tuned on this adapter: the same logits, whichever kernels won.
    await page.evaluate((m) => window.demo.load(m, true), name);
    const tuning = await page.evaluate(() => window.demo.tuning());
    const tuned = await page.evaluate(([x, b]) => window.demo.logits(x, b), [Array.from(ref.image.data), n]);
    const terr = relL2(tuned, native);
    check(tuning.length > 0 && terr <= 1e-4, `${name}: tuned (${tuning.map((l) => l.chosen).join(" ")}) vs native, rel L2 ${terr.toExponential(2)} (<= 1e-4)`);
    await page.evaluate((m) => window.demo.load(m), name);

    // The page's preprocessing of the raw images gives the reference inputs.
    let worst = 0;
    const images = testImages(n);
    for (let i = 0; i < n; i++) {
      const x = await page.evaluate((px) => window.demo.pixelsInput(px), images[i]);
      for (let k = 0; k < x.length; k++) worst = Math.max(worst, Math.abs(x[k] - ref.image.data[i * x.length + k]));
    }
    check(worst <= 1e-5, `${name}: pixelsInput of the raw test images vs the reference inputs, max |diff| ${worst.toExponential(2)}`);

    // The user's path: click a test image, read the top class off the page.
    await page.evaluate(() => window.demo.classifySample(0));
    const shown = await page.locator("#top tbody tr td").first().textContent();
    const graph = JSON.parse(readHeader(readFileSync(modelFile)).header.__metadata__["deeproots.graph"]);
    const want = graph.labels[argmax(native, 0, classes)];
    check(shown === want, `${name}: clicking test image 0 shows '${shown}' (native top-1 '${want}')`);
    const time = await page.locator("#time").textContent();
    console.log(`     time per inference shown: ${time}`);
  }
  // EfficientNet-Lite0 when it has been converted into data/: a photo through the page's file
  // input (decoded and resized in wasm) gives the native engine's top class and probability.
  const effnet = path.join(REPO, "data", "efficientnet-lite0.safetensors");
  const photo = path.join(REPO, "data", "imagenet", "imagenet_03_990.jpg");
  if (existsSync(effnet) && existsSync(photo)) {
    await page.evaluate(() => window.demo.load("efficientnet-lite0"));
    await page.setInputFiles("#file", photo);
    await page.waitForFunction(() => document.querySelector("#top tbody tr td.p"), null, { timeout: 300000 });
    const label = await page.locator("#top tbody tr td").first().textContent();
    const prob = parseFloat(await page.locator("#top tbody tr td.p").first().textContent()) / 100;
    const native = JSON.parse(execFileSync(opt.deeproots, ["run", effnet, photo, "--json"], { encoding: "utf8" }))[0].top[0];
    check(label === native.label && Math.abs(prob - native.probability) < 1e-3,
      `efficientnet-lite0: ${path.basename(photo)} through the file input: '${label}' ${(100 * prob).toFixed(1)}% (native '${native.label}' ${(100 * native.probability).toFixed(1)}%)`);
  } else {
    console.log("skip efficientnet-lite0: data/efficientnet-lite0.safetensors not converted");
  }
  mkdirSync(path.dirname(opt.screenshot), { recursive: true });
  await page.screenshot({ path: opt.screenshot, fullPage: true });
  console.log(`screenshot: ${opt.screenshot}`);
} finally {
  await browser.close();
  server.close();
  rmSync(tmp, { recursive: true, force: true });
}
if (failures.length) {
  console.error(`${failures.length} check(s) failed`);
  process.exit(1);
}
console.log("all browser checks passed");
