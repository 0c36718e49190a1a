// Copies onnxruntime-web's runtime files (the ES module and its WebAssembly) from node_modules into vendor/ort/,
// where the page loads them: the page then needs nothing from the network. `make web` runs `npm ci` and this.
// vendor/ is git-ignored (the .wasm files are 12-23 MB).
import { copyFileSync, mkdirSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "node_modules", "onnxruntime-web", "dist");
const out = join(here, "vendor", "ort");
const FILES = [
  // WebAssembly (SIMD, threads where the page is cross-origin isolated): the default
  "ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm",
  // WebGPU (optional, `?ep=webgpu` where the browser has it)
  "ort.webgpu.min.mjs", "ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm",
];

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
let total = 0;
for (const name of FILES) {
  copyFileSync(join(dist, name), join(out, name));
  total += statSync(join(out, name)).size;
}
console.log(`copied ${FILES.length} onnxruntime-web files (${(total / 1e6).toFixed(1)} MB) into ${out}`);
