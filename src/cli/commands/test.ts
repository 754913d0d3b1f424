/**
 * `ctsim test FILES...`: run check files (host + rules, a topology, or an experiment; src/check/schema.ts for the
 * format) and print, per case, PASS or a per-field diff of expected vs actual with the check-file line of each
 * expectation. `--junit out.xml` writes
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

Networks: topology: FILE (a ctsim run topology) instead of host/rules; until: SECONDS (optional)
  cases:
    - name: the FIN loops between the NAT host and the router until its TTL runs out
      node: natgw                  # where packets are injected (packet N at N-1 s; interval: to change)
      packets: |
        eth0 In IP 192.168.100.105.1914 > 2.2.2.2.80: Flags [F], seq 1, win 512, length 0
      expect:
        - {packet: 1, node: natgw, ctstate: INVALID, nat: none}
        - {packet: 1, path: [natgw, vpc-router, natgw], loop: {nodes: [natgw, vpc-router], min_ttl: 1}}
        - {packet: 1, node: client, received: [{proto: icmp, type: 11}]}
    - name: the topology's own traffic (traffic: true, the default without packets)
      expect:
        - {node: natgw, match: {src: 10.0.1.20, flags: S.}, fate: rejected, leaves: [{flags: R}]}
        - {node: client, received: none, sent: {flags: S}}     # only retransmissions
        - {flow: c1, socket: {state: CLOSE, error: ETIMEDOUT, retransmissions: 6}}
        - {node: proxy-a, socket: {remote: 34.217.253.255:47442, error: ECONNRESET}}
  Selectors: packet (what injected packet N caused; else the whole run), node, match {packet fields: the first
  packet arriving with them}, after SECONDS, flow. Network keys: path (prefix, in causal order), loop (none or
  {nodes, reason, crossings, min_ttl}), received / sent (at node: none, a map every packet has, or a list),
  socket (STATE or {state, error, established, history, retransmissions}; flow:, or node: + local/remote).

Experiments: experiment: FILE (a ctsim run experiment file, e.g. seed 003's tuple-space table); seed: N
  (optional) replaces its seed. Cases have only name and expect; an expectation picks table cells by
  mode: none|nat|tproxy (the column: LVS only, LVS + NAT-mode proxy, LVS + pure TPROXY) and clients: N or
  [N, ...] (rows; default every row) and checks every picked cell:
  experiment: experiment.yaml
  cases:
    - name: NAT mode fails more as clients grow; pure TPROXY less than NAT mode at every size
      expect:
        - {mode: none, failures: 0%}                 # a rate, equal within the table's rounding (0.05%)
        - {mode: nat, trend: increasing}             # or decreasing / constant, row by row
        - {mode: nat, clients: 1000, failures: {value: 5.1%, tolerance: 0.5%}}
        - {mode: nat, clients: [100, 500], failures: {min: 0.1%, max: 3%}}
        - {mode: tproxy, failures: {below: nat, above: none}}   # against another column, same row
  Rates are percentages (5.1%) or fractions 0..1 (0.051).

Exit status: 0 all cases passed, 1 some expectation failed, 2 bad input.
`;

export function register(program: Command, io: CliIo): void {
  program
    .command("test")
    .description(
      "run check files (YAML: host and rules, a topology or an experiment; cases with expectations), for CI",
    )
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
