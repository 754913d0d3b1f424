/**
 * The Internet checksum (RFC 1071) and the TCP/UDP pseudo-header sum (RFC 9293 §3.1, RFC 768).
 *
 * Mirrors lib/checksum.c (`do_csum`, `ip_compute_csum`), include/net/checksum.h (`csum_fold`,
 * `csum_tcpudp_magic`) and include/net/ip.h (`ip_fast_csum`) of Linux 6.17. The kernel sums 32 or 64 bits at a
 * time and folds; here 16-bit words are accumulated in a double (exact up to 2^53, i.e. far beyond any IPv4
 * datagram) and folded once at the end.
 *
 * Left out on purpose: incremental updates (`csum_replace4`, `inet_proto_csum_replace*`); writers simply
 * recompute the whole sum after a rewrite, which gives the same bytes.
 */

let viewOf: Uint8Array | undefined;
let view: DataView | undefined;

/** A DataView over `buf`, cached for the last buffer seen (readers checksum many packets of one chunk). */
function dataView(buf: Uint8Array): DataView {
  if (buf !== viewOf || view === undefined) {
    viewOf = buf;
    view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  return view;
}

/**
 * Sums `len` bytes from `offset` as big-endian 16-bit words (odd trailing byte padded with zero). Unfolded.
 * Reads 32-bit words and adds their halves into small-integer accumulators (each stays below 2^31 for any IPv4
 * datagram), which V8 keeps in registers; two words per iteration. `view`, when given, is a DataView over `buf`
 * with the same offsets (the decoder has one per chunk); otherwise one is made or reused for `buf`.
 */
export function onesComplementSum(
  buf: Uint8Array,
  offset: number,
  len: number,
  initial = 0,
  view?: DataView,
): number {
  const end = offset + len;
  let i = offset;
  let sum = initial;
  if (len >= 16) {
    const dv = view ?? dataView(buf);
    let hi = 0;
    let lo = 0;
    let hi2 = 0;
    let lo2 = 0;
    const end8 = end - (len & 7);
    for (; i < end8; i += 8) {
      const w = dv.getInt32(i);
      const x = dv.getInt32(i + 4);
      hi += w >>> 16;
      lo += w & 0xffff;
      hi2 += x >>> 16;
      lo2 += x & 0xffff;
    }
    sum += hi + lo + hi2 + lo2;
  }
  for (; i + 1 < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i < end) sum += buf[i] << 8;
  return sum;
}

/** Folds a running sum to 16 bits and complements it (`csum_fold`). */
export function foldChecksum(sum: number): number {
  if (sum >= 0 && sum < 0x100000000) {
    // Any IPv4 datagram's sum: two end-around-carry folds with integer operations.
    sum = (sum >>> 16) + (sum & 0xffff);
    sum = (sum >>> 16) + (sum & 0xffff);
    return ~sum & 0xffff;
  }
  // Beyond 32 bits, where bit operators would truncate it: reduce with division until it fits.
  while (sum > 0xffffffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Checksum of a byte range, e.g. an IPv4 header with its checksum field zeroed (`ip_compute_csum`). */
export function internetChecksum(buf: Uint8Array, offset: number, len: number, view?: DataView): number {
  return foldChecksum(onesComplementSum(buf, offset, len, 0, view));
}

/** Unfolded sum of the IPv4 pseudo header for TCP/UDP (`csum_tcpudp_nofold`). */
export function pseudoHeaderSum(src: number, dst: number, protocol: number, l4Length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + l4Length;
}

/**
 * TCP or UDP checksum over `len` bytes of segment at `offset` (checksum field included as found). Returns the
 * folded value: 0 when the carried checksum verifies, or the checksum to store when the field was zeroed.
 */
export function transportChecksum(
  buf: Uint8Array,
  offset: number,
  len: number,
  src: number,
  dst: number,
  protocol: number,
): number {
  return foldChecksum(onesComplementSum(buf, offset, len, pseudoHeaderSum(src, dst, protocol, len)));
}
