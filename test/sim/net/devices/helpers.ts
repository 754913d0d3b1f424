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

import type { NetNode, SentPacket } from "../../../../src/sim/net/types";
import { parseHostFile } from "../../../../src/host/hostfile";
import { loadRuleset } from "../../../../src/netfilter/parse_script";
import { LinuxNode } from "../../../../src/sim/net/linux_node";

/** A node that records what it receives and answers with `reply` (nothing by default). */
export class Probe implements NetNode {
  readonly interfaces: readonly string[];
  readonly got: { iface: string; packet: Packet; time: number }[] = [];
  constructor(
    readonly name: string,
    ifaces: readonly string[] = ["eth0"],
    private readonly reply?: (p: Packet, iface: string) => SentPacket[],
  ) {
    this.interfaces = ifaces;
  }
  receive(packet: Packet, iface: string, time: number): NodeOutput {
    this.got.push({ iface, packet, time });
    const sent = this.reply ? this.reply(packet, iface) : [];
    return { sent, hops: [{ node: this.name, inIface: iface, summary: flow(packet), fate: "received" }] };
  }
}

/** A LinuxNode from host-file YAML and iptables-save/script text. */
export function linux(name: string, hostYaml: string, rules = "", seed = 1): LinuxNode {
  const host = parseHostFile(hostYaml, `${name}.yaml`);
  const rs = loadRuleset(rules, { file: `${name}.rules` });
  if (rs.errors.length) throw new Error(`${name}: ${rs.errors.map((e) => e.message).join("; ")}`);
  return new LinuxNode({ name, host, ruleset: rs.ruleset, seed });
}
