import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { LINT_RULES, findLintRule } from "../../src/lint/registry";
import { SEVERITIES } from "../../src/lint/types";

const rulesDir = new URL("../../src/lint/rules/", import.meta.url);

describe("lint registry", () => {
  it("lists every rule file under src/lint/rules, by id = file name with - for _", async () => {
    const files = readdirSync(rulesDir).filter((f) => f.endsWith(".ts"));
    expect(files.length, "rule files").toBeGreaterThan(5);
    for (const file of files) {
      const id = file.replace(/\.ts$/, "").replace(/_/g, "-");
      const mod = (await import(new URL(file, rulesDir).href)) as Record<string, unknown>;
      const exported = Object.values(mod).filter(
        (v): v is { id: string } => typeof v === "object" && v !== null && "check" in v && "id" in v,
      );
      expect(
        exported.map((r) => r.id),
        `${file} exports`,
      ).toEqual([id]);
      expect(findLintRule(id), `${file}: rule ${id} is not in LINT_RULES`).toBe(exported[0]);
    }
    expect(LINT_RULES.length, `got ${LINT_RULES.length} registered rules, want ${files.length} files`).toBe(
      files.length,
    );
  });

  it("has unique ids, valid severities and a description for each rule", () => {
    const ids = LINT_RULES.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const r of LINT_RULES) {
      expect(SEVERITIES, r.id).toContain(r.severity);
      expect(r.description.length, r.id).toBeGreaterThan(20);
    }
  });
});
