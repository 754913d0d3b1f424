/** Topology files with `experiment:` (seed 003's tuple-space table), through `ctsim run` as the README runs it. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { main } from "../../../src/cli/main";
import { parseExperiment } from "../../../src/sim/net/experiment";
import { InputError } from "../../../src/errors";

async function run(args: string[]) {
  let out = "";
  let err = "";
  const code = await main(args, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

describe("ctsim run with experiment: (seed 003)", () => {
  it("prints the failure table of examples/seed003-tproxy/table.txt (NAT mode and pure TPROXY as clients grow)", async () => {
    const r = await run(["run", "examples/seed003-tproxy/experiment.yaml"]);
    expect(r.code, r.err).toBe(0);
    const golden = readFileSync("examples/seed003-tproxy/table.txt", "utf8");
    expect(r.out.endsWith(golden), `got:\n${r.out}\nwant it to end with:\n${golden}`).toBe(true);
  });

  it("json: the rows as numbers; the LVS alone never fails, NAT mode fails more than TPROXY", async () => {
    const r = await run(["run", "examples/seed003-tproxy/experiment.yaml", "--format", "json"]);
    const rows = JSON.parse(r.out).rows as { clients: number; none: number; nat: number; tproxy: number }[];
    expect(rows.map((x) => x.clients)).toEqual([100, 500, 1000, 2000, 5000, 10000]);
    for (const x of rows) {
      expect(x.none, `LVS only at ${x.clients} clients`).toBe(0);
      expect(x.nat, `NAT mode > TPROXY at ${x.clients} clients`).toBeGreaterThan(x.tproxy);
    }
    expect(rows[5].nat, "got the NAT-mode failure rate at 10000 clients").toBeCloseTo(0.373, 3);
  });

  it("bad input is an InputError at the key", () => {
    const text =
      "experiment:\n  kind: tuple-space\n  clients: [100]\n  per_client_rate: fast\n  duration: 1\n  servers: 1\n";
    let err: unknown;
    try {
      parseExperiment(text, "x.yaml");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    const d = (err as InputError).diagnostic;
    expect([d.line, d.column, d.code]).toEqual([4, 20, "TOPO_BAD_NUMBER"]);
  });

  it("a file without experiment: is a topology (undefined)", () => {
    expect(parseExperiment("nodes: {}\n")).toBeUndefined();
  });
});
