/**
 * Shell scripts of `iptables ...` commands (firewall scripts, libvirt's command lists, `iptables -S` style
 * lines prefixed with `iptables`), and format detection for `ctsim rules`.
 *
 * Mirrors the POSIX shell word rules far enough for firewall scripts (sh(1) "Token Recognition" and
 * "Quoting": single quotes, double quotes with `\"` `\\` `\$` escapes, backslash escapes, `\`-newline
 * continuations, `#` comments, `;` `&&` `||` separators, `NAME=value` assignments and `$NAME`/`${NAME}`
 * expansion), then iptables 1.8.x `do_command4` (iptables/iptables.c) for each iptables command via the
 * RulesetBuilder of ./parse_save.
 *
 * Left out on purpose: command substitution, loops, functions, conditionals, here-documents, globbing. Any
 * line that is not an iptables command, an assignment or a harmless builtin (`set`, `true`, `:`, `export`)
 * is an error, or a warning under --allow-unknown. ip6tables lines are skipped with a warning (IPv4 only).
 * A diagnostic's column counts in the joined line when the command spans continuation lines.
 */

import type { LineInfo, LoadOptions, Token } from "./parse_save";
import { RulesetBuilder, parseSave } from "./parse_save";
import type { LoadResult, TableName } from "./ruleset";
import { TABLE_NAMES, isTableName } from "./ruleset";

interface ShellWord extends Token {
  /** True when the word came only from an unquoted `$VAR` (subject to field splitting). */
  readonly splittable: boolean;
}

interface ShellCommand {
  readonly words: ShellWord[];
  readonly line: LineInfo;
}

const IPTABLES_COMMANDS = new Set(["iptables", "iptables-legacy", "iptables-nft"]);
const IP6TABLES_COMMANDS = new Set(["ip6tables", "ip6tables-legacy", "ip6tables-nft"]);
const HARMLESS = new Set(["set", "true", ":", "export", "exit"]);

