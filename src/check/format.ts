/**
 * Text output of `ctsim test`: one line per case, and for a failed case a diff of expected vs actual per field,
 * each with the check file line where the expectation was written:
 *
 *     FAIL  a FIN with no conntrack entry is dropped  (seed001.test.yaml:12)
 *           packet 2 (line 15: eth0 In IP 192.168.100.105.1914 > 2.2.2.2.80: Flags [F] ...)
 *             seed001.test.yaml:19  fate
 *               want: dropped
 *               got:  forwarded (left on eth0)
 *
 * ctsim's own format. Colour is the caller's (a Style of string functions; identity by default).
 */
import type { Diagnostic } from "../errors";
import { formatDiagnostic, formatLocation } from "../errors";
import type { CaseResult, FileResult, RunSummary } from "./run";

export interface Style {
  readonly pass: (s: string) => string;
  readonly fail: (s: string) => string;
  readonly dim: (s: string) => string;
  readonly head: (s: string) => string;
  readonly want: (s: string) => string;
  readonly got: (s: string) => string;
}

const id = (s: string) => s;
export const PLAIN: Style = { pass: id, fail: id, dim: id, head: id, want: id, got: id };

function packetLineText(lines: readonly string[] | undefined, n: number | undefined): string {
  if (!lines || n === undefined) return "";
  const t = lines[n - 1]?.trim();
  return t ? `: ${t}` : "";
}

/** The per-case block. `source` is the check file's lines (to quote packet lines). */
export function formatCase(c: CaseResult, s: Style = PLAIN, source?: readonly string[]): string {
  const where = s.dim(`(${formatLocation(c.loc)})`);
  if (c.status === "passed") return `  ${s.pass("PASS")}  ${c.name}  ${where}\n`;
  if (c.status === "error")
    return `  ${s.fail("ERROR")} ${c.name}  ${where}\n${indent(formatDiagnostic(c.error!), 8)}\n`;
  let out = `  ${s.fail("FAIL")}  ${c.name}  ${where}\n`;
  const byPacket = new Map<number, typeof c.diffs>();
  for (const d of c.diffs) byPacket.set(d.packet, [...(byPacket.get(d.packet) ?? []), d]);
  for (const [packet, diffs] of byPacket) {
    const line = c.packetLines[packet - 1];
    out += `        ${packet === 0 ? "the run" : `packet ${packet}`}${line !== undefined ? ` (line ${line}${packetLineText(source, line)})` : ""}${diffs[0].node ? ` at ${diffs[0].node}` : ""}\n`;
    for (const d of diffs) {
      out += `          ${s.dim(`${formatLocation(d.loc)}`)}  ${s.head(d.field)}\n`;
      out += `            want: ${s.want(d.want)}\n`;
      out += `            got:  ${s.got(d.got)}\n`;
    }
  }
  return out;
}

function indent(text: string, n: number): string {
  return text
    .split("\n")
    .map((l) => " ".repeat(n) + l)
    .join("\n");
}

export function formatFile(f: FileResult, s: Style = PLAIN, source?: readonly string[]): string {
  let out = `${s.head(f.file)}\n`;
  for (const e of f.errors) out += `  ${s.fail("ERROR")} ${indent(formatDiagnostic(e), 2).trimStart()}\n`;
  for (const w of f.warnings) out += `  ${s.dim(`warning: ${formatDiagnostic(w)}`)}\n`;
  for (const c of f.cases) out += formatCase(c, s, source);
  return out;
}

export function formatTotals(r: RunSummary, s: Style = PLAIN): string {
  const n = r.passed + r.failed + r.errors;
  const parts = [
    s.pass(`${r.passed} passed`),
    r.failed ? s.fail(`${r.failed} failed`) : `0 failed`,
    r.errors ? s.fail(`${r.errors} error${r.errors === 1 ? "" : "s"}`) : "0 errors",
  ];
  return `${n} case${n === 1 ? "" : "s"} in ${r.files.length} file${r.files.length === 1 ? "" : "s"}: ${parts.join(", ")}\n`;
}

export function diagnosticsOf(r: RunSummary): Diagnostic[] {
  return r.files.flatMap((f) => [...f.errors, ...f.cases.flatMap((c) => (c.error ? [c.error] : []))]);
}
