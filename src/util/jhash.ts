/**
 * Bob Jenkins' lookup3 hash as the kernel uses it: include/linux/jhash.h (`jhash`, `jhash2`, `jhash_1word`,
 * `jhash_2words`, `jhash_3words`, `__jhash_mix`, `__jhash_final`, JHASH_INITVAL) and `reciprocal_scale` from
 * include/linux/math.h, Linux 6.17 (Kingxukai/linux @ 0291023e); unchanged since 2.6.
 *
 * All values are unsigned 32-bit numbers. `jhash` reads its key bytes little-end first, as the kernel does on
 * x86-64 (get_unaligned of a u32); the caller of `jhash2` decides how a __be32 is seen as a u32 (see `leU32`).
 * Leaves out: nothing of the arithmetic; the `jhash_size`/`jhash_mask` macros are trivial.
 */

export const JHASH_INITVAL = 0xdeadbeef;

/** rol32(). */
export function rol32(x: number, shift: number): number {
  return ((x << shift) | (x >>> (32 - shift))) >>> 0;
}

/** Mutable a/b/c state for the mixing macros. */
interface Abc {
  a: number;
  b: number;
  c: number;
}

/** __jhash_mix(a, b, c). */
function mix(s: Abc): void {
  let { a, b, c } = s;
  a = (a - c) >>> 0;
  a = (a ^ rol32(c, 4)) >>> 0;
  c = (c + b) >>> 0;
  b = (b - a) >>> 0;
  b = (b ^ rol32(a, 6)) >>> 0;
  a = (a + c) >>> 0;
  c = (c - b) >>> 0;
  c = (c ^ rol32(b, 8)) >>> 0;
  b = (b + a) >>> 0;
  a = (a - c) >>> 0;
  a = (a ^ rol32(c, 16)) >>> 0;
  c = (c + b) >>> 0;
  b = (b - a) >>> 0;
  b = (b ^ rol32(a, 19)) >>> 0;
  a = (a + c) >>> 0;
  c = (c - b) >>> 0;
  c = (c ^ rol32(b, 4)) >>> 0;
  b = (b + a) >>> 0;
  s.a = a;
  s.b = b;
  s.c = c;
}

/** __jhash_final(a, b, c). */
function final(s: Abc): void {
  let { a, b, c } = s;
  c = ((c ^ b) - rol32(b, 14)) >>> 0;
  a = ((a ^ c) - rol32(c, 11)) >>> 0;
  b = ((b ^ a) - rol32(a, 25)) >>> 0;
  c = ((c ^ b) - rol32(b, 16)) >>> 0;
  a = ((a ^ c) - rol32(c, 4)) >>> 0;
  b = ((b ^ a) - rol32(a, 14)) >>> 0;
  c = ((c ^ b) - rol32(b, 24)) >>> 0;
  s.a = a;
  s.b = b;
  s.c = c;
}

/** jhash2(k, length, initval): hash of an array of u32 words. */
export function jhash2(k: ArrayLike<number>, initval: number): number {
  let length = k.length;
  const init = (JHASH_INITVAL + ((length << 2) >>> 0) + (initval >>> 0)) >>> 0;
  const s: Abc = { a: init, b: init, c: init };
  let i = 0;
  while (length > 3) {
    s.a = (s.a + k[i]) >>> 0;
    s.b = (s.b + k[i + 1]) >>> 0;
    s.c = (s.c + k[i + 2]) >>> 0;
    mix(s);
    length -= 3;
    i += 3;
  }
  // The last 1..3 words (the kernel's fallthrough switch).
  if (length > 0) {
    if (length >= 3) s.c = (s.c + k[i + 2]) >>> 0;
    if (length >= 2) s.b = (s.b + k[i + 1]) >>> 0;
    s.a = (s.a + k[i]) >>> 0;
    final(s);
  }
  return s.c;
}

/** jhash(key, length, initval): hash of a byte string. */
export function jhash(key: Uint8Array, initval: number): number {
  let length = key.length;
  const init = (JHASH_INITVAL + length + (initval >>> 0)) >>> 0;
  const s: Abc = { a: init, b: init, c: init };
  const le = (o: number) => (key[o] | (key[o + 1] << 8) | (key[o + 2] << 16) | (key[o + 3] << 24)) >>> 0;
  let o = 0;
  while (length > 12) {
    s.a = (s.a + le(o)) >>> 0;
    s.b = (s.b + le(o + 4)) >>> 0;
    s.c = (s.c + le(o + 8)) >>> 0;
    mix(s);
    length -= 12;
    o += 12;
  }
  // Last block, 1..12 bytes (the kernel's fallthrough switch): byte n lands in word n / 4 at bits 8 * (n % 4).
  if (length > 0) {
    const words = [0, 0, 0];
    for (let n = 0; n < length; n++)
      words[n >> 2] = (words[n >> 2] + ((key[o + n] << ((n & 3) * 8)) >>> 0)) >>> 0;
    s.a = (s.a + words[0]) >>> 0;
    s.b = (s.b + words[1]) >>> 0;
    s.c = (s.c + words[2]) >>> 0;
    final(s);
  }
  return s.c;
}

/** __jhash_nwords(a, b, c, initval). */
function nwords(a: number, b: number, c: number, initval: number): number {
  const s: Abc = { a: (a + initval) >>> 0, b: (b + initval) >>> 0, c: (c + initval) >>> 0 };
  final(s);
  return s.c;
}

export function jhash3words(a: number, b: number, c: number, initval: number): number {
  return nwords(a, b, c, (initval + JHASH_INITVAL + (3 << 2)) >>> 0);
}

export function jhash2words(a: number, b: number, initval: number): number {
  return nwords(a, b, 0, (initval + JHASH_INITVAL + (2 << 2)) >>> 0);
}

export function jhash1word(a: number, initval: number): number {
  return nwords(a, 0, 0, (initval + JHASH_INITVAL + (1 << 2)) >>> 0);
}

/** reciprocal_scale(val, ep_ro): `(u32)(((u64)val * ep_ro) >> 32)`, exact in doubles. */
export function reciprocalScale(val: number, epRo: number): number {
  const a = val >>> 0;
  const b = epRo >>> 0;
  const high = a * (b >>> 16); // < 2^48
  const low = Math.floor((a * (b & 0xffff)) / 0x10000); // < 2^32
  return Math.floor((high + low) / 0x10000) >>> 0;
}

/**
 * A big-endian (network order) 32-bit field read as a host u32 on a little-endian machine (x86-64): what the
 * kernel's `(u32 *)&tuple->src.u3` hands to jhash2 for an IPv4 address kept here in host order.
 */
export function leU32(hostOrder: number): number {
  const v = hostOrder >>> 0;
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}
