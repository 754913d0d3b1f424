/**
 * `ctsim lint`'s engine: loads a rule set leniently (src/netfilter/parse_script.ts `loadRuleset` with
 * `allowUnknown`, so kernel refusals become findings instead of a failed load), runs every rule of
 * ./registry.ts, and, when a host is given, runs each finding's demonstration packets through a fresh HostSim
 * (src/sim/host.ts) and records what happened. A demonstration that does not reproduce the problem lowers the
 * finding to `info` (the static check could not see why the packet was safe; the emulator could).
 *
 * No I/O: text in, values out. JSON shape: `lintJson`.
 */
import type { Host } from "../host/types";
import type { Registry } from "../netfilter/registry";
import { defaultRegistry } from "../netfilter/xt/index";
import { loadRuleset } from "../netfilter/parse_script";
import type { LoadResult } from "../netfilter/ruleset";
import { HostSim } from "../sim/host";
import { parseTcpdumpText } from "../wire/text";
import { formatSummary } from "../trace/summary";
import type { PacketReport } from "../trace/events";
import { LINT_RULES } from "./registry";
import type { DemoPlan, DemoResult, Finding, LintContext, LintRule, Severity } from "./types";
import { severityRank } from "./types";

export interface LintOptions {
  readonly file?: string;
  readonly host?: Host;
  readonly registry?: Registry;
  /** Rule ids to run (default all). */
  readonly only?: readonly string[];
  /** Run demonstrations (default true when a host is given). */
  readonly demo?: boolean;
  /** Kernel profile for the demonstrations. */
  readonly kernel?: string;
}

export interface LintReport {
  readonly file?: string;
  readonly findings: readonly Finding[];
  /** Rule ids that ran. */
  readonly rules: readonly string[];
}

/** Lints rule-set text (iptables-save or a shell script of iptables commands). */
export function lintText(text: string, opts: LintOptions = {}): LintReport {
  const load = loadRuleset(text, {
    ...(opts.file !== undefined ? { file: opts.file } : {}),
    allowUnknown: true,
    ...(opts.registry ? { registry: opts.registry } : {}),
  });
  return lintLoaded(load, opts);
}

/** Lints an already (leniently) loaded rule set. */
export function lintLoaded(load: LoadResult, opts: LintOptions = {}): LintReport {
  const ctx: LintContext = {
    ruleset: load.ruleset,
    load,
    registry: opts.registry ?? defaultRegistry,
    ...(opts.host ? { host: opts.host } : {}),
    ...(opts.file !== undefined ? { file: opts.file } : {}),
  };
  const rules: LintRule[] = opts.only ? LINT_RULES.filter((r) => opts.only!.includes(r.id)) : [...LINT_RULES];
  const findings: Finding[] = [];
  for (const r of rules) findings.push(...r.check(ctx));
  // The kernel would refuse tables with loops; the emulator is not run on them.
  const runnable = !findings.some((f) => f.id === "chain-loop");
  if (opts.host && opts.demo !== false && runnable) {
    for (const f of findings) {
      if (!f.plan) continue;
      let demo: DemoResult;
      try {
        demo = runDemo(opts.host, load, f.plan, opts);
      } catch (err) {
        // An emulator failure must not hide the static finding.
        f.demo = {
          packets: [],
          summaries: [],
          confirmed: false,
          outcome: `the emulator could not run the demonstration: ${(err as Error).message}`,
        };
        continue;
      }
      f.demo = demo;
      if (!demo.confirmed) {
        (f as { severity: Severity }).severity = "info";
        (f as { message: string }).message += " (not reproduced in the emulator)";
      }
    }
  }
  for (const f of findings) delete f.plan;
  findings.sort(
    (a, b) =>
      (a.line ?? 0) - (b.line ?? 0) ||
      (a.column ?? 0) - (b.column ?? 0) ||
      severityRank(b.severity) - severityRank(a.severity),
  );
  return { ...(opts.file !== undefined ? { file: opts.file } : {}), findings, rules: rules.map((r) => r.id) };
}

function runDemo(host: Host, load: LoadResult, plan: DemoPlan, opts: LintOptions): DemoResult {
  const sim = new HostSim({
    host,
    ruleset: load.ruleset,
    ...(opts.registry ? { registry: opts.registry } : {}),
    ...(opts.kernel ? { kernel: opts.kernel } : {}),
    ...(plan.sysctl ? { sysctl: plan.sysctl } : {}),
    seed: 0,
    traceAll: true,
  });
  const reports: PacketReport[] = [];
  const packets: string[] = [];
  for (let line = plan.next(reports); line !== undefined && packets.length < 16; line = plan.next(reports)) {
    packets.push(line);
    const parsed = parseTcpdumpText(line);
    if (parsed.errors.length > 0 || parsed.packets.length !== 1) {
      return {
        packets,
        summaries: reports.map((r) => formatSummary(r.packets[0])),
        confirmed: false,
        outcome: `demonstration packet did not parse: ${parsed.errors[0]?.message ?? line}`,
      };
    }
    reports.push(sim.receive(parsed.packets[0], { time: reports.length }));
  }
  const verdict = plan.judge(reports);
  return {
    packets,
    summaries: reports.map((r) => formatSummary(r.packets[0])),
    ...verdict,
  };
}

/** Findings at or above `level`. */
export function findingsAtLeast(report: LintReport, level: Severity): Finding[] {
  return report.findings.filter((f) => severityRank(f.severity) >= severityRank(level));
}

/** The JSON document of `ctsim lint --format json`. */
export function lintJson(reports: readonly LintReport[]): unknown {
  const findings = reports.flatMap((r) => r.findings);
  const count = (s: Severity) => findings.filter((f) => f.severity === s).length;
  return {
    version: 1,
    summary: { error: count("error"), warning: count("warning"), info: count("info") },
    findings: findings.map((f) => ({
      id: f.id,
      severity: f.severity,
      ...(f.file !== undefined ? { file: f.file } : {}),
      ...(f.line !== undefined ? { line: f.line } : {}),
      ...(f.column !== undefined ? { column: f.column } : {}),
      ...(f.where !== undefined ? { where: f.where } : {}),
      ...(f.text !== undefined ? { text: f.text } : {}),
      message: f.message,
      explanation: f.explanation,
      fix: f.fix,
      ...(f.demo ? { demo: f.demo } : {}),
    })),
  };
}
