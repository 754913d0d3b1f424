/**
 * iptables' own per-extension syntax tables (extensions/*.t, iptables 1.8.11): every OK line must load and
 * print back in the expected canonical form; every FAIL line must be refused. Lines ctsim gets wrong are
 * listed with a reason in extensions_t.known-failures.txt, and this test asserts that exactly those fail.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseSave } from "../../src/netfilter/parse_save";
import { formatRuleSpec } from "../../src/netfilter/save";
import { type Case, extensionsTFiles, readCases, extensionsTEnv } from "./extensions_t_cases";

const KNOWN = join(__dirname, "extensions_t.known-failures.txt");

/** Runs one case; returns undefined when ctsim agrees with iptables, else what went wrong. */
function run(c: Case): string | undefined {
  const text = `*${c.table}\n-A ${c.chain} ${c.rule}\nCOMMIT\n`;
  const r = parseSave(text, {
    file: c.file,
    env: extensionsTEnv(),
  });
  if (!c.ok) return r.errors.length > 0 ? undefined : "accepted, want refused";
  if (r.errors.length > 0) return `refused: ${r.errors[0].message}`;
  const chain = r.ruleset.tables.get(c.table)!.chains.get(c.chain)!;
  const got = formatRuleSpec(chain.rules[0]);
  const want = c.expected.trim().replace(/\s+/g, " ");
  return got === want ? undefined : `got "${got}", want "${want}"`;
}

function knownFailures(): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readFileSync(KNOWN, "utf8").split("\n")) {
    if (!line.trim() || line.startsWith("#")) continue;
    const [key, ...reason] = line.split(" | ");
    m.set(key.trim(), reason.join(" | ").trim());
  }
  return m;
}

describe("extensions/*.t syntax tables", () => {
  const files = extensionsTFiles();
  const known = knownFailures();

  it("covers the copied files", () => {
    expect(files.length, `got ${files.length} .t files`).toBeGreaterThanOrEqual(40);
  });

  for (const file of files) {
    it(file, () => {
      const failing = new Map<string, string>();
      for (const c of readCases(file)) {
        const why = run(c);
        if (why) failing.set(`${c.file}:${c.line}`, `${c.chain}: ${why}`);
      }
      const unexpected = [...failing].filter(([k]) => !known.has(k)).map(([k, v]) => `${k} ${v}`);
      const fixed = [...known.keys()].filter((k) => k.startsWith(`${file}:`) && !failing.has(k));
      expect(unexpected, "lines failing that are not in the known-failures file").toEqual([]);
      expect(fixed, "known failures that now pass (remove them from the file)").toEqual([]);
    });
  }
});
