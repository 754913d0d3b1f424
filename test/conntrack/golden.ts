// Reads the recorded golden files under test/conntrack/golden/: "## <title>" starts a section, "#" lines are
// comments, every other non-empty line belongs to the current section.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export function goldenSections(name: string): Map<string, string[]> {
  const path = fileURLToPath(new URL(`./golden/${name}`, import.meta.url));
  const out = new Map<string, string[]>();
  let cur: string[] | undefined;
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.startsWith("## ")) {
      cur = [];
      out.set(line.slice(3).trim(), cur);
    } else if (line.startsWith("#") || line.trim() === "") {
      continue;
    } else if (cur) {
      cur.push(line);
    }
  }
  return out;
}

export function section(name: string, title: string): string[] {
  const s = goldenSections(name).get(title);
  if (!s) throw new Error(`golden ${name}: no section "${title}"`);
  return s;
}
