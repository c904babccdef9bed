// A static file server for the demo page and the speed comparison, with no dependencies.
//
//   node web/serve.mjs [PORT]          (or PORT=8080 node web/serve.mjs; default 8080)
//
// Bound to 127.0.0.1 only. Serves web/ at /, the repository's models/ at /models/ and data/
// (EfficientNet-Lite0) at /data/, and the exported ONNX files (web/generated/onnx/) at /onnx/.
// Every response carries Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp: the page
// is then cross-origin isolated, which SharedArrayBuffer (wasm threads) and precise timers need.
//
// Imported, `startServer({ port, host })` returns a promise of the listening http.Server
// (port 0 picks a free one; read it back from server.address().port).

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const WEB = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.dirname(WEB);

/** URL prefix -> directory; the longest matching prefix wins. */
export const ROOTS = {
  "/models/": path.join(REPO, "models"),
  "/onnx/": path.join(WEB, "generated", "onnx"),
  // EfficientNet-Lite0 and the photos, when scripts/fetch_imagenet_assets.sh has run.
  "/data/": path.join(REPO, "data"),
  "/": WEB,
};

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".wasm": "application/wasm",
  ".safetensors": "application/octet-stream",
  ".onnx": "application/octet-stream",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".svg": "image/svg+xml",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/plain; charset=utf-8",
};

const ISOLATION = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Cache-Control": "no-store",
};

/** The file a URL path names, or null when it falls outside every root. */
function resolve(urlPath) {
  const prefix = Object.keys(ROOTS)
    .filter((p) => urlPath.startsWith(p))
    .sort((a, b) => b.length - a.length)[0];
  if (!prefix) return null;
  const root = ROOTS[prefix];
  const file = path.resolve(root, "." + path.posix.normalize("/" + urlPath.slice(prefix.length)));
  // normalize() already folds "..", but check the result stays inside its root anyway.
  return file === root || file.startsWith(root + path.sep) ? file : null;
}

function send(res, status, text) {
  res.writeHead(status, { ...ISOLATION, "Content-Type": "text/plain; charset=utf-8" });
  res.end(text + "\n");
}

async function handle(req, res) {
  if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "GET or HEAD only");
  let urlPath;
  try {
    urlPath = decodeURIComponent(new URL(req.url, "http://127.0.0.1").pathname);
  } catch {
    return send(res, 400, "bad URL");
  }
  let file = resolve(urlPath);
  if (!file) return send(res, 404, `not found: ${urlPath}`);
  let info = await stat(file).catch(() => null);
  if (info?.isDirectory()) {
    if (!urlPath.endsWith("/")) {
      res.writeHead(301, { ...ISOLATION, Location: urlPath + "/" });
      return res.end();
    }
    file = path.join(file, "index.html");
    info = await stat(file).catch(() => null);
  }
  if (!info?.isFile()) return send(res, 404, `not found: ${urlPath}`);
  res.writeHead(200, {
    ...ISOLATION,
    "Content-Type": MIME[path.extname(file).toLowerCase()] ?? "application/octet-stream",
    "Content-Length": info.size,
  });
  if (req.method === "HEAD") return res.end();
  createReadStream(file)
    .on("error", () => res.destroy())
    .pipe(res);
}

/** Start serving; resolves with the listening server. */
export function startServer({ port = 8080, host = "127.0.0.1" } = {}) {
  const server = http.createServer((req, res) =>
    handle(req, res).catch((e) => send(res, 500, String(e))),
  );
  return new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, host, () => ok(server));
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`error: port ${process.argv[2] ?? process.env.PORT} is not 0..65535`);
    process.exit(2);
  }
  const server = await startServer({ port }).catch((e) => {
    console.error(`error: cannot listen on 127.0.0.1:${port}: ${e.message}`);
    process.exit(1);
  });
  const { port: bound } = server.address();
  console.log(`serving ${WEB} (and /models/, /onnx/) on http://127.0.0.1:${bound}/`);
}
