import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeIpv4, isDecodeFailure } from "../../src/wire/ipv4";
import type { LinkHeader, Packet } from "../../src/wire/packet";
import { bytesToMac, formatIpv4 } from "../../src/wire/addr";
import {
  NF_LOG_IPOPT,
  NF_LOG_MACDECODE,
  NF_LOG_TCPOPT,
  NF_LOG_TCPSEQ,
  NF_LOG_UID,
  nfLogPacket,
  nfLogTrace,
} from "../../src/trace/nf_log";
import type { TraceComment } from "../../src/netfilter/ip_tables";

const REC_DIR = join(__dirname, "../oracle/recordings");

interface Recording {
  scenario: string;
  packets: {
    index: number;
    input: { iface: string; hex: string };
    trace: string[];
    egress: { iface: string; hex: string }[];
  }[];
}

function fromHex(h: string): Uint8Array {
  const b = new Uint8Array(h.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return b;
}

/** Ethernet frame -> Packet with its link header. */
function decodeFrame(hex: string, iface: string): Packet {
  const b = fromHex(hex);
  const link: LinkHeader = {
    dst: bytesToMac(b, 0),
    src: bytesToMac(b, 6),
    ethertype: (b[12] << 8) | b[13],
    vlans: [],
  };
  const p = decodeIpv4(b, 14, b.length - 14, { tsSec: 0, tsNsec: 0, iface, link });
  if (isDecodeFailure(p)) throw new Error(`${hex}: ${p.failure}`);
  return p;
}

const TRACE_RE = /^TRACE: ([a-z]+):([A-Za-z0-9_-]+):(rule|return|policy):(\d+) IN=(\S*) OUT=(\S*) /;

function addrs(line: string): [string, string] {
  const m = / SRC=(\S+) DST=(\S+) /.exec(line);
  if (!m) throw new Error(`no SRC/DST in ${line}`);
  return [m[1], m[2]];
}

describe("TRACE lines of the 6.18.44 recordings", () => {
  // Scenarios whose rules rewrite headers between hooks (TTL, DSCP, TCPMSS) cannot be rebuilt from the input
  // and egress packets alone; the engine comparison (test/oracle/compare.test.ts) checks those lines.
  const mangles = (f: string) =>
    /-j (TTL|DSCP|TCPMSS)\b/.test(
      readFileSync(join(REC_DIR, "../scenarios", f.replace(/\.json$/, ""), "rules.v4"), "utf8"),
    );
  const files = readdirSync(REC_DIR).filter((f) => f.endsWith(".json") && !mangles(f));
  let total = 0;
  let checked = 0;
  const failures: string[] = [];

  for (const f of files) {
    const rec = JSON.parse(readFileSync(join(REC_DIR, f), "utf8")) as Recording;
    for (const p of rec.packets) {
      const input = decodeFrame(p.input.hex, p.input.iface);
      const egress = p.egress.map((e) => ({ iface: e.iface, pkt: decodeFrame(e.hex, e.iface) }));
      for (const line of p.trace) {
        total++;
        const m = TRACE_RE.exec(line);
        if (!m) {
          failures.push(`${f}#${p.index}: unparsable ${line}`);
          continue;
        }
        const [, table, chain, comment, num, inIf, outIf] = m;
        const [src, dst] = addrs(line);
        // Candidate packets by hook: what the packet looked like there. Only SRC/DST pick the candidate;
        // every other field is under test.
        const candidates: Packet[] = [];
        if (inIf === "") {
          for (const e of egress) if (e.iface === outIf) candidates.push(e.pkt);
        } else if (outIf === "") {
          candidates.push(input);
        } else {
          candidates.push({ ...input, ip: { ...input.ip, ttl: input.ip.ttl - 1 } });
          for (const e of egress) if (e.iface === outIf) candidates.push(e.pkt);
        }
        // Mangling targets (TTL, DSCP, TCPMSS) change the packet between hooks: the line must equal the one
        // formatted from one of the real packets at that point (the input, or what left on that interface).
        const fitting = candidates.filter(
          (c) => formatIpv4(c.ip.src) === src && formatIpv4(c.ip.dst) === dst,
        );
        if (fitting.length === 0) continue; // locally generated packet that never left (not captured)
        checked++;
        // skb->mark is datapath state (MARK/CONNMARK rules set it), not a packet field: take it from the line;
        // its formatting (`MARK=0x5` last, omitted when 0) is still under test.
        const markText = / MARK=0x([0-9a-f]+) ?$/.exec(line)?.[1];
        // Likewise the owner of skb->sk (a socket TPROXY assigned, oracle 67/68): datapath state; its
        // formatting (`UID=0 GID=0` before MARK) is under test.
        const owner = / UID=(\d+) GID=(\d+) /.exec(line);
        const lines = fitting.map((pkt) =>
          nfLogTrace(table, chain, comment as TraceComment, Number(num), {
            pkt,
            mark: markText ? parseInt(markText, 16) : 0,
            inIface: inIf || undefined,
            outIface: outIf || undefined,
            link: inIf ? input.link : undefined,
            ...(owner ? { owner: { uid: Number(owner[1]), gid: Number(owner[2]) } } : {}),
          }),
        );
        const got = lines.find((l) => l === line) ?? lines[0];
        if (got !== line) failures.push(`${f}#${p.index}:\n  got  ${got}\n  want ${line}`);
      }
    }
  }

  it("reproduces every recorded line it can rebuild the packet for, byte for byte", () => {
    expect(failures.slice(0, 5).join("\n")).toBe("");
    expect(failures.length).toBe(0);
  });

  it("rebuilds the packet for nearly all recorded lines", () => {
    // got checked/total; want almost all (lines of never-captured local packets are skipped)
    expect(total).toBeGreaterThan(1000);
    expect(checked / total).toBeGreaterThan(0.95);
  });
});

function tcpPacket(over: Partial<Packet["ip"]> = {}): Packet {
  const b = fromHex(
    "4500002c03e940003f063991cb007101c00002509c400050000003e8000000006002faf0fe6a0000020405b4",
  );
  const p = decodeIpv4(b, 0, b.length, { tsSec: 0, tsNsec: 0 });
  if (isDecodeFailure(p)) throw new Error(p.failure);
  return { ...p, ip: { ...p.ip, ...over } };
}

describe("LOG target flags", () => {
  const pkt = tcpPacket();
  it("leaves out SEQ/ACK and OPT without --log-tcp-sequence/--log-tcp-options", () => {
    const got = nfLogPacket("fw: ", { pkt, mark: 0, outIface: "eth1" }, { level: 4, logflags: 0 });
    expect(got).toBe(
      "fw: IN= OUT=eth1 SRC=203.0.113.1 DST=192.0.2.80 LEN=44 TOS=0x00 PREC=0x00 TTL=63 ID=1001 DF PROTO=TCP SPT=40000 DPT=80 WINDOW=64240 RES=0x00 SYN URGP=0 ",
    );
  });
  it("prints SEQ/ACK, OPT, UID/GID and MARK when asked, MARK last", () => {
    const got = nfLogPacket(
      "",
      { pkt, mark: 0x2a, outIface: "eth1", owner: { uid: 1000, gid: 100 } },
      { level: 4, logflags: NF_LOG_TCPSEQ | NF_LOG_TCPOPT | NF_LOG_UID },
    );
    expect(got).toBe(
      "IN= OUT=eth1 SRC=203.0.113.1 DST=192.0.2.80 LEN=44 TOS=0x00 PREC=0x00 TTL=63 ID=1001 DF PROTO=TCP SPT=40000 DPT=80 SEQ=1000 ACK=0 WINDOW=64240 RES=0x00 SYN URGP=0 OPT (020405B4) UID=1000 GID=100 MARK=0x2a ",
    );
  });
  it("decodes the MAC header with --log-macdecode and prints IP options with --log-ip-options", () => {
    const withOpt = tcpPacket({ options: Uint8Array.from([1, 1, 1, 0]), ihl: 24 });
    const got = nfLogPacket(
      "",
      {
        pkt: withOpt,
        mark: 0,
        inIface: "eth0",
        link: { dst: "02:00:00:00:00:01", src: "02:00:00:00:00:02", ethertype: 0x0800, vlans: [] },
      },
      { level: 4, logflags: NF_LOG_MACDECODE | NF_LOG_IPOPT },
    );
    expect(got).toContain("IN=eth0 OUT= MACSRC=02:00:00:00:00:02 MACDST=02:00:00:00:00:01 MACPROTO=0800 ");
    expect(got).toContain("ID=1001 DF OPT (01010100) PROTO=TCP");
  });
  it("prints an empty MAC= for an input device without a link header", () => {
    const got = nfLogPacket("", { pkt, mark: 0, inIface: "tun0" }, { level: 4, logflags: 0 });
    expect(got.startsWith("IN=tun0 OUT= MAC= SRC=")).toBe(true);
  });
  it("prints only PROTO=TCP and FRAG: for a non-first fragment", () => {
    const frag: Packet = { ...pkt, ip: { ...pkt.ip, fragOffset: 3, df: false }, l4: { kind: "other" } };
    const got = nfLogPacket("", { pkt: { ...frag, payloadLength: 24 }, mark: 0 }, { level: 4, logflags: 0 });
    expect(got).toBe(
      "IN= OUT= SRC=203.0.113.1 DST=192.0.2.80 LEN=44 TOS=0x00 PREC=0x00 TTL=63 ID=1001 FRAG:3 PROTO=TCP ",
    );
  });
});
