// JUnit output checked against the structure of the common JUnit schema (Jenkins junit-10.xsd, as read by
// GitLab, GitHub reporters and Testmo): a small XML reader and a schema check of our own, no dependency.
import { describe, expect, it } from "vitest";
import { junitXml, xmlEscape } from "../../src/check/junit";
import { runCheckFiles } from "../../src/check/run";
import { HOST, RULES, memEnv } from "./fixtures";

interface El {
  name: string;
  attrs: Record<string, string>;
  children: El[];
  text: string;
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function unescape(s: string): string {
  return s.replace(/&(\w+);/g, (m, e: string) => {
    if (!(e in ENTITIES)) throw new Error(`unknown entity ${m}`);
    return ENTITIES[e];
  });
}

/** A strict reader for the XML subset JUnit files use (declaration, elements, attributes, text). */
function parseXml(xml: string): El {
  let i = 0;
  const decl = /^<\?xml version="1\.0" encoding="UTF-8"\?>\n/.exec(xml);
  if (!decl) throw new Error("missing XML declaration");
  i = decl[0].length;
  const ws = () => {
    while (/\s/.test(xml[i] ?? "")) i++;
  };
  const element = (): El => {
    const open = /^<([A-Za-z][\w-]*)/.exec(xml.slice(i));
    if (!open) throw new Error(`expected an element at ${i}`);
    i += open[0].length;
    const el: El = { name: open[1], attrs: {}, children: [], text: "" };
    for (;;) {
      ws();
      if (xml.startsWith("/>", i)) {
        i += 2;
        return el;
      }
      if (xml[i] === ">") {
        i++;
        break;
      }
      const a = /^([A-Za-z][\w-]*)="([^"<]*)"/.exec(xml.slice(i));
      if (!a) throw new Error(`bad attribute at ${i}: ${xml.slice(i, i + 20)}`);
      if (a[1] in el.attrs) throw new Error(`duplicate attribute ${a[1]}`);
      el.attrs[a[1]] = unescape(a[2]);
      i += a[0].length;
    }
    for (;;) {
      const close = `</${el.name}>`;
      if (xml.startsWith(close, i)) {
        i += close.length;
        return el;
      }
      if (xml[i] === "<") el.children.push(element());
      else {
        const end = xml.indexOf("<", i);
        if (end < 0) throw new Error(`unclosed <${el.name}>`);
        el.text += unescape(xml.slice(i, end));
        i = end;
      }
    }
  };
  const root = element();
  ws();
  if (i !== xml.length) throw new Error("content after the root element");
  return root;
}

const INT = /^\d+$/;
const DECIMAL = /^\d+(\.\d+)?$/;

/** junit-10.xsd: allowed attributes (required ones marked) and children per element. */
const SCHEMA: Record<
  string,
  { attrs: Record<string, RegExp | null>; required: string[]; children: string[] }
> = {
  testsuites: {
    attrs: { name: null, time: DECIMAL, tests: INT, failures: INT, disabled: INT, errors: INT },
    required: [],
    children: ["testsuite"],
  },
  testsuite: {
    attrs: {
      name: null,
      tests: INT,
      failures: INT,
      errors: INT,
      time: DECIMAL,
      disabled: INT,
      skipped: INT,
      timestamp: null,
      hostname: null,
      id: null,
      package: null,
    },
    required: ["name", "tests"],
    children: ["properties", "testcase", "system-out", "system-err"],
  },
  testcase: {
    attrs: { name: null, assertions: null, time: DECIMAL, classname: null, status: null },
    required: ["name"],
    children: ["skipped", "error", "failure", "system-out", "system-err"],
  },
  failure: { attrs: { message: null, type: null }, required: [], children: [] },
  error: { attrs: { message: null, type: null }, required: [], children: [] },
  skipped: { attrs: { message: null }, required: [], children: [] },
};

