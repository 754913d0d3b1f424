/**
 * `ctsim lint RULES... [--host host.yaml]`: static checks on iptables rule sets (src/lint), each finding with an
 * id, a severity, the rule's file:line, an explanation and a fix; with a host, findings that can be shown
 * dynamically carry the packets that demonstrate them and what the emulated host did with them.
 *
 * Exit codes: 0 when no finding reaches `--fail-on` (default warning), 1 when one does, 2 for unreadable input.
 * `--format json` prints one JSON document (src/lint/lint.ts `lintJson`).
 */
import type { Command } from "commander";
import { Chalk } from "chalk";
import type { ChalkInstance } from "chalk";
import type { CliIo } from "../main";
import { CliExit } from "../main";
import { InputError, formatLocation } from "../../errors";
import { parseHostFile } from "../../host/hostfile";
import { DEFAULT_KERNEL } from "../../conntrack/profile";
import { findingsAtLeast, lintJson, lintText } from "../../lint/lint";
import type { LintReport } from "../../lint/lint";
import { LINT_RULES } from "../../lint/registry";
import type { Finding, Severity } from "../../lint/types";
import { SEVERITIES } from "../../lint/types";
import { collect, readText } from "../args";

interface LintCliOptions {
  host?: string;
  format: string;
  failOn: string;
  rule?: string[];
  demo: boolean;
  list?: boolean;
  kernel: string;
}

const EXAMPLES = `
Examples:
  ctsim lint --host examples/seed001/host.yaml examples/seed001/rules.v4
      MASQUERADE with no INVALID drop: a FIN|ACK from 192.168.100.5 leaves un-NATed (shown in the emulator)
  ctsim lint --format json --fail-on error rules/*.v4
  ctsim lint --list

Severities: info < warning < error. Exit 1 when a finding is at or above --fail-on (default warning).
Without --host only the static checks run; with it, findings about NAT and INVALID packets are tried on the
emulated host and lowered to info when the emulator does not reproduce them.
`;

export function register(program: Command, io: CliIo): void {
  program
    .command("lint")
    .description("check iptables rule sets for INVALID leaks, shadowed rules, kernel refusals and more")
    .argument("[rules...]", "iptables-save output or shell scripts of iptables commands")
    .option(
      "--host <host.yaml>",
      "host file: demonstrate findings by running packets through the emulated host",
    )
    .option("--format <format>", "text or json", "text")
    .option(
      "--fail-on <severity>",
      "exit 1 when a finding is at least this severe: info, warning, error",
      "warning",
    )
    .option("--rule <id>", "run only this rule (repeatable; see --list)", collect)
    .option("--no-demo", "with --host, skip the dynamic demonstrations")
    .option("--kernel <version>", "kernel profile for the demonstrations", DEFAULT_KERNEL)
    .option("--list", "list the rules and exit")
    .addHelpText("after", EXAMPLES)
    .action((files: string[], opts: LintCliOptions) => {
      lintCommand(files, opts, io);
    });
}

function lintCommand(files: string[], opts: LintCliOptions, io: CliIo): void {
  if (opts.list) {
    for (const r of LINT_RULES) io.stdout(`${r.id.padEnd(20)} ${r.severity.padEnd(8)} ${r.description}\n`);
    return;
  }
  if (opts.format !== "text" && opts.format !== "json")
    throw new InputError({
      code: "CLI_BAD_OPTION",
      file: "--format",
      message: `expected text or json, got "${opts.format}"`,
    });
  if (!(SEVERITIES as readonly string[]).includes(opts.failOn))
    throw new InputError({
      code: "CLI_BAD_OPTION",
      file: "--fail-on",
      message: `expected one of ${SEVERITIES.join(", ")}, got "${opts.failOn}"`,
    });
  const known = new Set(LINT_RULES.map((r) => r.id));
  for (const id of opts.rule ?? [])
    if (!known.has(id))
      throw new InputError({
        code: "CLI_BAD_OPTION",
        file: "--rule",
        message: `unknown rule "${id}" (see --list)`,
      });
  if (files.length === 0)
    throw new InputError({
      code: "CLI_BAD_OPTION",
      file: "ctsim lint",
      message: "give at least one rules file",
    });
  const host = opts.host ? parseHostFile(readText(opts.host), opts.host) : undefined;
  const reports: LintReport[] = files.map((file) =>
    lintText(readText(file), {
      file,
      ...(host ? { host } : {}),
      demo: opts.demo,
      kernel: opts.kernel,
      ...(opts.rule ? { only: opts.rule } : {}),
    }),
  );
  if (opts.format === "json") io.stdout(`${JSON.stringify(lintJson(reports), null, 2)}\n`);
  else {
    const color = process.stdout.isTTY === true && !process.env.NO_COLOR;
    io.stdout(formatLintText(reports, new Chalk({ level: color ? 1 : 0 })));
  }
  const failing = reports.flatMap((r) => findingsAtLeast(r, opts.failOn as Severity));
  if (failing.length > 0) throw new CliExit(1);
}

/** Text output: one block per finding, then a totals line. */
export function formatLintText(reports: readonly LintReport[], c: ChalkInstance): string {
  let out = "";
  const paint = (s: Severity, t: string) =>
    s === "error" ? c.red(t) : s === "warning" ? c.yellow(t) : c.cyan(t);
  const all: Finding[] = reports.flatMap((r) => r.findings);
  for (const f of all) {
    const loc = formatLocation({
      ...(f.file !== undefined ? { file: f.file } : {}),
      ...(f.line !== undefined ? { line: f.line } : {}),
      ...(f.column !== undefined ? { column: f.column } : {}),
    });
    out += `${loc}: ${paint(f.severity, f.severity)} ${c.bold(f.id)}${f.where ? ` (${f.where})` : ""}: ${f.message}\n`;
    if (f.text) out += `  ${c.dim(f.text)}\n`;
    out += `  why: ${f.explanation}\n`;
    out += `  fix: ${f.fix}\n`;
    if (f.demo) {
      out += `  shown in the emulator (${f.demo.confirmed ? "reproduced" : "not reproduced"}):\n`;
      for (const p of f.demo.packets) out += `    ${c.dim(p)}\n`;
      for (const s of f.demo.summaries) out += `    ${s}\n`;
      out += `    ${f.demo.outcome}\n`;
    }
  }
  const n = (s: Severity) => all.filter((f) => f.severity === s).length;
  out += `${all.length} finding${all.length === 1 ? "" : "s"} (${n("error")} error, ${n("warning")} warning, ${n("info")} info) in ${reports.length} file${reports.length === 1 ? "" : "s"}\n`;
  return out;
}
