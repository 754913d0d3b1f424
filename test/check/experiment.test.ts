/**
 * `ctsim test` for experiments (src/check/experiment.ts): a small tuple-space experiment written inline, cells
 * selected by mode and clients, `failures` (rate within a tolerance, bounds, below/above another column) and
 * `trend` failing with per-field diffs at the line of the condition, bad keys and values as file:line:column
 * errors; and seed 003's own check file through the CLI.
 */
import { describe, expect, it } from "vitest";
import { runCheckText } from "../../src/check/run";
import { main } from "../../src/cli/main";
import { HOST, RULES, memEnv } from "./fixtures";

// per client 0.1 conn/s for 60 s, 4 servers, seed 3:
//   clients  LVS only  NAT mode  pure TPROXY
//       200      0.0%      0.5%         0.3%
//      1000      0.0%      3.2%         0.9%
//      3000      0.0%      9.9%         3.4%
const EXP = `experiment:
  kind: tuple-space
  clients: [200, 1000, 3000]
  per_client_rate: 0.1
  duration: 60
  servers: 4
  seed: 3
`;

function run(cases: string, head = "experiment: exp.yaml\n", files: Record<string, string> = {}) {
  return runCheckText(
    `${head}cases:\n${cases}`,
    "/t/exp.test.yaml",
    memEnv({ "/t/exp.yaml": EXP, ...files }),
  );
}

describe("experiment check files: the story of the table", () => {
  it("LVS alone never fails, NAT mode grows, TPROXY below NAT at every size: passes", () => {
    const r = run(`  - name: story
    expect:
      - { mode: none, failures: 0% }
      - { mode: nat, trend: increasing }
      - { mode: nat, clients: 1000, failures: { value: 3.2%, tolerance: 0.2% } }
      - { mode: nat, clients: [200, 3000], failures: { min: 0.1%, max: 0.12 } }
      - { mode: tproxy, failures: { below: nat, above: none }, trend: increasing }
`);
    expect(r.errors).toEqual([]);
    expect(r.cases[0].status, JSON.stringify(r.cases[0].diffs)).toBe("passed");
  });

  it("a rate without tolerance is equal within the table's rounding (0.05%)", () => {
    const r = run(`  - name: rounding
    expect:
      - { mode: nat, clients: 1000, failures: 3.2% }
      - { mode: nat, clients: 1000, failures: 3.0% }
`);
    const d = r.cases[0].diffs;
    expect(d.length, `got ${d.length} diffs, want 1: ${JSON.stringify(d)}`).toBe(1);
    expect([d[0].field, d[0].want, d[0].loc.line]).toEqual(["failures (nat, 1000 clients)", "3% ± 0.05%", 6]);
    expect(d[0].got).toMatch(/^3\.[12]\d?%$/);
  });

  it("each unmet condition is one diff naming column and row, at the condition's line and column", () => {
    const r = run(`  - name: wrong story
    expect:
      - mode: nat
        failures:
          below: tproxy
          max: 5%
      - { mode: none, trend: increasing }
      - { mode: tproxy, clients: 200, failures: { above: nat } }
`);
    expect(r.cases[0].status).toBe("failed");
    const d = r.cases[0].diffs.map((x) => [x.field, x.want, x.loc.line, x.loc.column]);
    expect(d).toContainEqual(["failures.below (nat, 200 clients)", "below tproxy (0.33%)", 7, 11]);
    expect(d).toContainEqual(["failures.max (nat, 3000 clients)", "<= 5%", 8, 11]);
    expect(d.some((x) => x[0] === "failures.max (nat, 1000 clients)")).toBe(false);
    const trend = r.cases[0].diffs.find((x) => x.field === "trend (none)");
    expect(trend?.want).toBe("increasing with clients");
    expect(trend?.got).toBe("200: 0%, 1000: 0%, 3000: 0% (not increasing from 200 to 1000 clients)");
    expect(d).toContainEqual(["failures.above (tproxy, 200 clients)", "above nat (0.5%)", 10, 51]);
    expect(r.cases[0].diffs.length, JSON.stringify(d)).toBe(6); // 3 below + 1 max + trend + above
  });

  it("a row the experiment does not have is a diff at clients:", () => {
    const r = run(`  - name: no row
    expect:
      - { mode: nat, clients: [1000, 500], failures: { max: 50% } }
`);
    const d = r.cases[0].diffs;
    expect(d.map((x) => [x.field, x.want, x.got, x.loc.line])).toEqual([
      ["clients", "a row for 500 clients", "the experiment has rows for 200, 1000, 3000 clients", 5],
    ]);
  });

  it("seed: at the top replaces the experiment's seed (the cells change)", () => {
    const base = `  - name: seed
    expect:
      - { mode: nat, clients: 1000, failures: { value: 3.2%, tolerance: 0 } }
`;
    const a = run(base);
    const b = run(base, "experiment: exp.yaml\nseed: 99\n");
    // tolerance 0: both seeds miss 3.2% exactly, by different amounts (the got texts differ)
    expect(a.cases[0].diffs.map((x) => x.got)).not.toEqual(b.cases[0].diffs.map((x) => x.got));
  });
});

