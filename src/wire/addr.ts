/** IPv4 address and MAC helpers. Addresses are unsigned 32-bit numbers in host order. */

export function formatIpv4(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

/**
 * Parses a dotted quad; returns undefined when the text is not exactly four decimal octets 0..255 of 1 to 3
 * digits (leading zeros allowed). Read code unit by code unit, without split or regular expressions: the rule
 * loader calls it for every address of a rule set, mostly before V8 has optimized it.
 */
export function parseIpv4(text: string): number | undefined {
  let value = 0;
  let dots = 0;
  let digits = 0;
  let octet = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e /* . */) {
      if (digits === 0 || octet > 255 || ++dots > 3) return undefined;
      value = value * 256 + octet;
      digits = 0;
      octet = 0;
    } else if (c >= 0x30 && c <= 0x39 && ++digits <= 3) octet = octet * 10 + (c - 0x30);
    else return undefined;
  }
  if (dots !== 3 || digits === 0 || octet > 255) return undefined;
  return (value * 256 + octet) >>> 0;
}

export interface Ipv4Prefix {
  readonly addr: number;
  readonly len: number;
}

/** Parses `a.b.c.d/len` (or a bare address as /32). */
export function parseIpv4Prefix(text: string): Ipv4Prefix | undefined {
  const slash = text.indexOf("/");
  const addr = parseIpv4(slash < 0 ? text : text.slice(0, slash));
  if (addr === undefined) return undefined;
  if (slash < 0) return { addr, len: 32 };
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,2}$/.test(lenText)) return undefined;
  const len = Number(lenText);
  if (len > 32) return undefined;
  return { addr, len };
}

export function prefixMask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

export function inPrefix(addr: number, prefix: Ipv4Prefix): boolean {
  const mask = prefixMask(prefix.len);
  return (addr & mask) >>> 0 === (prefix.addr & mask) >>> 0;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Normalises a MAC address to lowercase colon form; undefined when malformed. */
export function parseMac(text: string): string | undefined {
  const lower = text.toLowerCase();
  return MAC_RE.test(lower) ? lower : undefined;
}

export function macToBytes(mac: string): Uint8Array {
  return Uint8Array.from(mac.split(":").map((h) => parseInt(h, 16)));
}

export function bytesToMac(bytes: Uint8Array, offset = 0): string {
  let out = "";
  for (let i = 0; i < 6; i++) {
    if (i) out += ":";
    out += bytes[offset + i].toString(16).padStart(2, "0");
  }
  return out;
}
