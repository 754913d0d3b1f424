/**
 * The fresh process of `bench/trace.ts --mode blocks` (run as a bundle; see there):
 *
 *   node <bundle> RULES HOST CAPTURE BLOCK SEED
 *
 * Sets itself up as `ctsim trace --quiet` does (the same garbage-collector flag; host and rules loaded with V8's
 * optimizing compiler held back), streams the capture through HostSim (quiet, each packet handed over, decoding
 * included) and prints the milliseconds of each block of BLOCK packets, and of the whole, as JSON on stdout.
 */
import { closeSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { loadWithoutOptimizing, tuneGarbageCollector } from "../src/cli/commands/trace";
import { parseHostFile } from "../src/host/hostfile";
import { loadRuleset } from "../src/netfilter/parse_script";
import { HostSim } from "../src/sim/host";
import type { Frame } from "../src/wire/capture";
import { CaptureReader } from "../src/wire/capture";

const [rulesPath, hostPath, capPath, blockArg, seedArg] = process.argv.slice(2);
const BLOCK = Number(blockArg);
const SEED = Number(seedArg);

tuneGarbageCollector();
const sim = loadWithoutOptimizing(() => {
  const loaded = loadRuleset(readFileSync(rulesPath, "utf8"), { file: rulesPath });
  if (loaded.errors.length) throw new Error(`rules: ${loaded.errors[0].message}`);
  const host = parseHostFile(readFileSync(hostPath, "utf8"), hostPath);
  return new HostSim({ host, ruleset: loaded.ruleset, seed: SEED, quiet: true });
});
const reader = new CaptureReader({ file: capPath });
const blocks: number[] = [];
let n = 0;
let notLeft = 0;
const start = performance.now();
let last = start;
const sink = {
  push(f: Frame) {
    if (f.kind !== "packet") return;
    const r = sim.receive(f.packet, { consume: true });
    if (r.packets[0].fate?.kind !== "left") notLeft++;
    if (++n % BLOCK === 0) {
      const t = performance.now();
      blocks.push(t - last);
      last = t;
    }
  },
};
const fd = openSync(capPath, "r");
try {
  for (;;) {
    // A fresh buffer per read, handed over as the CLI's read stream hands over its chunks.
    const buf = new Uint8Array(1 << 20);
    const k = readSync(fd, buf, 0, buf.length, null);
    if (k === 0) break;
    reader.pushTo(buf.subarray(0, k), true, sink);
  }
  for (const f of reader.end()) sink.push(f);
} finally {
  closeSync(fd);
}
const ms = performance.now() - start;
writeSync(1, JSON.stringify({ blocks, packets: n, ms, notLeft }) + "\n");
