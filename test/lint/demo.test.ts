/**
 * Demonstrations: findings about INVALID packets and NOTRACK are run through HostSim on the example hosts; a
 * demonstration that does not reproduce lowers the finding to info.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { lintText } from "../../src/lint/lint";
import { parseHostFile } from "../../src/host/hostfile";

const ex = (dir: string, file: string) =>
  readFileSync(new URL(`../../examples/${dir}/${file}`, import.meta.url), "utf8");
const host = (dir: string) => parseHostFile(ex(dir, "host.yaml"), `${dir}/host.yaml`);

function lintExample(dir: string, rules: string) {
  return lintText(ex(dir, rules), { file: rules, host: host(dir) }).findings;
}

describe("lint demonstrations on the upstream examples", () => {
  for (const dir of ["seed001", "cni-plugins-816", "moby-18630", "firewalld-961"]) {
    it(`${dir}: snat-invalid-leak is reproduced on rules.v4, and rules-fixed.v4 is clean`, () => {
      const bad = lintExample(dir, "rules.v4").filter((f) => f.id === "snat-invalid-leak");
      expect(bad, "findings").toHaveLength(1);
      expect(bad[0].severity).toBe("warning");
      expect(bad[0].demo?.confirmed, bad[0].demo?.outcome).toBe(true);
      expect(bad[0].demo?.packets[1]).toMatch(/Flags \[F\.\]/);
      expect(bad[0].demo?.outcome).toMatch(/left on \S+ with source \d+\.\d+\.\d+\.\d+ \(not masqueraded\)/);
      const fixed = lintExample(dir, "rules-fixed.v4").filter((f) => f.severity !== "info");
      expect(fixed.map((f) => `${f.id}: ${f.message}`)).toEqual([]);
    });
  }

  it("kubernetes-74839: dnat-invalid-reset shows the out-of-window reply leaving with the backend's address", () => {
    const f = lintExample("kubernetes-74839", "rules.v4").find((x) => x.id === "dnat-invalid-reset");
    expect(f?.demo?.confirmed, f?.demo?.outcome).toBe(true);
    expect(f?.demo?.packets).toHaveLength(4);
    expect(f?.demo?.outcome).toContain("SEQ is over upper bound");
    expect(f?.demo?.outcome).toContain("with source 10.244.2.5:8080 instead of 10.96.0.10:80");
    // kube-proxy's MASQUERADE only applies to marked traffic: its leak finding is not reproduced and lowered.
    const masq = lintExample("kubernetes-74839", "rules.v4").find((x) => x.id === "snat-invalid-leak");
    expect(masq?.severity).toBe("info");
    expect(masq?.demo?.confirmed).toBe(false);
    const fixed = lintExample("kubernetes-74839", "rules-fixed.v4").filter((x) => x.severity !== "info");
    expect(fixed).toEqual([]);
  });

  it("notrack-nat: the SYN both rules select is UNTRACKED and not translated", () => {
    const rules = `*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -p tcp --dport 80 -j NOTRACK\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -d 192.168.1.20/32 -p tcp --dport 80 -j DNAT --to-destination 172.17.0.2:8080\nCOMMIT\n`;
    const f = lintText(rules, { host: host("moby-18630") }).findings.find((x) => x.id === "notrack-nat");
    expect(f?.demo?.confirmed, f?.demo?.outcome).toBe(true);
    expect(f?.demo?.summaries[0]).toContain("UNTRACKED");
    expect(f?.severity).toBe("warning");
  });

  it("without a host no demonstration runs and the static finding stands", () => {
    const f = lintText(ex("seed001", "rules.v4")).findings.find((x) => x.id === "snat-invalid-leak");
    expect(f?.severity).toBe("warning");
    expect(f?.demo).toBeUndefined();
    expect("plan" in (f ?? {})).toBe(false);
  });
});
