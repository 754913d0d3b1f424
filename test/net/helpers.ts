import { decodeIpv4, encodeIpv4, isDecodeFailure } from "../../src/wire/ipv4";
import type { Packet } from "../../src/wire/packet";

export function fromHex(h: string): Uint8Array {
  const b = new Uint8Array(h.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return b;
}

/** Decodes a datagram (offset 14 for an Ethernet frame). */
export function decodeHex(hex: string, offset = 0): Packet {
  const b = fromHex(hex);
  const p = decodeIpv4(b, offset, b.length - offset, { tsSec: 0, tsNsec: 0 });
  if (isDecodeFailure(p)) throw new Error(p.failure);
  return p;
}

export function toHex(p: Packet): string {
  return Buffer.from(encodeIpv4(p)).toString("hex");
}
