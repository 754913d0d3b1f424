/**
 * The cases of iptables' per-extension syntax tables (extensions/*.t, iptables 1.8.11, copied under
 * test/fixtures/iptables/extensions-t): one case per rule line and chain.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { LoadEnvironment } from "../../src/netfilter/registry";
import type { TableName } from "../../src/netfilter/ruleset";

export const EXTENSIONS_T_DIR = join(__dirname, "../fixtures/iptables/extensions-t");

export interface Case {
  file: string;
  line: number;
  table: TableName;
  chain: string;
  rule: string;
  expected: string;
  ok: boolean;
}

/** The load environment the .t tables assume: root only, no ipsets, one nfacct object "test". */
export function extensionsTEnv(): LoadEnvironment {
  return {
    users: new Map([["root", 0]]),
    groups: new Map([["root", 0]]),
    ipsets: new Set(),
    nfacct: new Set(["test"]),
  };
}

/** The .t files, sorted. */
export function extensionsTFiles(): string[] {
  return readdirSync(EXTENSIONS_T_DIR)
    .filter((f) => f.endsWith(".t"))
    .sort();
}

export function readCases(file: string): Case[] {
  const cases: Case[] = [];
  let chains: string[] = [];
  let table: TableName = "filter";
  readFileSync(join(EXTENSIONS_T_DIR, file), "utf8")
    .split("\n")
    .forEach((text, i) => {
      if (text.startsWith(":")) {
        chains = text.slice(1).split(",");
        table = "filter";
      } else if (text.startsWith("*")) table = text.slice(1) as TableName;
      else if (text.trim() === "" || text.startsWith("#") || text.startsWith("@")) return;
      else {
        const [rule, expected, verdict] = text.split(";");
        for (const chain of chains) {
          cases.push({
            file,
            line: i + 1,
            table,
            chain,
            rule,
            expected: expected === "=" ? rule : expected,
            ok: verdict === "OK",
          });
        }
      }
    });
  return cases;
}
