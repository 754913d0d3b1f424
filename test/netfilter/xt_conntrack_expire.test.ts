// --ctexpire on an unconfirmed conntrack (first packet, before confirmation): the kernel reads 0 seconds left.
// Recorded in the kernel oracle, scenario 43-match-conntrack (Linux 6.18): `--ctexpire 0:100` matches the first
// SYN in FORWARD although its SYN_SENT timeout is 120 s.
import { describe, expect, it } from "vitest";
import type { MatchDescriptor } from "../../src/netfilter/registry";
import { defaultRegistry } from "../../src/netfilter/xt/index";
import { Conntrack } from "../../src/conntrack/core";
import { FakeHost, packet, par, parseOpts, skbOf, tcp } from "./xt_helpers";

const SYN = packet("198.51.100.2", "203.0.113.2", tcp(40000, 80, 0x02));

function ctexpire(range: string, confirm: boolean, now: number): boolean {
  const table = new Conntrack();
  const r = table.in(SYN, 0, 0);
  if (!r.ct) throw new Error(`no conntrack: ${r.state}`);
  const ct = confirm ? table.confirm(r.ct, 0, r.ctinfo).ct! : r.ct;
  const d = defaultRegistry.match("conntrack") as MatchDescriptor;
  const skb = skbOf(SYN, { ct, ctinfo: r.ctinfo });
  return d.match!(parseOpts(d, `--ctexpire ${range}`), skb, par(new FakeHost(), { now }));
}

describe("conntrack --ctexpire (nf_ct_expires)", () => {
  it("reads 0 seconds left on an unconfirmed conntrack", () => {
    for (const [range, want] of [
      ["0:100", true],
      ["0", true],
      ["100:200", false],
    ] as const) {
      const got = ctexpire(range, false, 5);
      expect(got, `unconfirmed, --ctexpire ${range}: got ${got}, want ${want}`).toBe(want);
    }
  });
  it("reads the seconds left once confirmed (SYN_SENT, 120 s)", () => {
    expect(ctexpire("0:100", true, 5), "confirmed, 115 s left, --ctexpire 0:100").toBe(false);
    expect(ctexpire("110:120", true, 5), "confirmed, 115 s left, --ctexpire 110:120").toBe(true);
  });
});
