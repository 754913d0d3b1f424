// Tests for the dispatch index of ipt_do_table (src/netfilter/ip_tables.ts): indexed and linear traversal must
// agree exactly (verdict, deciding entry, hotdrop, TRACE entries, marks, rewritten packets, counters) on random
// rule sets and packets, including stateful matches before port matches (statistic nth), fragments, unreadable
// transport headers, and a target that rewrites the destination and continues.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseSave } from "../../src/netfilter/parse_save";
import { compileTable, iptDoTable } from "../../src/netfilter/ip_tables";
import type { CompiledTable, DoTableResult, TracePoint } from "../../src/netfilter/ip_tables";
import { Registry } from "../../src/netfilter/registry";
import type { TargetDescriptor } from "../../src/netfilter/registry";
import { defaultRegistry } from "../../src/netfilter/xt/index";
import type { Skb } from "../../src/netfilter/skb";
import { XT_CONTINUE } from "../../src/netfilter/skb";
import type { Packet } from "../../src/wire/packet";
import { formatIpv4, parseIpv4 } from "../../src/wire/addr";

/** Test-only target: rewrites the destination and continues (as no stock filter target does). */
const setDst: TargetDescriptor<{ to: number }> = {
  kind: "target",
  name: "SETDST",
  kernelFile: "(test)",
  userspaceFile: "(test)",
  options: [{ name: "to", nargs: 1 }],
  parse(opts, ctx) {
    const o = opts.find((x) => x.name === "to");
    const a = o ? parseIpv4(o.args[0]) : undefined;
    if (a === undefined) return ctx.fail("SETDST needs --to ADDR");
    return { to: a };
  },
  save(o) {
    return `--to ${formatIpv4(o.to)}`;
  },
  target(o, skb) {
    skb.pkt = { ...skb.pkt, ip: { ...skb.pkt.ip, dst: o.to } };
    return XT_CONTINUE;
  },
};

const registry = new Registry();
for (const d of defaultRegistry.descriptors()) registry.register(d);
registry.register(setDst);

const ADDRS = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "192.0.2.9"];
const CHAINS = ["FORWARD", "C1", "C2", "C3"];

const addr = fc.constantFrom(...ADDRS);
const selector = fc.oneof(
  { weight: 2, arbitrary: fc.constant("") },
  { weight: 6, arbitrary: addr.map((a) => `-d ${a}/32`) },
  { weight: 1, arbitrary: fc.constant("-d 10.0.0.0/24") },
  { weight: 1, arbitrary: addr.map((a) => `! -d ${a}/32`) },
);
const srcSel = fc.oneof(
  { weight: 4, arbitrary: fc.constant("") },
  { weight: 1, arbitrary: addr.map((a) => `-s ${a}/32`) },
);
const proto = fc.constantFrom("", "-p tcp", "-p tcp", "-p tcp", "-p udp", "-p icmp", "! -p tcp");
const port = fc.constantFrom("80", "443", "22");
const portMatch = fc.oneof(
  port.map((p) => `--dport ${p}`),
  port.map((p) => `--dport ${p}`),
  fc.constant("--dport 80:443"),
  port.map((p) => `! --dport ${p}`),
  port.map((p) => `--sport 1000 --dport ${p}`),
  fc.constant(""),
);
const preMatch = fc.constantFrom(
  "",
  "",
  '-m comment --comment "x"',
  "-m mark --mark 0x1",
  "-m statistic --mode nth --every 2 --packet 0",
);
const chainIdx = fc.integer({ min: 1, max: 3 });
const target = fc.oneof(
  fc.constantFrom("-j ACCEPT", "-j DROP", "-j RETURN", "", "-j MARK --set-xmark 0x1/0xffffffff"),
  addr.map((a) => `-j SETDST --to ${a}`),
  chainIdx.map((c) => `-j C${c}`),
  chainIdx.map((c) => `-g C${c}`),
);

interface RuleSpec {
  readonly dst: string;
  readonly src: string;
  readonly proto: string;
  readonly pre: string;
  readonly port: string;
  readonly post: string;
  readonly target: string;
}

