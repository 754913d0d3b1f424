/**
 * Big-endian (network order) stores into byte arrays, for the encoders that build headers byte by byte
 * (src/wire/ipv4.ts, the host's own replies in src/net, NAT's rewrites of quoted headers). Not a kernel port.
 */

/** Stores the low 16 bits of `v` at b[o], b[o + 1]. */
export function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

/** Stores `v` as an unsigned 32-bit number at b[o..o + 3]. */
export function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
