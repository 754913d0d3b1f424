import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  Registry,
  findOption,
  PROTOCOLS,
  hasCheckEntry,
  isDiagnostic,
  optionWords,
  parseProto,
  xtCheckEntry,
} from "../../src/netfilter/registry";
import type { XtCheckContext } from "../../src/netfilter/registry";
import type { Descriptor } from "../../src/netfilter/registry";
import { ALL_DESCRIPTORS, createDefaultRegistry, defaultRegistry } from "../../src/netfilter/xt/index";

const XT_DIR = join(__dirname, "../../src/netfilter/xt");

describe("descriptor registry", () => {
  it("registers every descriptor exported by every xt_*.ts file", async () => {
    const files = readdirSync(XT_DIR).filter((f) => /^xt_.*\.ts$/.test(f));
    expect(files.length).toBeGreaterThanOrEqual(30);
    for (const f of files) {
      const mod = (await import(join(XT_DIR, f))) as Record<string, unknown>;
      const descriptors = Object.values(mod).filter(
        (v): v is Descriptor =>
          typeof v === "object" && v !== null && "kind" in v && "save" in v && "parse" in v,
      );
      expect(descriptors.length, `${f} exports no descriptor`).toBeGreaterThan(0);
      for (const d of descriptors) {
        const found = d.kind === "match" ? defaultRegistry.match(d.name) : defaultRegistry.target(d.name);
        expect(found, `${f}: ${d.kind} ${d.name} is not registered`).toBe(d);
        expect(d.kernelFile).toMatch(/^net\/(netfilter|ipv4\/netfilter)\/\w+\.c$/);
        expect(d.userspaceFile).toMatch(/^extensions\/lib(xt|ipt)_\w+\.c$/);
      }
    }
  });

  it("optionWords gives findOption's spec for --name and -name, and nothing else", () => {
    for (const d of defaultRegistry.descriptors()) {
      const words = optionWords(d);
      const names = d.options.flatMap((o) => [o.name, ...(o.aliases ?? [])]);
      for (const n of names) {
        expect(n.startsWith("-"), `${d.name}: option "${n}"`).toBe(false);
        expect(words.get(`--${n}`), `${d.name} --${n}`).toBe(findOption(d, n));
        expect(words.get(`-${n}`), `${d.name} -${n}`).toBe(findOption(d, n));
      }
      expect(words.size).toBe(2 * new Set(names).size);
      expect(optionWords(d)).toBe(words);
    }
  });

  it("xtCheckEntry never looks at the context of a descriptor without hasCheckEntry", () => {
    const untouchable = new Proxy({} as XtCheckContext, {
      get: (_, key) => {
        throw new Error(`context read: ${String(key)}`);
      },
    });
    const without = defaultRegistry.descriptors().filter((d) => !hasCheckEntry(d));
    expect(without.map((d) => d.name)).toContain("comment");
    for (const d of without) expect(xtCheckEntry(d, undefined, untouchable)).toBeUndefined();
    expect(hasCheckEntry(defaultRegistry.target("DNAT")!)).toBe(true);
  });

  it("parseProto reads names, aliases and numbers as before its name map", () => {
    const aliases = new Map([
      ["icmpv6", 58],
      ["ipv6-icmp", 58],
      ["mh", 135],
      ["ipip", 4],
      ["all", 0],
    ]);
    const reference = (text: string): number | undefined => {
      const lower = text.toLowerCase();
      if (/^\d+$/.test(lower)) return Number(lower) <= 255 ? Number(lower) : undefined;
      if (aliases.has(lower)) return aliases.get(lower);
      for (const [num, name] of PROTOCOLS) if (name === lower) return num;
      return undefined;
    };
    const words = [
      ...PROTOCOLS.values(),
      ...aliases.keys(),
      "TCP",
      "Udp",
      "0",
      "6",
      "255",
      "256",
      "007",
      "",
      "x",
    ];
    for (const w of [...words, ...words.map((x) => `${x}1`), "__proto__", "constructor"])
      expect(parseProto(w), w).toBe(reference(w));
  });

  it("a duplicate name is a broken invariant and throws", () => {
    const r = createDefaultRegistry();
    expect(() => r.register(ALL_DESCRIPTORS[0])).toThrow(/duplicate match descriptor "addrtype"/);
    expect(() => new Registry().register(ALL_DESCRIPTORS[0])).not.toThrow();
  });

  it("carries the kernel's .table and .hooks", () => {
    const t = (n: string) => defaultRegistry.target(n)!;
    expect([t("TPROXY").table, t("TPROXY").hooks]).toEqual(["mangle", ["PREROUTING"]]);
    expect(t("TRACE").table).toBe("raw");
    expect(t("MASQUERADE").hooks).toEqual(["POSTROUTING"]);
    expect(t("SNAT").hooks).toEqual(["POSTROUTING", "INPUT"]);
    expect(t("DNAT").hooks).toEqual(["PREROUTING", "OUTPUT"]);
    expect([t("REJECT").table, t("REJECT").hooks]).toEqual(["filter", ["INPUT", "FORWARD", "OUTPUT"]]);
    expect(defaultRegistry.match("socket")!.hooks).toEqual(["PREROUTING", "INPUT"]);
  });

  it("parse returns options or a diagnostic", () => {
    const ctx = {
      table: "filter" as const,
      env: { users: new Map(), groups: new Map() },
      fail: (message: string) => ({ code: "X", message }),
    };
    const ok = defaultRegistry
      .match("mark")!
      .parse([{ name: "mark", args: ["0x1/0xff"], invert: true, column: 1 }], ctx);
    expect(isDiagnostic(ok)).toBe(false);
    expect(defaultRegistry.match("mark")!.save(ok)).toBe("! --mark 0x1/0xff");
    const bad = defaultRegistry
      .match("mark")!
      .parse([{ name: "mark", args: ["x"], invert: false, column: 1 }], ctx);
    expect(isDiagnostic(bad)).toBe(true);
  });
});
