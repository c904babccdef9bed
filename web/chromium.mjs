// Headless Chromium with a WebGPU adapter on any machine (SwiftShader where there is no GPU), for
// the browser test and the speed comparison. Each caller passes its own playwright-core import.
//
//   const context = await launchChromium(chromium, userDataDir, { executablePath, viewport });

/** The flags: WebGPU on (SwiftShader allowed), and nothing that reaches the network on its own. */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--enable-unsafe-webgpu",
  "--enable-unsafe-swiftshader",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** A persistent context (how Playwright takes --user-data-dir) on a fresh profile folder. */
export function launchChromium(chromium, userDataDir, { executablePath = "/usr/bin/chromium", viewport } = {}) {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    viewport,
    args: CHROMIUM_ARGS,
  });
}
