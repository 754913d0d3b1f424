/**
 * JUnit XML for `ctsim test --junit out.xml`, in the common schema CI servers read (Jenkins' junit-10.xsd as
 * also used by GitLab, GitHub actions reporters and Testmo): <testsuites> with one <testsuite> per check file,
 * one <testcase> per case, a <failure> (expectations not met, the diff as text) or an <error> (bad input).
 * A check file that could not run at all is a suite with one <testcase name="(load)"> carrying the <error>.
 *
 * Only the attributes of junit-10.xsd are written (name, tests, failures, errors, skipped, time, classname,
 * message, type), so strict validators accept it. Times are seconds with three decimals.
 * Leaves out on purpose: <properties>, <system-err>, timestamps and host names (not reproducible).
 */
import { formatDiagnostic, formatLocation } from "../errors";
import type { CaseResult, FileResult, RunSummary } from "./run";
import { PLAIN, formatCase } from "./format";

export function xmlEscape(s: string): string {
  return (
    s
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&apos;")
      // XML 1.0 forbids most control characters even escaped.
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, "?")
  );
}

function secs(ms: number): string {
  return (Math.max(0, ms) / 1000).toFixed(3);
}

function attrs(a: Record<string, string | number>): string {
  return Object.entries(a)
    .map(([k, v]) => ` ${k}="${xmlEscape(String(v))}"`)
    .join("");
}

function suiteName(f: FileResult): string {
  return f.file;
}

function testcase(f: FileResult, c: CaseResult): string {
  const head = `    <testcase${attrs({ name: c.name, classname: suiteName(f), time: secs(c.timeMs) })}`;
  if (c.status === "passed") return `${head}/>\n`;
  if (c.status === "error") {
    const d = c.error!;
    return `${head}>\n      <error${attrs({ message: `${formatLocation(d)}: ${d.message}`, type: d.code })}>${xmlEscape(formatDiagnostic(d))}</error>\n    </testcase>\n`;
  }
  const first = c.diffs[0];
  const message = `${c.diffs.length} ${c.diffs.length === 1 ? "field differs" : "fields differ"}: ${c.diffs
    .map((d) => `${d.packet === 0 ? "run" : `packet ${d.packet}`} ${d.field}`)
    .join(", ")}${first ? ` (${formatLocation(first.loc)})` : ""}`;
  return `${head}>\n      <failure${attrs({ message, type: "ExpectationFailed" })}>${xmlEscape(formatCase(c, PLAIN))}</failure>\n    </testcase>\n`;
}

export function junitXml(r: RunSummary, name = "ctsim test"): string {
  let total = 0;
  let time = 0;
  let out = "";
  for (const f of r.files) {
    const loadErrors = f.errors.length > 0 ? 1 : 0;
    const tests = f.cases.length + loadErrors;
    const failures = f.cases.filter((c) => c.status === "failed").length;
    const errors = f.cases.filter((c) => c.status === "error").length + loadErrors;
    total += tests;
    time += f.timeMs;
    out += `  <testsuite${attrs({ name: suiteName(f), tests, failures, errors, skipped: 0, time: secs(f.timeMs) })}>\n`;
    if (loadErrors) {
      const text = f.errors.map((d) => formatDiagnostic(d)).join("\n");
      const d = f.errors[0];
      out += `    <testcase${attrs({ name: "(load)", classname: suiteName(f), time: "0.000" })}>\n      <error${attrs({ message: `${formatLocation(d)}: ${d.message}`, type: d.code })}>${xmlEscape(text)}</error>\n    </testcase>\n`;
    }
    for (const c of f.cases) out += testcase(f, c);
    out += `  </testsuite>\n`;
  }
  const failures = r.failed;
  const errors = r.files.reduce(
    (n, f) => n + (f.errors.length > 0 ? 1 : 0) + f.cases.filter((c) => c.status === "error").length,
    0,
  );
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites${attrs({ name, tests: total, failures, errors, time: secs(time) })}>\n${out}</testsuites>\n`;
}
