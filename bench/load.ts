/**
 * Cold-start benchmark for rule loading: how long `loadRuleset` (src/netfilter/parse_script.ts) takes on the
 * kube-proxy-shaped rule set of bench/trace.ts (bench/kube_rules.ts; 9,996 rules, 13,756 lines, 1.4 MB by
 * default) the first time it runs in a fresh process, as `ctsim trace` runs it, and once V8 has warmed up.
 *
 *   npx tsx bench/load.ts [--rules 10000] [--endpoints 2] [--procs 15] [--warm-runs 5] [--keep] [--cpu-prof DIR]
 *
 * The parent writes the rule text to os.tmpdir() and bundles this file with esbuild, as `npm run build` bundles the
 * CLI (timings under tsx are dominated by transpiling), then starts `--procs` fresh `node` processes on the
 * bundle. Each child reads the file (not timed), times its first `loadRuleset(text, { file })` call ("first run":
 * the code still cold, mostly interpreted), then `--warm-runs` more calls, the last of which is the "warm" figure.
 * Reported: the median over the processes of each, the spread of the first run, and the median CPU time of the
 * first run (every thread: V8 compiles and collects garbage on helper threads; steadier than wall time on a busy
 * machine), and that of the main thread alone (Linux: /proc schedstat; the steadiest figure when other processes
 * compete for the CPUs). `--cpu-prof DIR` passes
 * `--cpu-prof --cpu-prof-interval 100` to the children (profiles in DIR). Files go to os.tmpdir() and are deleted
 * unless --keep.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadRuleset } from "../src/netfilter/parse_script";
import { ruleCount } from "../src/netfilter/ruleset";
import { kubeRulesText, servicesFor } from "./kube_rules";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const strArg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};

interface ChildResult {
  /** Wall ms of the first call. */
  readonly first: number;
  /** CPU ms (user + system, every thread of the process) of the first call. */
  readonly firstCpu: number;
  /** CPU ms of the main thread alone in the first call (Linux schedstat), undefined elsewhere. */
  readonly firstMain?: number;
  /** Wall ms of the last warm call. */
  readonly warm: number;
  readonly rules: number;
  readonly errors: number;
}

/** Nanoseconds the main thread has run (Linux /proc schedstat), undefined when not available. */
function mainThreadNs(): number | undefined {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, "utf8").split(" ")[0]);
  } catch {
    return undefined;
  }
}

/** In a child: time the first call and the warm calls on the file. */
function child(path: string, warmRuns: number): void {
  const text = readFileSync(path, "utf8");
  const m0 = mainThreadNs();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const r = loadRuleset(text, { file: path });
  const first = Number(process.hrtime.bigint() - t0) / 1e6;
  const c1 = process.cpuUsage(c0);
  const m1 = mainThreadNs();
  const firstCpu = (c1.user + c1.system) / 1e3;
  let warm = first;
  for (let k = 0; k < warmRuns; k++) {
    const t = process.hrtime.bigint();
    loadRuleset(text, { file: path });
    warm = Number(process.hrtime.bigint() - t) / 1e6;
  }
  const out: ChildResult = {
    first,
    firstCpu,
    ...(m0 !== undefined && m1 !== undefined ? { firstMain: (m1 - m0) / 1e6 } : {}),
    warm,
    rules: ruleCount(r.ruleset),
    errors: r.errors.length,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  const endpoints = Math.max(1, arg("--endpoints", 2));
  const services = servicesFor(arg("--rules", 10_000), endpoints);
  const procs = arg("--procs", 15);
  const warmRuns = arg("--warm-runs", 5);
  const prof = strArg("--cpu-prof");
  const base = join(tmpdir(), `ctsim-bench-load-${process.pid}`);
  const rulesPath = `${base}.rules.v4`;
  const bundlePath = `${base}.mjs`;
  const text = kubeRulesText(services, endpoints);
  writeFileSync(rulesPath, text);
  try {
    const { buildSync } = await import("esbuild");
    buildSync({
      entryPoints: [fileURLToPath(import.meta.url)],
      bundle: true,
      platform: "node",
      format: "esm",
      packages: "external",
      logLevel: "warning",
      outfile: bundlePath,
    });
    const results: ChildResult[] = [];
    for (let k = 0; k < procs; k++) {
      const flags = prof ? ["--cpu-prof", "--cpu-prof-interval", "100", "--cpu-prof-dir", prof] : [];
      const r = spawnSync(
        process.execPath,
        [...flags, bundlePath, "--child", rulesPath, "--warm-runs", String(warmRuns)],
        { encoding: "utf8" },
      );
      if (r.status !== 0) throw new Error(`child exited ${r.status}: ${r.stderr}`);
      results.push(JSON.parse(r.stdout) as ChildResult);
    }
    const firsts = results.map((r) => r.first);
    const { rules, errors } = results[0];
    const lines = text.split("\n").length - 1;
    console.log(
      `${rules} rules, ${lines} lines, ${(text.length / 1e6).toFixed(2)} MB, ${errors} errors; ${procs} fresh processes`,
    );
    console.log(
      `first run: median ${median(firsts).toFixed(1)} ms (min ${Math.min(...firsts).toFixed(1)}, max ${Math.max(...firsts).toFixed(1)})`,
    );
    const mains = results.flatMap((r) => (r.firstMain === undefined ? [] : [r.firstMain]));
    console.log(
      `first run CPU time: median ${median(results.map((r) => r.firstCpu)).toFixed(1)} ms` +
        (mains.length
          ? `, main thread ${median(mains).toFixed(1)} ms (min ${Math.min(...mains).toFixed(1)})`
          : ""),
    );
    console.log(`warm (run ${warmRuns + 1}): median ${median(results.map((r) => r.warm)).toFixed(1)} ms`);
  } finally {
    if (process.argv.includes("--keep")) console.log(`kept ${rulesPath} ${bundlePath}`);
    else for (const p of [rulesPath, bundlePath]) unlinkSync(p);
  }
}

const childAt = process.argv.indexOf("--child");
if (childAt > 0) child(process.argv[childAt + 1], arg("--warm-runs", 5));
else await main();
