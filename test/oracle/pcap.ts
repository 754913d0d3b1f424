/**
 * The recorder's own minimal classic-pcap reader/writer (LINKTYPE_ETHERNET, microsecond or nanosecond
 * timestamps) and NIC-style checksum completion. Kept separate from src/wire on purpose: the oracle must not
 * depend on the code it checks for the bytes it records.
 */
import { onesComplementSum, foldChecksum, pseudoHeaderSum } from "../../src/wire/checksum";

export interface PcapRecord {
  readonly tsSec: number;
  readonly tsUsec: number;
  readonly data: Uint8Array;
}

/** A pcap file (pcap 2.4, Ethernet, microseconds) holding the given frames. */
export function writePcap(frames: readonly PcapRecord[]): Uint8Array {
  const size = 24 + frames.reduce((n, f) => n + 16 + f.data.length, 0);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 0xa1b2c3d4, true);
  dv.setUint16(4, 2, true);
  dv.setUint16(6, 4, true);
  dv.setUint32(16, 262144, true);
  dv.setUint32(20, 1, true);
  let o = 24;
  for (const f of frames) {
    dv.setUint32(o, f.tsSec, true);
    dv.setUint32(o + 4, f.tsUsec, true);
    dv.setUint32(o + 8, f.data.length, true);
    dv.setUint32(o + 12, f.data.length, true);
    out.set(f.data, o + 16);
    o += 16 + f.data.length;
  }
  return out;
}

/** Reads a classic pcap (either byte order, us or ns resolution); a truncated last record is dropped. */
export function readPcap(bytes: Uint8Array): PcapRecord[] {
  if (bytes.length < 24) return [];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magicLe = dv.getUint32(0, true);
  let le: boolean;
  let nano = false;
  if (magicLe === 0xa1b2c3d4 || magicLe === 0xa1b23c4d) {
    le = true;
    nano = magicLe === 0xa1b23c4d;
  } else {
    const magicBe = dv.getUint32(0, false);
    if (magicBe !== 0xa1b2c3d4 && magicBe !== 0xa1b23c4d) throw new Error("not a classic pcap file");
    le = false;
    nano = magicBe === 0xa1b23c4d;
  }
  const out: PcapRecord[] = [];
  let o = 24;
  while (o + 16 <= bytes.length) {
    const tsSec = dv.getUint32(o, le);
    const frac = dv.getUint32(o + 4, le);
    const incl = dv.getUint32(o + 8, le);
    if (o + 16 + incl > bytes.length) break;
    out.push({
      tsSec,
      tsUsec: nano ? Math.floor(frac / 1000) : frac,
      data: bytes.slice(o + 16, o + 16 + incl),
    });
    o += 16 + incl;
  }
  return out;
}

/**
 * Completes the TCP/UDP checksum of an Ethernet+IPv4 frame that left the kernel with CHECKSUM_PARTIAL (the
 * field holds the folded pseudo-header sum, left for the NIC to finish). veth passes such frames on unfinished;
 * a real NIC would complete them, so the recorder does too. Other frames are returned unchanged.
 */
export function completeChecksum(frame: Uint8Array): { frame: Uint8Array; completed: boolean } {
  if (frame.length < 34 || frame[12] !== 0x08 || frame[13] !== 0x00) return { frame, completed: false };
  const ip = 14;
  const ihl = (frame[ip] & 0x0f) * 4;
  const proto = frame[ip + 9];
  const totalLength = (frame[ip + 2] << 8) | frame[ip + 3];
  const fragmented = ((frame[ip + 6] & 0x3f) << 8) | frame[ip + 7];
  if ((proto !== 6 && proto !== 17) || fragmented !== 0) return { frame, completed: false };
  const l4 = ip + ihl;
  const l4Len = totalLength - ihl;
  if (l4 + l4Len > frame.length) return { frame, completed: false };
  const csumOff = l4 + (proto === 6 ? 16 : 6);
  const carried = (frame[csumOff] << 8) | frame[csumOff + 1];
  const src =
    ((frame[ip + 12] << 24) | (frame[ip + 13] << 16) | (frame[ip + 14] << 8) | frame[ip + 15]) >>> 0;
  const dst =
    ((frame[ip + 16] << 24) | (frame[ip + 17] << 16) | (frame[ip + 18] << 8) | frame[ip + 19]) >>> 0;
  const verify = foldChecksum(onesComplementSum(frame, l4, l4Len, pseudoHeaderSum(src, dst, proto, l4Len)));
  if (verify === 0) return { frame, completed: false };
  // The partial value is ~csum_tcpudp_magic(..., 0) = the folded, uncomplemented pseudo-header sum.
  const partial = ~foldChecksum(pseudoHeaderSum(src, dst, proto, l4Len)) & 0xffff;
  if (carried !== partial) return { frame, completed: false };
  const out = frame.slice();
  out[csumOff] = 0;
  out[csumOff + 1] = 0;
  let sum = foldChecksum(onesComplementSum(out, l4, l4Len, pseudoHeaderSum(src, dst, proto, l4Len)));
  if (sum === 0 && proto === 17) sum = 0xffff;
  out[csumOff] = sum >> 8;
  out[csumOff + 1] = sum & 0xff;
  return { frame: out, completed: true };
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

export function fromHex(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h, "hex"));
}
