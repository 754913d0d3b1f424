// net.netfilter.nf_conntrack_* defaults per profile and setting them by kernel name.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { InputError } from "../../src/errors";
import {
  defaultSysctls,
  formatSysctls,
  normaliseSysctlName,
  setSysctl,
  sysctlExists,
  sysctlNames,
} from "../../src/conntrack/sysctl";

function recorded(): Map<string, number> {
  const path = fileURLToPath(new URL("./golden/sysctl-6.18.txt", import.meta.url));
  const m = new Map<string, number>();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const x = /^(\S+) = (\d+)$/.exec(line);
    if (x) m.set(x[1], Number(x[2]));
  }
  return m;
}

function code(f: () => void): string {
  try {
    f();
  } catch (e) {
    if (e instanceof InputError) return e.diagnostic.code;
    throw e;
  }
  return "(no error)";
}

describe("defaults", () => {
  it("6.18 defaults equal a fresh namespace on Linux 6.18.44, knob for knob", () => {
    const want = recorded();
    const got = defaultSysctls("6.18") as unknown as Record<string, number>;
    expect(sysctlNames("6.18").sort()).toEqual([...want.keys()].sort());
    for (const [name, value] of want)
      expect(got[name], `${name}: got ${got[name]}, want ${value}`).toBe(value);
  });

  it("older profiles: UDP stream 180 s, no tcp_ignore_invalid_rst before 6.1", () => {
    expect(defaultSysctls("5.10").nf_conntrack_udp_timeout_stream).toBe(180);
    expect(defaultSysctls("6.1").nf_conntrack_udp_timeout_stream).toBe(120);
    expect(sysctlExists("nf_conntrack_tcp_ignore_invalid_rst", "5.10")).toBe(false);
    expect(sysctlExists("nf_conntrack_tcp_ignore_invalid_rst", "6.1")).toBe(true);
    expect(sysctlNames("3.10")).not.toContain("nf_conntrack_tcp_ignore_invalid_rst");
  });
});

describe("setSysctl", () => {
  it("accepts the kernel name with or without net.netfilter., and the /proc path", () => {
    const s = defaultSysctls("6.18");
    setSysctl(s, "net.netfilter.nf_conntrack_udp_timeout", "3", "6.18");
    setSysctl(s, "nf_conntrack_max", 10, "6.18");
    setSysctl(s, "/proc/sys/net/netfilter/nf_conntrack_tcp_loose", " 0 ", "6.18");
    expect([s.nf_conntrack_udp_timeout, s.nf_conntrack_max, s.nf_conntrack_tcp_loose]).toEqual([3, 10, 0]);
    expect(normaliseSysctlName("net/netfilter/nf_conntrack_acct")).toBe("nf_conntrack_acct");
  });

  it("rejects unknown names, knobs the profile lacks, non-integers and out-of-range values", () => {
    const s = defaultSysctls("5.10");
    expect(code(() => setSysctl(s, "nf_conntrack_bogus", "1", "5.10"))).toBe("SYSCTL_UNKNOWN");
    expect(code(() => setSysctl(s, "nf_conntrack_tcp_ignore_invalid_rst", "1", "5.10"))).toBe(
      "SYSCTL_UNKNOWN",
    );
    expect(code(() => setSysctl(s, "nf_conntrack_udp_timeout", "3s", "5.10"))).toBe("SYSCTL_VALUE");
    expect(code(() => setSysctl(s, "nf_conntrack_tcp_loose", "2", "5.10"))).toBe("SYSCTL_RANGE");
    expect(code(() => setSysctl(s, "nf_conntrack_tcp_max_retrans", "256", "5.10"))).toBe("SYSCTL_RANGE");
    expect(code(() => setSysctl(s, "nf_conntrack_max", "-1", "5.10"))).toBe("SYSCTL_RANGE");
    expect(s.nf_conntrack_tcp_loose, "a rejected value leaves the knob alone").toBe(1);
  });

  it("carries the location into the diagnostic", () => {
    try {
      setSysctl(defaultSysctls("6.18"), "nf_conntrack_acct", "x", "6.18", {
        file: "host.yaml",
        line: 4,
        column: 9,
      });
      expect.unreachable();
    } catch (e) {
      const d = (e as InputError).diagnostic;
      expect([d.file, d.line, d.column, d.code]).toEqual(["host.yaml", 4, 9, "SYSCTL_VALUE"]);
    }
  });

  it("lists in sysctl's format", () => {
    const lines = formatSysctls(defaultSysctls("6.18"), "6.18");
    expect(lines).toContain("net.netfilter.nf_conntrack_tcp_timeout_established = 432000");
  });
});
