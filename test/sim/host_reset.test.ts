// Quiet runs reuse one skb, journey and flight (src/sim/host.ts quietInputFlight). The reset functions must set
// every field the constructors' literals have: each test fills every key of a fresh object with a stale value,
// resets it, and expects exactly the fresh object, so a field added to a constructor only fails here.
import { describe, expect, it } from "vitest";
import {
  newFlightOf,
  newInputJourney,
  newSkb,
  resetFlight,
  resetInputJourney,
  resetSkb,
} from "../../src/sim/host";
import { parseTcpdumpText } from "../../src/wire/text";

const pkt = parseTcpdumpText("IP 198.51.100.2.1836 > 192.0.2.80.80: Flags [S], seq 1, win 512, length 0", {
  defaultIface: "eth0",
}).packets[0];

/** A copy of `fresh` with every key set to a value no constructor uses. */
function stale<T extends object>(fresh: T): T {
  const o: Record<string, unknown> = {};
  for (const k of Object.keys(fresh)) o[k] = { stale: k };
  return o as T;
}

describe("quiet-run resets", () => {
  it("resetSkb leaves an skb equal to newSkb's", () => {
    for (const [iface, local, trace] of [
      ["eth0", false, true],
      [undefined, true, false],
    ] as const) {
      const fresh = newSkb(pkt, iface, local, trace);
      const s = stale(fresh);
      resetSkb(s, pkt, iface, local, trace);
      expect(s).toEqual(fresh);
    }
  });

  it("resetInputJourney leaves a journey equal to newInputJourney's", () => {
    for (const quiet of [true, false]) {
      const fresh = newInputJourney(3, pkt, "eth0", false, quiet);
      const j = stale(fresh);
      resetInputJourney(j, 3, pkt, "eth0", false, quiet);
      expect(j).toEqual(fresh);
    }
  });

  it("resetFlight leaves a flight equal to newFlightOf's", () => {
    const skb = newSkb(pkt, "eth0", false, false);
    const journey = newInputJourney(0, pkt, "eth0", false, true);
    const fresh = newFlightOf(skb, journey);
    const st = { ...stale(fresh), skb, journey };
    resetFlight(st);
    expect(st).toEqual(fresh);
  });
});
