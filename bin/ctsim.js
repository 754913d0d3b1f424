#!/usr/bin/env node
// Thin shim: all logic lives in src/cli. It runs the bundle `npm ci` builds (dist/ctsim.mjs, `npm run build`:
// one esbuild file, start-up ~0.15 s) when that bundle is newer than every file under src/, and otherwise loads
// the TypeScript sources through tsx (~0.45 s), so an edited source is never shadowed by a stale bundle.
// CTSIM_FROM_SOURCE=1 forces the sources.
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bundle = join(root, "dist", "ctsim.mjs");

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    const t = e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs;
    if (t > newest) newest = t;
  }
  return newest;
}

function bundleIsFresh() {
  if (process.env.CTSIM_FROM_SOURCE === "1" || !existsSync(bundle)) return false;
  try {
    return statSync(bundle).mtimeMs >= newestMtime(join(root, "src"));
  } catch {
    return false;
  }
}

let main;
if (bundleIsFresh()) {
  ({ main } = await import(bundle));
} else {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import("../src/cli/main.ts"));
}
process.exitCode = await main(process.argv.slice(2));
