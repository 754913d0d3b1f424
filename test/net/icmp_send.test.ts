import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { icmpSend, type IcmpSendContext } from "../../src/net/icmp_send";
import type { Packet } from "../../src/wire/packet";
import { decodeHex, fromHex, toHex } from "./helpers";

const rec = JSON.parse(
  readFileSync(join(__dirname, "../oracle/recordings/09-udp-closed-port-local.json"), "utf8"),
) as { packets: { input: { hex: string }; egress: { iface: string; hex: string }[] }[] };

const ctx: IcmpSendContext = {
  dstType: "LOCAL",
  pktType: "host",
  sourceFor: () => undefined,
  ttl: 64,
  id: 26223, // the recorded id (the kernel draws it at random)
};

describe("icmp_send: UDP to a closed local port (scenario 09, Linux 6.18.44)", () => {
  const input = decodeHex(rec.packets[0].input.hex, 14);
  const want = rec.packets[0].egress[0].hex.slice(28); // strip the Ethernet header
  it("builds the recorded ICMP port unreachable byte for byte", () => {
    const r = icmpSend(input, 3, 3, 0, ctx);
    if (!("packet" in r)) throw new Error(`refused: ${r.refused}`);
    expect(toHex(r.packet)).toBe(want);
    expect(r.packet.ip.tos).toBe(0xc0);
    expect(r.packet.ip.df).toBe(false);
  });
});

function udp(over: Partial<Packet["ip"]> = {}, payloadLength = 10): Packet {
  const base = decodeHex(rec.packets[0].input.hex, 14);
  return { ...base, ip: { ...base.ip, ...over }, payloadLength, payload: new Uint8Array(payloadLength) };
}

describe("icmp_send refusals and limits", () => {
  it("quotes at most 576 - 28 bytes of a large datagram", () => {
    const big = udp({ totalLength: 1500 }, 1472);
    const r = icmpSend(big, 3, 3, 0, ctx);
    if (!("packet" in r)) throw new Error(r.refused);
    expect(r.packet.ip.totalLength).toBe(576);
  });
  it("uses the routing source for a packet that was not addressed to us", () => {
    const r = icmpSend(udp(), 3, 13, 0, { ...ctx, dstType: "UNICAST", sourceFor: () => 0xcb007101 });
    if (!("packet" in r)) throw new Error(r.refused);
    expect(r.packet.ip.src).toBe(0xcb007101);
  });
  it("refuses non-first fragments, broadcasts, PACKET_OTHERHOST and multicast sources", () => {
    expect(icmpSend(udp({ fragOffset: 10 }), 3, 3, 0, ctx)).toEqual({ refused: "not the first fragment" });
    expect("refused" in icmpSend(udp(), 3, 3, 0, { ...ctx, dstType: "BROADCAST" })).toBe(true);
    expect("refused" in icmpSend(udp(), 3, 3, 0, { ...ctx, pktType: "otherhost" })).toBe(true);
    expect("refused" in icmpSend(udp({ src: 0xe0000001 }), 3, 3, 0, ctx)).toBe(true);
  });
  it("refuses an error about an ICMP error, but answers an echo request", () => {
    const err = icmpSend(udp(), 3, 3, 0, ctx);
    if (!("packet" in err)) throw new Error(err.refused);
    expect(icmpSend(err.packet, 3, 3, 0, ctx)).toEqual({ refused: "no ICMP error about an ICMP error" });
    const echo = decodeHex(
      "4500001c000100004001f98dc6336402c63364010800f7ff00000000".replace(/f98d/, "0000"),
    );
    expect("packet" in icmpSend(echo, 3, 10, 0, ctx)).toBe(true);
  });
  it("carries the info word (next-hop MTU for fragmentation needed)", () => {
    const r = icmpSend(udp(), 3, 4, 1400, ctx);
    if (!("packet" in r)) throw new Error(r.refused);
    expect(r.packet.l4.kind === "icmp" && r.packet.l4.restOfHeader).toBe(1400);
    expect(fromHex(toHex(r.packet))[27]).toBe(1400 & 0xff);
  });
});