const rule = fc.record({
  dst: selector,
  src: srcSel,
  proto,
  pre: preMatch,
  port: portMatch,
  post: preMatch,
  target,
});

/** One rule line; jumps only go to higher chains (no loops), port matches only under -p tcp/udp. */
function ruleLine(chain: number, r: RuleSpec): string {
  const parts = [`-A ${CHAINS[chain]}`, r.dst, r.src, r.proto, r.pre];
  const p = r.proto === "-p tcp" ? "tcp" : r.proto === "-p udp" ? "udp" : undefined;
  if (p && r.port) parts.push(`-m ${p} ${r.port}`);
  parts.push(r.post);
  const jump = /^-[jg] C(\d)$/.exec(r.target);
  if (!jump || Number(jump[1]) > chain) parts.push(r.target);
  return parts.filter(Boolean).join(" ");
}

const ruleset = fc
  .tuple(
    fc.array(rule, { minLength: 0, maxLength: 30 }),
    fc.array(rule, { maxLength: 12 }),
    fc.array(rule, { maxLength: 12 }),
    fc.array(rule, { maxLength: 12 }),
    fc.constantFrom("ACCEPT", "DROP"),
  )
  .map(([f, c1, c2, c3, policy]) => {
    const lines = ["*filter", ":INPUT ACCEPT [0:0]", `:FORWARD ${policy} [0:0]`, ":OUTPUT ACCEPT [0:0]"];
    lines.push(":C1 - [0:0]", ":C2 - [0:0]", ":C3 - [0:0]");
    [f, c1, c2, c3].forEach((rules, c) => rules.forEach((r) => lines.push(ruleLine(c, r))));
    lines.push("COMMIT", "");
    return lines.join("\n");
  });

const packet = fc
  .record({
    dst: addr,
    kind: fc.constantFrom("tcp", "tcp", "udp", "icmp", "tcp-unreadable"),
    sport: fc.constantFrom(1000, 2000),
    dport: fc.constantFrom(80, 443, 22, 8080),
    frag: fc.constantFrom(0, 0, 0, 0, 1, 5),
  })
  .map(({ dst, kind, sport, dport, frag }): Packet => {
    const protocol = kind === "udp" ? 17 : kind === "icmp" ? 1 : 6;
    const l4: Packet["l4"] =
      kind === "tcp"
        ? {
            kind: "tcp",
            srcPort: sport,
            dstPort: dport,
            seq: 1,
            ack: 0,
            dataOffset: 20,
            reserved: 0,
            flags: 0x02,
            window: 512,
            checksum: 0,
            urgentPointer: 0,
            options: [],
          }
        : kind === "udp"
          ? { kind: "udp", srcPort: sport, dstPort: dport, length: 8, checksum: 0 }
          : kind === "icmp"
            ? { kind: "icmp", type: 8, code: 0, checksum: 0, restOfHeader: 0 }
            : { kind: "other" };
    return {
      ip: {
        ihl: 20,
        tos: 0,
        totalLength: 60,
        id: 1,
        rf: false,
        df: false,
        mf: frag !== 0,
        fragOffset: frag,
        ttl: 64,
        protocol,
        checksum: 0,
        src: parseIpv4("10.0.0.2")!,
        dst: parseIpv4(dst)!,
        options: new Uint8Array(0),
      },
      l4,
      payloadLength: 20,
      tsSec: 0,
      tsNsec: 0,
      ipChecksum: "unknown",
      l4Checksum: "unknown",
    };
  });

interface Outcome {
  readonly result: DoTableResult;
  readonly traces: string[];
  readonly mark: number;
  readonly dst: string;
}

function runAll(table: CompiledTable, packets: readonly Packet[]): Outcome[] {
  const ruleState = new Map<object, unknown>();
  return packets.map((pkt) => {
    const skb: Skb = {
      pkt,
      mark: 0,
      nfTrace: true,
      untracked: false,
      priority: 0,
      inIface: "eth0",
      outIface: "eth1",
      local: false,
      pktType: "host",
    };
    const traces: string[] = [];
    const result = iptDoTable(table, "FORWARD", skb, {
      now: 0,
      effects: { emitLocal: () => {}, log: () => {} },
      host: undefined,
      ruleState,
      trace: (p: TracePoint) => traces.push(`${p.chain}:${p.comment}:${p.num}`),
    });
    return { result, traces, mark: skb.mark, dst: formatIpv4(skb.pkt.ip.dst) };
  });
}

