/**
 * `ctsim test --json out.json`: the whole run as one JSON document for tools.
 *
 *     {"passed": 2, "failed": 1, "errors": 0, "exitCode": 1,
 *      "files": [{"file", "timeMs", "errors": [Diagnostic], "warnings": [Diagnostic],
 *                 "cases": [{"name", "line", "status": "passed"|"failed"|"error", "timeMs",
 *                            "diffs": [{"packet", "node"?, "field", "want", "got", "line", "column"}],
 *                            "error"?: Diagnostic,
 *                            "packets": [{"line", "nodes": [{"node", "ctstate", "fate", "rule", "nat",
 *                                         "conntrack", "leaves": ["iface: tcpdump line"], "summary"}]}]}]}]}
 *
 * ctsim's own schema. Leaves out on purpose: the full trace (use `ctsim trace --format json`).
 */
import type { Observation } from "./subject";
import type { RunSummary } from "./run";

function obsJson(o: Observation): Record<string, unknown> {
  return {
    node: o.node,
    ctstate: o.ctstate ?? null,
    ctinfo: o.ctinfo ?? null,
    conntrack: o.conntrack?.line ?? null,
    fate: o.fate,
    fateText: o.fateText,
    rule: o.rule ?? null,
    ruleText: o.ruleText ?? null,
    matched: o.matched,
    nat: o.nat,
    leaves: o.leaves.map((p) => `${p.iface}: ${p.line}`),
    summary: o.summary,
  };
}

export function runJson(r: RunSummary): Record<string, unknown> {
  return {
    passed: r.passed,
    failed: r.failed,
    errors: r.errors,
    exitCode: r.exitCode,
    files: r.files.map((f) => ({
      file: f.file,
      timeMs: f.timeMs,
      errors: f.errors,
      warnings: f.warnings,
      cases: f.cases.map((c) => ({
        name: c.name,
        line: c.loc.line,
        status: c.status,
        timeMs: c.timeMs,
        diffs: c.diffs.map((d) => ({
          packet: d.packet,
          ...(d.node !== undefined ? { node: d.node } : {}),
          field: d.field,
          want: d.want,
          got: d.got,
          line: d.loc.line,
          column: d.loc.column,
        })),
        ...(c.error ? { error: c.error } : {}),
        packets: c.observations.map((nodes, i) => ({
          line: c.packetLines[i] ?? null,
          nodes: nodes.map(obsJson),
        })),
      })),
    })),
  };
}
