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
import { encodeEthernet, encodeIpv4 } from "./ipv4";
import { LINKTYPE_ETHERNET, LINKTYPE_RAW } from "./pcap";
import { BT_EPB, BT_IDB, BT_SHB, BYTE_ORDER_MAGIC } from "./pcapng";

export interface PcapngWriterOptions {
  /** shb_userappl text; default "ctsim". */
  readonly userAppl?: string;
  /** Link type of every interface; default: Ethernet if the first packet has a link header, else raw. */
  readonly linkType?: "ethernet" | "raw";
}

const ZERO_MAC = "00:00:00:00:00:00";

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
  private readonly interfaces = new Map<string, number>();

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
   * link type) is new, then its EPB.
   */
  write(p: Packet): Uint8Array {
    const parts: Uint8Array[] = [];
    if (!this.started) {
      parts.push(this.shb());
      this.started = true;
    }
    const link = p.link;
    this.linkType ??= this.opts.linkType ?? (link ? "ethernet" : "raw");
    const linktype = this.linkType === "ethernet" ? LINKTYPE_ETHERNET : LINKTYPE_RAW;
    const key = `${p.iface ?? ""}\u0000${p.iface === undefined ? "-" : "+"}`;
    let ifid = this.interfaces.get(key);
    if (ifid === undefined) {
      ifid = this.interfaces.size;
      this.interfaces.set(key, ifid);
      parts.push(this.idb(linktype, p.iface));
    }
    const data =
      linktype === LINKTYPE_RAW
        ? encodeIpv4(p)
        : link
          ? encodeEthernet(p, {
              src: link.src,
              dst: link.dst,
              vlans: link.vlans,
              outerTpid: link.vlans.length > 0 ? link.ethertype : undefined,
            })
          : encodeEthernet(p, { src: ZERO_MAC, dst: ZERO_MAC });
    const body = new Uint8Array(20 + data.length);
    const dv = new DataView(body.buffer);
    const ts = BigInt(p.tsSec) * 1_000_000_000n + BigInt(p.tsNsec);
    dv.setUint32(0, ifid, true);
    dv.setUint32(4, Number(ts >> 32n), true);
    dv.setUint32(8, Number(ts & 0xffffffffn), true);
    dv.setUint32(12, data.length, true);
    dv.setUint32(16, data.length, true);
    body.set(data, 20);
    const options: [number, Uint8Array][] = [];
    if (p.direction !== undefined) {
      const flags = new Uint8Array(4);
      new DataView(flags.buffer).setUint32(0, p.direction === "In" ? 1 : 2, true);
      options.push([2, flags]);
    }
    parts.push(block(BT_EPB, body, options));
    return parts.length === 1 ? parts[0] : concat(parts);
  }

  /** Bytes to append at the end: the SHB alone when no packet was written (a valid empty capture). */
  finish(): Uint8Array {
    if (this.started) return new Uint8Array(0);
    this.started = true;
    return this.shb();
  }
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