describe("experiment check files: bad input", () => {
  const errorOf = (r: ReturnType<typeof run>) => {
    const e = r.errors[0] ?? r.cases[0]?.error;
    return e ? [e.code, e.line, e.column, e.message] : undefined;
  };

  it("values: an unknown mode, a bare number above 1, a typo in failures, an unknown trend", () => {
    const r = run(`  - name: bad
    expect:
      - mode: natt
        failures: 5
      - { mode: nat, failures: { blow: tproxy } }
      - { mode: nat, trend: up }
`);
    const e = r.errors.map((x) => [x.code, x.line, x.column]);
    expect(e).toEqual([
      ["CHECK_BAD_VALUE", 5, 15],
      ["CHECK_BAD_VALUE", 6, 19],
      ["CHECK_UNKNOWN_KEY", 7, 34],
      ["CHECK_BAD_VALUE", 8, 29],
    ]);
    expect(r.errors[1].message).toContain("write 5% for a percentage");
    expect(r.errors[2].message).toContain('did you mean "below"?');
  });

  it("an expectation without mode:, or with a packet key, is an error at the expectation", () => {
    expect(errorOf(run(`  - name: x\n    expect:\n      - { failures: 1% }\n`))?.slice(0, 3)).toEqual([
      "CHECK_MISSING_KEY",
      5,
      9,
    ]);
    const e = errorOf(run(`  - name: x\n    expect:\n      - { mode: nat, fate: dropped }\n`));
    expect(e?.slice(0, 3)).toEqual(["CHECK_BAD_KEY", 5, 22]);
    expect(e?.[3]).toContain("fate: not with experiment:");
  });

  it("packets, host keys, or a file that is a topology are errors", () => {
    const withPackets = run(
      `  - name: p\n    packets: "eth0 In IP 1.2.3.4.1 > 5.6.7.8.80: Flags [S], seq 1, win 1, length 0"\n    expect:\n      - { mode: nat, failures: 1% }\n`,
    );
    expect(errorOf(withPackets)?.slice(0, 2)).toEqual(["CHECK_BAD_KEY", 3]);
    const withHost = run(
      `  - name: h\n    expect:\n      - { mode: nat, failures: 1% }\n`,
      "experiment: exp.yaml\nhost: h.yaml\n",
    );
    expect(errorOf(withHost)?.slice(0, 2)).toEqual(["CHECK_BAD_KEY", 2]);
    const topo = run(
      `  - name: t\n    expect:\n      - { mode: nat, failures: 1% }\n`,
      "experiment: net.yaml\n",
      {
        "/t/net.yaml": "nodes: {}\n",
      },
    );
    expect(errorOf(topo)?.[3]).toContain("has no experiment: key");
  });

  it("an error in the experiment file points into that file", () => {
    const r = run(
      `  - name: x\n    expect:\n      - { mode: nat, failures: 1% }\n`,
      "experiment: bad.yaml\n",
      {
        "/t/bad.yaml": EXP.replace("duration: 60", "duration: soon"),
      },
    );
    expect(r.errors.map((e) => [e.file, e.line, e.code])).toEqual([["/t/bad.yaml", 5, "TOPO_BAD_NUMBER"]]);
  });

  it("experiment keys in a host or topology check file are errors at the key", () => {
    const host = runCheckText(
      `host: h.yaml\nrules: r.v4\ncases:\n  - name: x\n    packets: "eth0 In IP 1.2.3.4.1 > 5.6.7.8.80: Flags [S], seq 1, win 1, length 0"\n    expect:\n      - { fate: forwarded, trend: increasing }\n`,
      "/t/h.test.yaml",
      memEnv({ "/t/h.yaml": HOST, "/t/r.v4": RULES }),
    );
    expect(host.errors.map((e) => [e.code, e.line, e.column, e.message])).toEqual([
      ["CHECK_BAD_KEY", 7, 28, "trend: only with experiment:"],
    ]);
  });
});

describe("examples/seed003-tproxy/seed003.test.yaml through the CLI", () => {
  it("passes, and --help documents the experiment form", async () => {
    let out = "";
    let err = "";
    const io = { stdout: (t: string) => (out += t), stderr: (t: string) => (err += t) };
    const code = await main(["test", "examples/seed003-tproxy/seed003.test.yaml"], io);
    expect(code, `${out}${err}`).toBe(0);
    expect(out).toContain("3 cases in 1 file: 3 passed, 0 failed, 0 errors");
    out = "";
    await main(["test", "--help"], io);
    expect(out).toMatch(/experiment: experiment\.yaml/);
    expect(out).toMatch(/trend: increasing/);
  });
});
