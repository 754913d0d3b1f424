#!/usr/bin/env node
// Thin shim: all logic lives in src/cli. It runs the bundle `npm ci` builds (dist/ctsim.mjs, `npm run build`:
// one esbuild file, start-up ~0.15 s) when that bundle is newer than every file under src/, and otherwise loads
// the TypeScript sources through tsx (~0.45 s), so an edited source is never shadowed by a stale bundle.
// CTSIM_FROM_SOURCE=1 forces the sources.
import { spawn } from "node:child_process";
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

// The packet-replaying commands allocate short-lived objects at a high rate: with V8's default 16 MB semi-spaces
// a 1,000,000-packet trace runs ~400 scavenges, with 64 MB ~130 (bench/trace.ts: ~10% less wall time). Heap
// sizes are fixed when the process starts, so these commands run themselves once more with the flag (one extra
// node start-up, ~40 ms). CTSIM_NO_RESPAWN=1 keeps the current process.
const HEAVY = new Set(["trace", "run"]);
const command = process.argv.slice(2).find((a) => !a.startsWith("-"));
if (
  HEAVY.has(command) &&
  process.env.CTSIM_NO_RESPAWN !== "1" &&
  !process.execArgv.some((a) => a.startsWith("--max-semi-space-size"))
) {
  const args = [...process.execArgv, "--max-semi-space-size=64", fileURLToPath(import.meta.url)];
  const child = spawn(process.execPath, [...args, ...process.argv.slice(2)], { stdio: "inherit" });
  // Signals sent to this process alone (kill PID, a CI timeout) go on to the child; a terminal's Ctrl-C reaches
  // both, and the child's exit decides.
  const forward = (signal) => child.kill(signal);
  const signals = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const s of signals) process.on(s, forward);
  const started = await new Promise((resolve) => {
    child.once("spawn", () => resolve(true));
    child.once("error", () => resolve(false));
  });
  if (started) {
    const [code, signal] = await new Promise((resolve) => child.once("exit", (c, s) => resolve([c, s])));
    for (const s of signals) process.off(s, forward);
    if (signal) process.kill(process.pid, signal);
    process.exit(code ?? 1);
  }
  for (const s of signals) process.off(s, forward);
  // could not start a child: carry on in this process
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
