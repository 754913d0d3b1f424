/**
 * `ctsim rules FILE`: load an iptables rule set (iptables-save / restore text, `iptables -S` output, or a shell
 * script of iptables commands) and print a summary, or with --save the canonical `iptables-save` form.
 *
 * Bad input ends the command with exit code 2 and every error as `file:line:column: message`; warnings
 * (deprecated syntax, unknown extensions under --allow-unknown) go to stderr and do not change the exit code.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { CliExit } from "../main";
import type { CliIo } from "../main";
import { InputError, formatDiagnostic } from "../../errors";
import { loadRuleset } from "../../netfilter/parse_script";
import type { LoadResult, TableName } from "../../netfilter/ruleset";
import { chainOrder, isTableName } from "../../netfilter/ruleset";
import { saveRuleset } from "../../netfilter/save";
import { collect } from "../args";

interface RulesOptions {
  save?: boolean;
  allowUnknown?: boolean;
  counters?: boolean;
  format?: string;
  table?: string;
  group?: string[];
  user?: string[];
  ipset?: string[];
}

function idMap(entries: string[] | undefined, what: string): Map<string, number> {
  const map = new Map<string, number>([["root", 0]]);
  for (const e of entries ?? []) {
    const m = /^([^=]+)=(\d+)$/.exec(e);
    if (!m) throw new InputError({ code: "CLI_BAD_OPTION", message: `--${what} wants NAME=ID, got "${e}"` });
    map.set(m[1], Number(m[2]));
  }
  return map;
}

export function register(program: Command, io: CliIo): void {
  program
    .command("rules")
    .description("load an iptables rule set and print a summary or its canonical iptables-save form")
    .argument(
      "<file>",
      "iptables-save/restore text, `iptables -S` output, or a shell script of iptables commands",
    )
    .option("--save", "print the rule set in canonical iptables-save form")
    .option("-c, --counters", "with --save, print [packets:bytes] before each rule")
    .option(
      "--allow-unknown",
      "keep rules with unknown matches/targets/options (they never match) and create missing chains",
    )
    .option("--format <format>", "auto, save or script", "auto")
    .option("--table <table>", "table for input without *table lines (iptables -S output)", "filter")
    .option("--group <name=gid>", "a group name known to the emulated host (repeatable)", collect)
    .option("--user <name=uid>", "a user name known to the emulated host (repeatable)", collect)
    .option(
      "--ipset <name>",
      "an ipset that exists on the emulated host (repeatable; without it any set name is accepted)",
      collect,
    )
    .action((file: string, opts: RulesOptions) => {
      rulesCommand(file, opts, io);
    });
}

function rulesCommand(file: string, opts: RulesOptions, io: CliIo): void {
  if (opts.format !== "auto" && opts.format !== "save" && opts.format !== "script") {
    throw new InputError({
      code: "CLI_BAD_OPTION",
      message: `--format must be auto, save or script, not "${opts.format}"`,
    });
  }
  if (!isTableName(opts.table ?? "filter")) {
    throw new InputError({ code: "CLI_BAD_OPTION", message: `--table: unknown table "${opts.table}"` });
  }
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new InputError({
      file,
      code: "RULES_READ",
      message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    });
  }
  const result = loadRuleset(text, {
    file,
    format: opts.format,
    allowUnknown: opts.allowUnknown === true,
    defaultTable: (opts.table ?? "filter") as TableName,
    env: {
      users: idMap(opts.user, "user"),
      groups: idMap(opts.group, "group"),
      ...(opts.ipset ? { ipsets: new Set(opts.ipset) } : {}),
    },
  });
  for (const w of result.warnings) io.stderr(`ctsim: warning: ${formatDiagnostic(w)}\n`);
  if (result.errors.length > 0) {
    for (const e of result.errors) io.stderr(`ctsim: ${formatDiagnostic(e)}\n`);
    io.stderr(`ctsim: ${file}: ${result.errors.length} error${result.errors.length === 1 ? "" : "s"}\n`);
    throw new CliExit(2);
  }
  if (opts.save) io.stdout(saveRuleset(result.ruleset, { counters: opts.counters === true }));
  else io.stdout(summary(file, result));
}

function summary(file: string, result: LoadResult): string {
  const rows: string[][] = [["table", "chain", "policy", "rules", "reached from"]];
  let chains = 0;
  let rules = 0;
  let never = 0;
  for (const t of result.ruleset.tables.values()) {
    for (const c of chainOrder(t)) {
      chains++;
      rules += c.rules.length;
      never += c.rules.filter((r) => r.neverMatches).length;
      rows.push([
        t.name,
        c.name,
        c.builtin ? (c.policy ?? "ACCEPT") : "-",
        String(c.rules.length),
        c.hooks.join(",") || "-",
      ]);
    }
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) =>
    r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join("  "),
  );
  const head =
    `${file}: ${result.ruleset.tables.size} table${result.ruleset.tables.size === 1 ? "" : "s"}, ${chains} chains, ${rules} rules` +
    (never ? `, ${never} never matching (unknown extensions)` : "") +
    (result.warnings.length
      ? `, ${result.warnings.length} warning${result.warnings.length === 1 ? "" : "s"}`
      : "");
  return `${head}\n${lines.join("\n")}\n`;
}
