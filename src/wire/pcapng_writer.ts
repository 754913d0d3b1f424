/**
 * pcapng writer: Packet values -> pcapng bytes, returned as chunks (no I/O).
 *
 * Format: draft-ietf-opsawg-pcapng. Output is little-endian, one section: a Section Header Block (shb_userappl
 * "ctsim", section length -1), then one Interface Description Block per interface name, the first
 * time a packet names it, with `if_name` (option 2) and `if_tsresol` = 9 (nanoseconds, option 9), then one
 * Enhanced Packet Block per packet with `epb_flags` (option 2) carrying the direction when known.
 *
 * Link type choice: one link type per file, because libpcap before 1.11 (tcpdump 4.99) refuses pcapng files
 * whose interfaces differ in link type. With `linkType: "ethernet"` every packet is framed as Ethernet with its
 * own MACs and VLAN tags, and a packet without a `link` header gets all-zero MACs (as Linux's loopback device
 * has). With `linkType: "raw"` (LINKTYPE_RAW, 101) MAC addresses are dropped. By default the first packet
 * decides: Ethernet when it has a link header, raw otherwise. Datagrams are produced by `encodeIpv4`, so the IP
 * header and TCP/UDP/ICMP checksums are always correct, even after NAT rewrote addresses or ports.
 *
 * Left out on purpose: several sections, Interface Statistics and Name Resolution blocks, comments, snaplen
 * truncation (snaplen is written as 0, "no limit").
 */
import type { Packet } from "./packet";
import type { EthernetOptions } from "./ipv4";
import { ethernetHeaderLength, ipv4EncodedLength, writeEthernet, writeIpv4 } from "./ipv4";
import { LINKTYPE_ETHERNET, LINKTYPE_RAW } from "./pcap";
import { BT_EPB, BT_IDB, BT_SHB, BYTE_ORDER_MAGIC } from "./pcapng";

export interface PcapngWriterOptions {
  /** shb_userappl text; default "ctsim". */
  readonly userAppl?: string;
  /** Link type of every interface; default: Ethernet if the first packet has a link header, else raw. */
  readonly linkType?: "ethernet" | "raw";
}

const ZERO_MAC = "00:00:00:00:00:00";
const NO_LINK: EthernetOptions = { src: ZERO_MAC, dst: ZERO_MAC };

const utf8 = new TextEncoder();

function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** Builds one block: type, length, body, options (code, value) with end-of-options, trailing length. */
function block(
  type: number,
  body: Uint8Array,
  options: readonly (readonly [number, Uint8Array])[],
): Uint8Array {
  let optLen = 0;
  for (const [, v] of options) optLen += 4 + pad4(v.length);
  if (options.length > 0) optLen += 4;
  const len = 8 + pad4(body.length) + optLen + 4;
  const b = new Uint8Array(len);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, type, true);
  dv.setUint32(4, len, true);
  b.set(body, 8);
  let o = 8 + pad4(body.length);
  for (const [code, v] of options) {
    dv.setUint16(o, code, true);
    dv.setUint16(o + 2, v.length, true);
    b.set(v, o + 4);
    o += 4 + pad4(v.length);
  }
  if (options.length > 0) o += 4; // opt_endofopt: code 0, length 0
  dv.setUint32(o, len, true);
  return b;
}

export class PcapngWriter {
  private readonly opts: PcapngWriterOptions;
  private started = false;
  private linkType: "ethernet" | "raw" | undefined;
  /** Interface ids by name, and of packets without one, in the order they were first written. */
  private readonly named = new Map<string, number>();
  private unnamed: number | undefined;
  private interfaceCount = 0;

  constructor(opts: PcapngWriterOptions = {}) {
    this.opts = opts;
  }

  /** The Section Header Block. */
  private shb(): Uint8Array {
    const body = new Uint8Array(16);
    const dv = new DataView(body.buffer);
    dv.setUint32(0, BYTE_ORDER_MAGIC, true);
    dv.setUint16(4, 1, true); // major
    dv.setUint16(6, 0, true); // minor
    dv.setInt32(8, -1, true); // section length: unknown
    dv.setInt32(12, -1, true);
    return block(BT_SHB, body, [[4, utf8.encode(this.opts.userAppl ?? "ctsim")]]);
  }

  private idb(linktype: number, name: string | undefined): Uint8Array {
    const body = new Uint8Array(8);
    const dv = new DataView(body.buffer);
    dv.setUint16(0, linktype, true);
    dv.setUint32(4, 0, true); // snaplen: no limit
    const options: [number, Uint8Array][] = [];
    if (name !== undefined) options.push([2, utf8.encode(name)]);
    options.push([9, Uint8Array.of(9)]);
    return block(BT_IDB, body, options);
  }

