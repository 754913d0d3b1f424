/** Packet and interface builders for the device model tests. */
import { parseTcpdumpText } from "../../../../src/wire/text";
import { parseIpv4 } from "../../../../src/wire/addr";
import type { Packet } from "../../../../src/wire/packet";
import type { HostInterface } from "../../../../src/host/types";
import type { NodeOutput } from "../../../../src/sim/net/types";
import { formatIpv4 } from "../../../../src/wire/addr";
import { packetPorts } from "../../../../src/sim/net/devices/common";

/** One packet from a tcpdump line, e.g. `10.0.0.5.40000 > 1.2.3.4.80: Flags [S], seq 1, win 512, length 0`. */
export function pkt(line: string): Packet {
  const r = parseTcpdumpText(`IP ${line}\n`);
  if (r.packets.length !== 1) throw new Error(`bad test packet "${line}": ${JSON.stringify(r.errors)}`);
  return r.packets[0];
}

export function ip(text: string): number {
  const a = parseIpv4(text);
  if (a === undefined) throw new Error(`bad address ${text}`);
  return a;
}

export function iface(name: string, cidr: string): HostInterface {
  const [a, len] = cidr.split("/");
  return { name, mac: "02:00:00:00:00:01", addresses: [{ addr: ip(a), len: Number(len) }] };
}

/** `src:sport > dst:dport` of a packet, for comparisons. */
export function flow(p: Packet): string {
  const [s, d] = packetPorts(p);
  return `${formatIpv4(p.ip.src)}:${s} > ${formatIpv4(p.ip.dst)}:${d}`;
}

/** The single packet a node sent, or a failure naming what it did instead. */
export function only(out: NodeOutput): { iface: string; packet: Packet } {
  if (out.sent.length !== 1)
    throw new Error(
      `got ${out.sent.length} packets sent, want 1 (hops: ${out.hops.map((h) => h.fate).join("; ")})`,
    );
  return out.sent[0];
}
