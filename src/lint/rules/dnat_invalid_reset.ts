/**
 * dnat-invalid-reset: DNAT'd services with no INVALID drop on the forwarding path (kubernetes#74839).
 *
 * Kernel behaviour (Linux 6.18): a reply segment of a DNAT'd connection that `tcp_in_window`
 * (net/netfilter/nf_conntrack_proto_tcp.c) finds out of window — e.g. after heavy loss — is INVALID: no
 * conntrack is attached, so `nf_nat_inet_fn` (net/netfilter/nf_nat_core.c) does not apply the connection's
 * reverse mapping and the segment is forwarded with the backend's own address as source. The client has no
 * socket for that address and answers with a RST, which the backend then takes for its own connection
 * ("connection reset by peer").
 *
 * Static part: a nat rule with target DNAT reachable from PREROUTING (or OUTPUT) and no ctstate INVALID drop in
 * mangle/filter FORWARD. Dynamic part (with a host): a client SYN to the service, the backend's SYN-ACK, the
 * client's ACK, then a backend segment far beyond the window. Left out: DNAT to a local address (INPUT path).
 */
import type { Finding, LintContext, LintRule } from "../types";
import { ruleLocation } from "../types";
import type { Located } from "../analysis";
import {
  dportRange,
  effectiveSelectors,
  findInvalidDrop,
  invalidDropAdvice,
  jumpPath,
  targetRules,
} from "../analysis";
import { ctReasonText, ifaceTowards, insidePrefix, outsideAddress, tcpLine } from "../demo";
import { Fib } from "../../host/route";
import type { Host } from "../../host/types";
import type { Table } from "../../netfilter/ruleset";
import type { PacketReport } from "../../trace/events";
import type { NatRange } from "../../netfilter/xt/xt_nat";
import { formatIpv4 } from "../../wire/addr";
import { formatFate, formatSummary } from "../../trace/summary";

export const dnatInvalidReset: LintRule = {
  id: "dnat-invalid-reset",
  severity: "warning",
  description:
    "DNAT without a ctstate INVALID drop in FORWARD: out-of-window replies leave un-DNATed and the client resets",
  check(ctx: LintContext): Finding[] {
    const rules = [
      ...targetRules(ctx.ruleset, "nat", ["DNAT"], "PREROUTING"),
      ...targetRules(ctx.ruleset, "nat", ["DNAT"], "OUTPUT").filter(
        (l) => !l.chain.hooks.includes("PREROUTING"),
      ),
    ];
    if (rules.length === 0) return [];
    const search = findInvalidDrop(ctx.ruleset, ["PREROUTING", "FORWARD"]);
    if (search.drop && search.bypass.length === 0) return [];
    const advice = invalidDropAdvice(search);
    const out: Finding[] = [];
    for (const { table, chain, rule } of rules) {
      const range = rule.target?.kind === "extension" ? (rule.target.options as NatRange) : undefined;
      const fib = ctx.host ? new Fib(ctx.host) : undefined;
      if (fib && range?.addrs && fib.isLocalAddress(range.addrs.min)) continue;
      const f: Finding = {
        id: dnatInvalidReset.id,
        severity: dnatInvalidReset.severity,
        ...ruleLocation(table, chain, rule),
        message: `DNAT, but ${advice.problem}`,
        explanation:
          "A backend's reply that conntrack marks INVALID (out of window, e.g. after a burst of loss) carries no " +
          "conntrack, so NAT does not reverse the DNAT: it reaches the client with the backend's address as " +
          'source, the client answers with a RST and the backend\'s connection dies ("connection reset by peer").',
        fix: advice.fix,
      };
      if (ctx.host && range?.addrs && (rule.proto?.proto ?? 6) === 6) {
        const natTable = ctx.ruleset.tables.get("nat");
        const plan = natTable ? dnatDemo(ctx.host, natTable, { table, chain, rule }, range) : undefined;
        if (plan) f.plan = plan;
      }
      out.push(f);
    }
    return out;
  },
};