  /**
   * Bytes to append for one packet: the SHB before the first packet, an IDB when the packet's interface (or
   * link type) is new, then its EPB. The EPB is built in one array, the frame written in place.
   */
  write(p: Packet): Uint8Array {
    const head: Uint8Array[] = [];
    if (!this.started) {
      head.push(this.shb());
      this.started = true;
    }
    const link = p.link;
    this.linkType ??= this.opts.linkType ?? (link ? "ethernet" : "raw");
    const linktype = this.linkType === "ethernet" ? LINKTYPE_ETHERNET : LINKTYPE_RAW;
    let ifid = p.iface === undefined ? this.unnamed : this.named.get(p.iface);
    if (ifid === undefined) {
      ifid = this.interfaceCount++;
      if (p.iface === undefined) this.unnamed = ifid;
      else this.named.set(p.iface, ifid);
      head.push(this.idb(linktype, p.iface));
    }
    const eth: EthernetOptions | undefined =
      linktype === LINKTYPE_RAW
        ? undefined
        : link
          ? {
              src: link.src,
              dst: link.dst,
              vlans: link.vlans,
              outerTpid: link.vlans.length > 0 ? link.ethertype : undefined,
            }
          : NO_LINK;
    const ipLen = ipv4EncodedLength(p);
    const dataLen = eth ? ethernetHeaderLength(eth) + ipLen : ipLen;
    // epb_flags (option header and value) and opt_endofopt when the direction is known.
    const optLen = p.direction !== undefined ? 12 : 0;
    const len = 28 + pad4(dataLen) + optLen + 4;
    const b = new Uint8Array(len);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, BT_EPB, true);
    dv.setUint32(4, len, true);
    dv.setUint32(8, ifid, true);
    timestampWords(p.tsSec, p.tsNsec, dv, 12);
    dv.setUint32(20, dataLen, true);
    dv.setUint32(24, dataLen, true);
    if (eth) writeEthernet(b, 28, p, eth, ipLen);
    else writeIpv4(b, 28, p, ipLen);
    let o = 28 + pad4(dataLen);
    if (p.direction !== undefined) {
      dv.setUint16(o, 2, true); // epb_flags
      dv.setUint16(o + 2, 4, true);
      dv.setUint32(o + 4, p.direction === "In" ? 1 : 2, true);
      o += 12; // the option, then opt_endofopt (code 0, length 0)
    }
    dv.setUint32(o, len, true);
    if (head.length === 0) return b;
    head.push(b);
    return concat(head);
  }

  /** Bytes to append at the end: the SHB alone when no packet was written (a valid empty capture). */
  finish(): Uint8Array {
    if (this.started) return new Uint8Array(0);
    this.started = true;
    return this.shb();
  }
}

/**
 * The 64-bit nanosecond timestamp tsSec * 10^9 + tsNsec as two little-endian u32 words (high first) at `o`.
 * For seconds below 2^32 the product is split into 16-bit parts, every step exact in a double; otherwise, or for
 * values that are not whole, BigInt does it (and refuses what it cannot convert, as before).
 */
export function timestampWords(tsSec: number, tsNsec: number, dv: DataView, o: number): void {
  if (
    Number.isInteger(tsSec) &&
    tsSec >= 0 &&
    tsSec < 0x100000000 &&
    Number.isInteger(tsNsec) &&
    tsNsec >= 0 &&
    tsNsec < 1_000_000_000
  ) {
    const aHi = Math.floor(tsSec / 65536);
    const x = (tsSec - aHi * 65536) * 1_000_000_000 + tsNsec; // < 2^47
    const y = aHi * 1_000_000_000; // < 2^46; the value is y * 2^16 + x
    const yHi = Math.floor(y / 65536);
    const z = (y - yHi * 65536) * 65536 + x; // < 2^48; the value is yHi * 2^32 + z
    const carry = Math.floor(z / 0x100000000);
    dv.setUint32(o, yHi + carry, true);
    dv.setUint32(o + 4, z - carry * 0x100000000, true);
    return;
  }
  const ts = BigInt(tsSec) * 1_000_000_000n + BigInt(tsNsec);
  dv.setUint32(o, Number(ts >> 32n), true);
  dv.setUint32(o + 4, Number(ts & 0xffffffffn), true);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Writes a whole packet list into one pcapng byte array. */
export function writePcapng(packets: Iterable<Packet>, opts: PcapngWriterOptions = {}): Uint8Array {
  const w = new PcapngWriter(opts);
  const parts: Uint8Array[] = [];
  for (const p of packets) parts.push(w.write(p));
  parts.push(w.finish());
  return concat(parts);
}
