/**
 * Parsed extension options must share V8 hidden classes across rules. The per-packet match and target functions
 * read them; when every rule's options object has a map of its own (an object spread followed by new keys does
 * that once its call site has seen a few shapes), those reads go megamorphic and a tcp match cost ~450 ns
 * instead of ~8 ns with 10,000 kube-proxy rules (bench/trace.ts). This parses every OK line of iptables'
 * extensions/*.t tables many times and checks that options of one extension with the same keys have at most
 * four maps (V8's polymorphic limit; a field whose representation widens leaves a deprecated map or two behind).
 */
import { setFlagsFromString } from "node:v8";
import { describe, expect, it } from "vitest";
import { parseSave } from "../../src/netfilter/parse_save";
import { extensionsTFiles, readCases, extensionsTEnv } from "./extensions_t_cases";

setFlagsFromString("--allow-natives-syntax");
const haveSameMap = new Function("a", "b", "return %HaveSameMap(a, b)") as (a: object, b: object) => boolean;

const COPIES = 24;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return (
    typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype
  );
}

/** Options objects (and the plain objects inside them) grouped by extension, path and key list. */
function collect(groups: Map<string, object[]>, label: string, value: unknown, depth = 0): void {
  if (!isPlainObject(value)) return;
  const key = `${label}{${Object.keys(value).join(",")}}`;
  const list = groups.get(key);
  if (list) list.push(value);
  else groups.set(key, [value]);
  if (depth < 2) for (const [k, v] of Object.entries(value)) collect(groups, `${label}.${k}`, v, depth + 1);
}

function distinctMaps(objects: readonly object[]): number {
  const reps: object[] = [];
  for (const o of objects) if (!reps.some((r) => haveSameMap(r, o))) reps.push(o);
  return reps.length;
}

describe("parsed options share hidden classes", () => {
  it("options of one extension with the same keys share a few maps, however many rules there are", () => {
    const groups = new Map<string, object[]>();
    let rules = 0;
    for (const file of extensionsTFiles()) {
      for (const c of readCases(file)) {
        if (!c.ok) continue;
        const lines = Array.from({ length: COPIES }, () => `-A ${c.chain} ${c.rule}`);
        const r = parseSave(`*${c.table}\n${lines.join("\n")}\nCOMMIT\n`, {
          file: c.file,
          env: extensionsTEnv(),
        });
        if (r.errors.length > 0) continue; // the syntax test reports these
        for (const rule of r.ruleset.tables.get(c.table)!.chains.get(c.chain)!.rules) {
          rules++;
          for (const m of rule.matches) collect(groups, `-m ${m.name}`, m.options);
          if (rule.target?.kind === "extension")
            collect(groups, `-j ${rule.target.name}`, rule.target.options);
        }
      }
    }
    expect(rules).toBeGreaterThan(5000);
    const split = [...groups]
      .filter(([, objects]) => objects.length >= COPIES)
      .map(([key, objects]) => [key, distinctMaps(objects)] as const)
      .filter(([, maps]) => maps > 4)
      .map(([key, maps]) => `${key}: ${maps} maps`);
    expect(split).toEqual([]);
  });
});