function validate(el: El, path = el.name): string[] {
  const s = SCHEMA[el.name];
  if (!s) return [`${path}: element <${el.name}> is not in the schema`];
  const out: string[] = [];
  for (const [k, v] of Object.entries(el.attrs)) {
    if (!(k in s.attrs)) out.push(`${path}: attribute ${k} not allowed`);
    else if (s.attrs[k] && !s.attrs[k]!.test(v)) out.push(`${path}: ${k}="${v}" has the wrong type`);
  }
  for (const r of s.required) if (!(r in el.attrs)) out.push(`${path}: missing required attribute ${r}`);
  for (const c of el.children)
    if (!s.children.includes(c.name)) out.push(`${path}: <${c.name}> not allowed inside <${el.name}>`);
    else out.push(...validate(c, `${path}/${c.name}`));
  if (
    el.name === "testcase" &&
    el.children.filter((c) => ["failure", "error", "skipped"].includes(c.name)).length > 1
  )
    out.push(`${path}: more than one of failure/error/skipped`);
  if (el.name === "testsuite") {
    const cases = el.children.filter((c) => c.name === "testcase");
    const count = (n: string) => cases.filter((c) => c.children.some((x) => x.name === n)).length;
    if (Number(el.attrs.tests) !== cases.length)
      out.push(`${path}: tests=${el.attrs.tests}, got ${cases.length} testcases`);
    if (Number(el.attrs.failures ?? 0) !== count("failure")) out.push(`${path}: failures count wrong`);
    if (Number(el.attrs.errors ?? 0) !== count("error")) out.push(`${path}: errors count wrong`);
  }
  return out;
}

const CHECK = (fate: string) => `host: h.yaml
rules: r.v4
cases:
  - name: a FIN <with> "quotes" & ampersands
    packets: |
      eth0 In IP 192.168.100.105.1914 > 2.2.2.2.80: Flags [F.], seq 1, ack 1, win 512, length 0
    expect:
      - fate: ${fate}
  - name: the SYN
    packets: |
      eth0 In IP 192.168.100.105.1836 > 2.2.2.2.80: Flags [S], seq 100, win 512, length 0
    expect:
      - fate: forwarded
`;

describe("JUnit XML", () => {
  const env = memEnv({
    "h.yaml": HOST,
    "r.v4": RULES,
    "pass.yaml": CHECK("forwarded"),
    "fail.yaml": CHECK("dropped"),
    "bad.yaml": "cases: 3\n",
    "badpacket.yaml": CHECK("dropped").replace("Flags [F.]", "Flags [Z]"),
  });
  const summary = runCheckFiles(["pass.yaml", "fail.yaml", "bad.yaml", "badpacket.yaml"], env);
  const xml = junitXml(summary);
  const root = parseXml(xml);

  it("validates against the schema (elements, attributes, types, counts)", () => {
    expect(root.name).toBe("testsuites");
    expect(validate(root)).toEqual([]);
  });

  it("the schema check itself rejects what the schema forbids", () => {
    const broken = parseXml(
      '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites><testsuite tests="2"><testcase file="x"/><bogus/></testsuite></testsuites>',
    );
    expect(validate(broken)).toEqual([
      "testsuites/testsuite: missing required attribute name",
      "testsuites/testsuite/testcase: attribute file not allowed",
      "testsuites/testsuite/testcase: missing required attribute name",
      "testsuites/testsuite: <bogus> not allowed inside <testsuite>",
      "testsuites/testsuite: tests=2, got 1 testcases",
    ]);
  });

  it("one suite per file; failures carry the field diff, errors the location", () => {
    const suites = root.children;
    expect(suites.map((s) => [s.attrs.name, s.attrs.tests, s.attrs.failures, s.attrs.errors])).toEqual([
      ["pass.yaml", "2", "0", "0"],
      ["fail.yaml", "2", "1", "0"],
      ["bad.yaml", "1", "0", "1"],
      ["badpacket.yaml", "2", "0", "1"],
    ]);
    expect(root.attrs).toMatchObject({ tests: "7", failures: "1", errors: "2" });
    const failed = suites[1].children[0];
    expect(failed.attrs.name).toBe('a FIN <with> "quotes" & ampersands');
    const failure = failed.children[0];
    expect(failure.name).toBe("failure");
    expect(failure.attrs.message).toBe("1 field differs: packet 1 fate (fail.yaml:8:9)");
    expect(failure.text).toContain("fate\n            want: dropped\n            got:  forwarded");
    const loadError = suites[2].children[0].children[0];
    expect([loadError.name, loadError.attrs.type]).toEqual(["error", "CHECK_EXPECTED_LIST"]);
    expect(loadError.attrs.message.startsWith("bad.yaml:1:1:")).toBe(true);
    const caseError = suites[3].children[0].children[0];
    expect(caseError.attrs.message.startsWith("badpacket.yaml:6:")).toBe(true);
  });

  it("escapes markup and control characters", () => {
    expect(xmlEscape(`a<b>&"c'\u0001`)).toBe("a&lt;b&gt;&amp;&quot;c&apos;?");
  });
});
