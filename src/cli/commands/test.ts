/**
 * `ctsim test FILES...`: run check files (src/check/schema.ts for the format) and print, per case, PASS or a
 * per-field diff of expected vs actual with the check-file line of each expectation. `--junit out.xml` writes
 * JUnit XML (src/check/junit.ts), `--json out.json` the run as JSON (src/check/json.ts; `-` for stdout).
 * Exit status: 0 all passed, 1 an expectation failed, 2 bad input (a check file, host, rules or packet line
 * with an error, printed as file:line:column).
 */
import { readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { Chalk } from "chalk";
import type { CliIo } from "../main";
import { CliExit } from "../main";
import { runCheckFiles } from "../../check/run";
import { formatFile, formatTotals } from "../../check/format";
import type { Style } from "../../check/format";
import { junitXml } from "../../check/junit";
import { runJson } from "../../check/json";

interface TestCliOptions {
  junit?: string;
  json?: string;
  quiet?: boolean;
}

const EXAMPLES = `
Examples:
  ctsim test examples/seed001/seed001.test.yaml
      reproduces the seed 001 leak: the SYN is masqueraded, the bare FIN is INVALID and leaves un-NATed
  ctsim test examples/*/*.test.yaml --junit report.xml --json report.json

Check file (paths are relative to it):
  host: host.yaml
  rules: rules.v4
  cases:
    - name: the FIN is dropped, never leaves un-NATed
      packets: |
        eth0 In IP 192.168.100.105.1914 > 2.2.2.2.80: Flags [F.], seq 1, ack 1, win 512, length 0
      expect:
        - packet: 1
          ctstate: INVALID
          fate: dropped          # or: forwarded / local / rejected
          rule: filter:FORWARD:1
          leaves: none           # or {src: ...} (every packet that leaves) or a list (exactly these)
  Expectation keys: ctstate, ctinfo, conntrack, fate, rule, matched, nat, leaves (see src/check/schema.ts).

Exit status: 0 all cases passed, 1 some expectation failed, 2 bad input.
`;

export function register(program: Command, io: CliIo): void {
  program
    .command("test")
    .description("run check files (YAML: host, rules, cases of packets with expectations), for CI")
    .argument("<files...>", "check files")
    .option("--junit <out.xml>", "write JUnit XML")
    .option("--json <out.json>", "write the results as JSON (- for stdout)")
    .option("--quiet", "print only failures and the totals")
    .addHelpText("after", EXAMPLES)
    .action((files: string[], opts: TestCliOptions) => {
      testCommand(files, opts, io);
    });
}

function testCommand(files: string[], opts: TestCliOptions, io: CliIo): void {
  const color = process.stdout.isTTY === true && !process.env.NO_COLOR && opts.json !== "-";
  const c = new Chalk({ level: color ? 1 : 0 });
  const style: Style = {
    pass: c.green,
    fail: c.red.bold,
    dim: c.dim,
    head: c.bold,
    want: c.green,
    got: c.red,
  };
  const sources = new Map<string, string[]>();
  const summary = runCheckFiles(files, {
    readFile: (p) => {
      const text = readFileSync(p, "utf8");
      if (files.includes(p)) sources.set(p, text.split(/\r?\n/));
      return text;
    },
    now: () => performance.now(),
  });
  const out = opts.json === "-" ? io.stderr : io.stdout;
  for (const f of summary.files) {
    const shown = opts.quiet ? { ...f, cases: f.cases.filter((x) => x.status !== "passed") } : f;
    if (opts.quiet && shown.cases.length === 0 && f.errors.length === 0) continue;
    out(formatFile(shown, style, sources.get(f.file)));
  }
  out(formatTotals(summary, style));
  if (opts.junit) writeFileSync(opts.junit, junitXml(summary));
  if (opts.json) {
    const text = `${JSON.stringify(runJson(summary), null, 2)}\n`;
    if (opts.json === "-") io.stdout(text);
    else writeFileSync(opts.json, text);
  }
  if (summary.exitCode !== 0) throw new CliExit(summary.exitCode);
}