function counters(table: CompiledTable): string[] {
  const out: string[] = [];
  for (const c of table.chains.values()) {
    c.rules.forEach((r, i) => out.push(`${c.name}#${i + 1} ${r.packets}/${r.bytes}`));
    out.push(`${c.name} tail ${c.tail.packets}`);
  }
  return out;
}

function compileBoth(text: string) {
  const { ruleset: rs, errors } = parseSave(text, { file: "t.v4", registry });
  expect(errors, text).toEqual([]);
  const t = rs.tables.get("filter")!;
  const indexed = compileTable(t, registry, { index: true, indexMinRules: 1 }).table;
  const linear = compileTable(t, registry, { index: false }).table;
  return { indexed, linear };
}

describe("ipt_do_table dispatch index", () => {
  it("agrees with the linear walk on random rule sets and packets (property)", () => {
    let indexedChains = 0;
    fc.assert(
      fc.property(ruleset, fc.array(packet, { minLength: 1, maxLength: 25 }), (text, packets) => {
        const { indexed, linear } = compileBoth(text);
        for (const c of indexed.chains.values()) if (c.index) indexedChains++;
        const got = runAll(indexed, packets);
        const want = runAll(linear, packets);
        expect(got, `rules:\n${text}`).toEqual(want);
        expect(counters(indexed)).toEqual(counters(linear));
      }),
      { numRuns: 400, seed: 4242 },
    );
    // The property is not vacuous: most generated chains had an index.
    expect(indexedChains, `got ${indexedChains} indexed chains, want > 400`).toBeGreaterThan(400);
  });

  it("indexes a kube-proxy KUBE-SERVICES chain and finds the service rule among 2000", () => {
    const lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"];
    lines.push(":POSTROUTING ACCEPT [0:0]", ":KUBE-SERVICES - [0:0]", ":KUBE-NODEPORTS - [0:0]");
    for (let s = 0; s < 2000; s++)
      lines.push(
        `-A KUBE-SERVICES -d 172.30.${s >> 8}.${s & 255}/32 -p tcp -m comment --comment "svc${s}" -m tcp --dport 80 -j ACCEPT`,
      );
    lines.push("-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS");
    lines.push("-A PREROUTING -j KUBE-SERVICES", "COMMIT", "");
    const { ruleset: rs, errors } = parseSave(lines.join("\n"), { file: "k.v4" });
    expect(errors).toEqual([]);
    const t = compileTable(rs.tables.get("nat")!, defaultRegistry).table;
    const chain = t.chains.get("KUBE-SERVICES")!;
    expect(chain.index?.indexed, "indexed rules").toBe(2000);
    expect(Array.from(chain.index!.others), "unindexed positions").toEqual([2000]);
    // Small chains keep the linear walk (default threshold).
    expect(t.chains.get("PREROUTING")!.index).toBeUndefined();
  });

  it("keeps a port-keyed rule for fragments and unreadable headers (tcp match hotdrop)", () => {
    const text =
      "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" +
      "-A FORWARD -d 10.0.0.1/32 -p tcp -m tcp --dport 443 -j ACCEPT\nCOMMIT\n";
    const { indexed, linear } = compileBoth(text);
    const base = fc.sample(packet, { numRuns: 1, seed: 1 })[0];
    const frag1: Packet = {
      ...base,
      ip: { ...base.ip, protocol: 6, fragOffset: 1, dst: parseIpv4("10.0.0.1")! },
      l4: { kind: "other" },
    };
    const got = runAll(indexed, [frag1])[0];
    expect(got.result).toEqual(runAll(linear, [frag1])[0].result);
    expect(got.result.hotdrop, "fragment offset 1 hotdrops in tcp_mt").toBe(true);
  });
});
