import { describe, expect, it } from "vitest";
import { nfSendReset, tcpV4SendReset } from "../../src/net/tcp_reset";
import type { Packet, TcpHeader } from "../../src/wire/packet";
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from "../../src/wire/packet";
import { decodeHex } from "./helpers";

// SYN 203.0.113.1:40000 -> 192.0.2.80:80 seq 1000 (scenario 01's first egress packet), tos 0x03 added below.
const SYN = decodeHex(
  "4500002c03e940003f063991cb007101c00002509c400050000003e8000000006002faf0fe6a0000020405b4",
);

function seg(flags: number, seq: number, ack: number, payload = 0, tos = 0): Packet {
  const tcp: TcpHeader = { ...(SYN.l4 as TcpHeader), flags, seq, ack, options: [], dataOffset: 20 };
  return {
    ...SYN,
    ip: { ...SYN.ip, tos, totalLength: 40 + payload },
    l4: tcp,
    payloadLength: payload,
    payload: new Uint8Array(payload),
  };
}

function rst(r: ReturnType<typeof nfSendReset>): Packet & { l4: TcpHeader } {
  if (!("packet" in r)) throw new Error(`refused: ${r.refused}`);
  if (r.packet.l4.kind !== "tcp") throw new Error("not tcp");
  return r.packet as Packet & { l4: TcpHeader };
}

describe("tcp_v4_send_reset (closed local port)", () => {
  it("answers a SYN with RST|ACK, seq 0, ack = ISN + 1, window 0, DF, id 0, TTL 64", () => {
    const p = rst(tcpV4SendReset(SYN, { dstType: "LOCAL", ttl: 64 }));
    expect([p.l4.flags, p.l4.seq, p.l4.ack, p.l4.window]).toEqual([TCP_RST | TCP_ACK, 0, 1001, 0]);
    expect([p.ip.df, p.ip.id, p.ip.ttl, p.ip.src, p.ip.dst]).toEqual([true, 0, 64, SYN.ip.dst, SYN.ip.src]);
    expect([p.l4.srcPort, p.l4.dstPort]).toEqual([80, 40000]);
    expect(p.l4Checksum).toBe("correct");
  });
  it("answers an ACK with a bare RST whose seq is the offending ack", () => {
    const p = rst(tcpV4SendReset(seg(TCP_ACK | TCP_PSH, 5000, 777, 10), { dstType: "LOCAL", ttl: 64 }));
    expect([p.l4.flags, p.l4.seq, p.l4.ack]).toEqual([TCP_RST, 777, 0]);
  });
  it("counts FIN and payload into the ack", () => {
    const p = rst(tcpV4SendReset(seg(TCP_FIN, 100, 0, 7), { dstType: "LOCAL", ttl: 64 }));
    expect(p.l4.ack).toBe(108);
  });
  it("keeps the TOS without the ECN bits", () => {
    const p = rst(tcpV4SendReset(seg(TCP_SYN, 1, 0, 0, 0x13), { dstType: "LOCAL", ttl: 64 }));
    expect(p.ip.tos).toBe(0x10);
  });
  it("never answers an RST, nor a segment not addressed to this host", () => {
    expect(tcpV4SendReset(seg(TCP_RST, 1, 0), { dstType: "LOCAL", ttl: 64 })).toEqual({
      refused: "no RST for an RST",
    });
    expect("refused" in tcpV4SendReset(SYN, { dstType: "UNICAST", ttl: 64 })).toBe(true);
  });
});

describe("nf_send_reset (REJECT --reject-with tcp-reset)", () => {
  const ctx = { dstType: "UNICAST", ttl: 64, hook: "FORWARD" };
  it("resets a forwarded SYN from the offending destination, TOS 0", () => {
    const p = rst(nfSendReset(seg(TCP_SYN, 1000, 0, 0, 0x10), ctx));
    expect([p.ip.src, p.ip.dst, p.ip.tos, p.l4.flags, p.l4.ack]).toEqual([
      SYN.ip.dst,
      SYN.ip.src,
      0,
      TCP_RST | TCP_ACK,
      1001,
    ]);
  });
  it("refuses RSTs, fragments, bad checksums (not in OUTPUT) and broadcasts", () => {
    expect("refused" in nfSendReset(seg(TCP_RST | TCP_ACK, 1, 1), ctx)).toBe(true);
    expect("refused" in nfSendReset({ ...SYN, ip: { ...SYN.ip, fragOffset: 3 } }, ctx)).toBe(true);
    const bad = { ...SYN, l4Checksum: "incorrect" as const };
    expect(nfSendReset(bad, ctx)).toEqual({ refused: "bad TCP checksum" });
    expect("packet" in nfSendReset(bad, { ...ctx, hook: "OUTPUT" })).toBe(true);
    expect("refused" in nfSendReset(SYN, { ...ctx, dstType: "BROADCAST" })).toBe(true);
  });
});