function basename(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

/**
 * Splits a script into commands. Errors (unterminated quotes, command substitution) are reported through
 * `onError` with the line and column.
 */
export function lexShell(
  text: string,
  vars: Map<string, string>,
  onError: (line: LineInfo, column: number, message: string) => void,
): ShellCommand[] {
  const physical = text.split(/\r?\n/);
  const commands: ShellCommand[] = [];
  for (let n = 0; n < physical.length; n++) {
    const startLine = n + 1;
    let joined = physical[n];
    while (/(^|[^\\])(\\\\)*\\$/.test(joined) && n + 1 < physical.length) {
      joined = joined.slice(0, -1) + physical[++n];
    }
    const line: LineInfo = { line: startLine, text: joined };
    let words: ShellWord[] = [];
    let i = 0;
    const flush = (): void => {
      if (words.length > 0) commands.push({ words, line });
      words = [];
    };
    const expand = (name: string): string => vars.get(name) ?? "";
    const readVar = (at: number): { name: string; end: number } | undefined => {
      if (joined[at + 1] === "{") {
        const close = joined.indexOf("}", at + 2);
        if (close < 0) return undefined;
        return { name: joined.slice(at + 2, close), end: close + 1 };
      }
      const m = /^[A-Za-z_][A-Za-z0-9_]*|^[0-9?#@*$!-]/.exec(joined.slice(at + 1));
      return m ? { name: m[0], end: at + 1 + m[0].length } : undefined;
    };
    let bad = false;
    while (i < joined.length && !bad) {
      const ch = joined[i];
      // Blanks separate words; so does any other white space (a stray \r, \v, \f), which also ends a word below.
      if (ch === " " || ch === "\t" || /\s/.test(ch)) {
        i++;
        continue;
      }
      if (ch === "#") break;
      if (ch === ";") {
        flush();
        i++;
        continue;
      }
      if ((ch === "&" && joined[i + 1] === "&") || (ch === "|" && joined[i + 1] === "|")) {
        flush();
        i += 2;
        continue;
      }
      if (ch === "|" || ch === "&" || ch === "<" || ch === ">" || ch === "(" || ch === ")") {
        onError(line, i + 1, `shell operator "${ch}" is not supported`);
        bad = true;
        break;
      }
      const start = i;
      let word = "";
      let quotedAny = false;
      let onlyVar = true;
      while (i < joined.length && !/[\s;&|<>()]/.test(joined[i])) {
        const c = joined[i];
        if (c === "'") {
          const close = joined.indexOf("'", i + 1);
          if (close < 0) {
            onError(line, i + 1, "unterminated single quote");
            bad = true;
            break;
          }
          word += joined.slice(i + 1, close);
          i = close + 1;
          quotedAny = true;
          onlyVar = false;
          continue;
        }
        if (c === '"') {
          let j = i + 1;
          let closed = false;
          while (j < joined.length) {
            const d = joined[j];
            if (d === "\\" && j + 1 < joined.length && '"\\$`'.includes(joined[j + 1])) {
              word += joined[j + 1];
              j += 2;
              continue;
            }
            if (d === '"') {
              closed = true;
              break;
            }
            if (d === "`" || (d === "$" && joined[j + 1] === "(")) {
              onError(line, j + 1, "command substitution is not supported");
              bad = true;
              break;
            }
            if (d === "$") {
              const v = readVar(j);
              if (v) {
                word += expand(v.name);
                j = v.end;
                continue;
              }
            }
            word += d;
            j++;
          }
          if (bad) break;
          if (!closed) {
            onError(line, i + 1, "unterminated double quote");
            bad = true;
            break;
          }
          i = j + 1;
          quotedAny = true;
          onlyVar = false;
          continue;
        }
        if (c === "\\" && i + 1 < joined.length) {
          word += joined[i + 1];
          i += 2;
          onlyVar = false;
          continue;
        }
        if (c === "`" || (c === "$" && joined[i + 1] === "(")) {
          onError(line, i + 1, "command substitution is not supported");
          bad = true;
          break;
        }
        if (c === "$") {
          const v = readVar(i);
          if (v) {
            word += expand(v.name);
            i = v.end;
            continue;
          }
        }
        word += c;
        onlyVar = false;
        i++;
      }
      if (bad) break;
      const splittable = onlyVar && !quotedAny && joined[start] === "$";
      if (splittable) {
        for (const part of word.split(/\s+/).filter(Boolean))
          words.push({ text: part, column: start + 1, splittable });
      } else words.push({ text: word, column: start + 1, splittable: false });
    }
    if (bad) {
      words = [];
      continue;
    }
    flush();
  }
  return commands;
}

/** Parses a shell script of iptables commands. */
export function parseScript(text: string, options: LoadOptions = {}): LoadResult {
  const b = new RulesetBuilder(options);
  const vars = new Map<string, string>();
  // Assignments take effect in order, so lex and run line by line.
  const lines = text.split(/\r?\n/);
  let buffer = "";
  let bufferStart = 0;
  const runChunk = (chunk: string, firstLine: number): void => {
    const cmds = lexShell(chunk, vars, (line, column, message) =>
      unsupported(b, { line: line.line + firstLine - 1, text: line.text }, column, message),
    );
    for (const cmd of cmds)
      runCommand(b, vars, { ...cmd, line: { line: cmd.line.line + firstLine - 1, text: cmd.line.text } });
  };
  for (let n = 0; n < lines.length; n++) {
    if (buffer === "") bufferStart = n + 1;
    buffer += (buffer === "" ? "" : "\n") + lines[n];
    if (/(^|[^\\])(\\\\)*\\\r?$/.test(lines[n]) && n + 1 < lines.length) continue;
    runChunk(buffer, bufferStart);
    buffer = "";
  }
  return b.finish();
}

function unsupported(b: RulesetBuilder, line: LineInfo, column: number, message: string): void {
  if (b.lenient)
    b.warn("IPT_SHELL_UNSUPPORTED", `${message}; line skipped under --allow-unknown`, line, column);
  else b.error("IPT_SHELL_UNSUPPORTED", message, line, column);
}

function runCommand(b: RulesetBuilder, vars: Map<string, string>, cmd: ShellCommand): void {
  let words = cmd.words;
  // NAME=value [NAME=value ...] on its own
  const assign = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s;
  // NAME=value on its own sets a variable; as a prefix of a command it is harmless for iptables.
  while (words.length > 0 && !words[0].splittable && assign.test(words[0].text)) {
    const m = assign.exec(words[0].text)!;
    vars.set(m[1], m[2]);
    words = words.slice(1);
  }
  if (words.length === 0) return;
  if (words[0].text === "sudo" || words[0].text === "command" || words[0].text === "exec")
    words = words.slice(1);
  if (words.length === 0) return;
  const prog = basename(words[0].text);
  if (HARMLESS.has(prog)) {
    if (prog === "export") {
      for (const w of words.slice(1)) {
        const m = assign.exec(w.text);
        if (m) vars.set(m[1], m[2]);
      }
    }
    return;
  }
  if (IP6TABLES_COMMANDS.has(prog)) {
    b.warn("IPT_IPV6_SKIPPED", `${prog} line skipped (ctsim models IPv4 only)`, cmd.line, words[0].column);
    return;
  }
  if (!IPTABLES_COMMANDS.has(prog)) {
    unsupported(b, cmd.line, words[0].column, `"${words[0].text}" is not an iptables command`);
    return;
  }
  let table: TableName = "filter";
  const argv: Token[] = [];
  for (let i = 1; i < words.length; i++) {
    const w = words[i];
    let name: Token | undefined;
    if (w.text === "-t" || w.text === "--table") name = words[++i];
    else if (w.text.startsWith("--table=")) name = { text: w.text.slice(8), column: w.column + 8 };
    else if (/^-t[a-z]+$/.test(w.text)) name = { text: w.text.slice(2), column: w.column + 2 };
    else {
      argv.push({ text: w.text, column: w.column });
      continue;
    }
    if (!name) {
      b.error("IPT_SYNTAX", "-t needs a table name", cmd.line, w.column);
      return;
    }
    if (!isTableName(name.text)) {
      b.error(
        "IPT_BAD_TABLE",
        `unknown table "${name.text}" (supported: ${TABLE_NAMES.join(", ")})`,
        cmd.line,
        name.column,
      );
      return;
    }
    table = name.text;
  }
  b.exec(table, argv, cmd.line);
}

export type RulesetFormat = "save" | "script";

/**
 * Guesses the input format: a script when some command line starts with a shell word (`iptables`, a
 * variable, an assignment, a shebang); otherwise iptables-save / restore / `-S` text.
 */
export function detectFormat(text: string): RulesetFormat {
  // Line by line up to the first that decides (no split of a whole 10,000-rule file); trim() drops the \r of CRLF.
  for (let start = 0; start <= text.length;) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line.startsWith("#!")) return "script";
    if (line === "" || line.startsWith("#")) continue;
    if (
      line.startsWith("*") ||
      line.startsWith(":") ||
      line.startsWith("-") ||
      line.startsWith("[") ||
      line === "COMMIT"
    ) {
      return "save";
    }
    return "script";
  }
  return "save";
}

export interface LoadRulesetOptions extends LoadOptions {
  readonly format?: RulesetFormat | "auto";
}

/** Loads a rule set in any supported format. */
export function loadRuleset(text: string, options: LoadRulesetOptions = {}): LoadResult {
  const format = !options.format || options.format === "auto" ? detectFormat(text) : options.format;
  return format === "script" ? parseScript(text, options) : parseSave(text, options);
}