function dnatDemo(host: Host, nat: Table, located: Located, range: NatRange): Finding["plan"] {
  const fib = new Fib(host);
  if (!located.chain.hooks.includes("PREROUTING")) return undefined;
  const path = jumpPath(nat, "PREROUTING", located.chain);
  if (!path) return undefined;
  const rule = effectiveSelectors(path, located.rule);
  const sport = dportRange(rule)?.[0] ?? 80;
  const backendGuess = range.addrs!.min;
  const backendIface = ifaceTowards(fib, backendGuess);
  if (!backendIface) return undefined;
  const inRule =
    rule.inIface && !rule.inIface.invert && !rule.inIface.name.endsWith("+") ? rule.inIface.name : undefined;
  // The client: routed out of the rule's -i, or out of any interface other than the backend's.
  let client: number | undefined;
  const src = rule.src && !rule.src.invert && rule.src.mask !== 0 ? rule.src : undefined;
  if (src) client = insidePrefix(fib, src.addr, src.mask, 7);
  else {
    const ifaces = inRule
      ? [inRule]
      : fib
          .interfaces()
          .map((i) => i.name)
          .filter((n) => n !== "lo" && n !== backendIface);
    for (const i of ifaces) {
      const a = outsideAddress(fib, { ...rule, dst: undefined }, i, backendGuess);
      if (a !== undefined) {
        client = a;
        break;
      }
    }
  }
  if (client === undefined) return undefined;
  const clientIface = inRule ?? ifaceTowards(fib, client);
  if (!clientIface || clientIface === backendIface) return undefined;
  // The service address: the rule's -d, else the host's address on the client side.
  const d = rule.dst && !rule.dst.invert && rule.dst.mask === 0xffffffff ? rule.dst.addr : undefined;
  const service = d ?? fib.interface(clientIface)?.addresses[0]?.addr;
  if (service === undefined) return undefined;
  const cport = 40000;
  /** Where the SYN went after NAT: the backend and the source it saw (masqueraded or not). */
  const seen = (reports: readonly PacketReport[]) => {
    const e = reports[0]?.egress.find((x) => x.packetId === 0)?.packet;
    if (!e || e.l4.kind !== "tcp") return undefined;
    return { backend: e.ip.dst, bport: e.l4.dstPort, peer: e.ip.src, pport: e.l4.srcPort };
  };
  return {
    next(reports) {
      if (reports.length === 0)
        return tcpLine(clientIface, client, cport, service, sport, "S", "seq 1000, win 64240, length 0");
      const s = seen(reports);
      if (!s) return undefined;
      const bIface = ifaceTowards(fib, s.backend) ?? backendIface;
      switch (reports.length) {
        case 1:
          return tcpLine(
            bIface,
            s.backend,
            s.bport,
            s.peer,
            s.pport,
            "S.",
            "seq 5000, ack 1001, win 64240, length 0",
          );
        case 2:
          return tcpLine(
            clientIface,
            client,
            cport,
            service,
            sport,
            ".",
            "seq 1001, ack 5001, win 64240, length 0",
          );
        case 3:
          return tcpLine(
            bIface,
            s.backend,
            s.bport,
            s.peer,
            s.pport,
            "P.",
            "seq 10005001:10005101, ack 1001, win 64240, length 100",
          );
        default:
          return undefined;
      }
    },
    sysctl: { "net.ipv4.ip_forward": 1 },
    judge(reports) {
      const s = seen(reports);
      const r = reports[3];
      const j = r?.packets[0];
      if (!s || !j)
        return {
          confirmed: false,
          outcome: reports[0]
            ? `the SYN to ${formatIpv4(service)}:${sport} was not DNATed out: ${formatSummary(reports[0].packets[0])}`
            : "no report",
        };
      const left = r.egress.find((e) => e.packetId === 0);
      const why = `the backend's out-of-window segment is INVALID (${ctReasonText(j.ct)}) and is not un-DNATed`;
      if (j.ct?.state === "INVALID" && left && left.packet.ip.src === s.backend)
        return {
          confirmed: true,
          outcome: `${why}: it left on ${left.iface} to ${formatIpv4(left.packet.ip.dst)} with source ${formatIpv4(s.backend)}:${s.bport} instead of ${formatIpv4(service)}:${sport}; the client has no connection with that address and answers with a RST`,
        };
      if (j.ct?.state === "INVALID" && j.fate?.kind === "delivered") {
        const rst = r.packets.find(
          (p) => p.id > 0 && p.input.l4.kind === "tcp" && (p.input.l4.flags & 0x04) !== 0,
        );
        return {
          confirmed: true,
          outcome: `${why}: addressed to the masquerading node itself, it was delivered to the node's stack${rst ? ", which answered the backend with a RST" : ""}`,
        };
      }
      return { confirmed: false, outcome: `the segment did not leak: ${formatFate(j.fate)}` };
    },
  };
}
