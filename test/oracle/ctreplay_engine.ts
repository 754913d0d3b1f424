/**
 * The conntrack-only engine for `compare.ts --only conntrack`: replays a CTPROBE recording's packets through
 * `CtReplay` (src/sim/ctreplay.ts: conntrack of a rule-less host) and answers with the ctstate the CTPROBE chain
 * would have reported and `conntrack -L -o extended` after each packet.
 *
 * The CTPROBE chain sits in mangle PREROUTING, which every input packet passes; rules.v4 of those scenarios has no
 * other effect on conntrack (raw TRACE, mangle RETURNs), so the rule-less replay is a fair model of them.
 */
import type { Packet } from "../../src/wire/packet";
import { CtReplay } from "../../src/sim/ctreplay";
import type { SimInput, SimPacketResult } from "./compare";

/**
 * The time at which the recorder injected each packet, relative to the first, in seconds: after each packet it
 * waited the larger of the scenario's gap and the difference of the packets' own timestamps.
 */
export function recorderClock(packets: readonly Packet[], gapMs: number): number[] {
  const out: number[] = [];
  let t = 0;
  for (let i = 0; i < packets.length; i++) {
    if (i > 0) {
      const a = packets[i - 1];
      const b = packets[i];
      const diff = b.tsSec - a.tsSec + (b.tsNsec - a.tsNsec) / 1e9;
      t += Math.max(gapMs / 1000, diff);
    }
    out.push(t);
  }
  return out;
}

/** Packets re-stamped with the recorder's clock (base 1_000_000 s so the first packet is not time 0). */
export function withRecorderClock(packets: readonly Packet[], gapMs: number): Packet[] {
  const clock = recorderClock(packets, gapMs);
  const base = 1_000_000;
  return packets.map((p, i) => {
    const t = base + clock[i];
    const sec = Math.floor(t);
    return { ...p, tsSec: sec, tsNsec: Math.round((t - sec) * 1e9) };
  });
}

export function simulateConntrackOnly(input: SimInput): SimPacketResult[] {
  const replay = new CtReplay({ host: input.host, sysctl: input.sysctl });
  const out: SimPacketResult[] = [];
  for (const pkt of withRecorderClock(input.packets, input.gapMs)) {
    const step = replay.step(pkt);
    const ctstate =
      step.state === "INVALID" || step.state === "UNTRACKED" ? step.state : `${step.state} ${step.dir}`;
    out.push({
      ctstate: step.state === "NOT_SEEN" ? [] : [ctstate],
      conntrack: replay.list(step.time, { extended: true }),
    });
  }
  return out;
}
