/**
 * snat-invalid-leak: SNAT/MASQUERADE with no INVALID drop on the forwarding path.
 *
 * Kernel behaviour (Linux 6.18): a packet conntrack marks INVALID has no conntrack attached
 * (net/netfilter/nf_conntrack_core.c `nf_conntrack_in` returns with skb->_nfct unset, e.g. after
 * nf_conntrack_proto_tcp.c `tcp_new` refuses a FIN|ACK through the `tcp_conntracks[ORIGINAL][fin][NONE] = sIV`
 * cell, or `tcp_in_window` refuses an out-of-window segment); net/netfilter/nf_nat_core.c `nf_nat_inet_fn`
 * returns NF_ACCEPT at once without a conntrack, so the nat table's POSTROUTING chain is never consulted and the
 * packet is forwarded with its original, private source. Seed 001, containernetworking/plugins#816,
 * firewalld#961, moby#18630.
 *
 * Static part: a nat rule with target SNAT or MASQUERADE reachable from POSTROUTING, and no rule in the
 * mangle/filter FORWARD (or mangle PREROUTING) path that drops ctstate INVALID. Dynamic part (with a host): a
 * bare FIN|ACK from a source the rule covers, forwarded through the host. Left out: policy-DROP FORWARD chains
 * that happen to exclude INVALID (the dynamic part judges those).
 */
import type { Finding, LintContext, LintRule } from "../types";
import { ruleLocation } from "../types";
import {
  dportRange,
  effectiveSelectors,
  jumpPath,
  findInvalidDrop,
  invalidDropAdvice,
  targetRules,
} from "../analysis";
import { ctReasonText, fixedPackets, snatFlow, tcpLine } from "../demo";
import { formatIpv4 } from "../../wire/addr";
import { formatFate, formatSummary } from "../../trace/summary";

export const snatInvalidLeak: LintRule = {
  id: "snat-invalid-leak",
  severity: "warning",
  description:
    "SNAT/MASQUERADE without a ctstate INVALID drop in FORWARD: INVALID packets leave un-NATed with private sources",
  check(ctx: LintContext): Finding[] {
    const rules = targetRules(ctx.ruleset, "nat", ["SNAT", "MASQUERADE"], "POSTROUTING");
    if (rules.length === 0) return [];
    const search = findInvalidDrop(ctx.ruleset, ["PREROUTING", "FORWARD"]);
    if (search.drop && search.bypass.length === 0) return [];
    const advice = invalidDropAdvice(search);
    return rules.map(({ table, chain, rule }) => {
      const target = rule.target?.kind === "extension" ? rule.target.name : "SNAT";
      const f: Finding = {
        id: snatInvalidLeak.id,
        severity: snatInvalidLeak.severity,
        ...ruleLocation(table, chain, rule),
        message: `${target}, but ${advice.problem}`,
        explanation:
          "Packets conntrack marks INVALID (a late FIN or RST after the entry expired, an out-of-window segment) " +
          "carry no conntrack, so nf_nat_inet_fn never consults the nat table: they are forwarded with the " +
          "original private source address instead of being " +
          (target === "MASQUERADE" ? "masqueraded" : "SNATed") +
          ".",
        fix: advice.fix,
      };
      if (ctx.host && (rule.proto === undefined || rule.proto.proto === 0 || rule.proto.proto === 6)) {
        const nat = ctx.ruleset.tables.get("nat");
        const path = nat ? jumpPath(nat, "POSTROUTING", chain) : undefined;
        const eff = effectiveSelectors(path ?? [], rule);
        const flow = snatFlow(ctx.host, eff, dportRange(eff)?.[0] ?? 80);
        if (flow) {
          // First a SYN of the same flow (another port) to show the rule does NAT tracked traffic, then the
          // FIN|ACK with no entry.
          const syn = tcpLine(
            flow.inIface,
            flow.src,
            flow.sport + 1,
            flow.dst,
            flow.dport,
            "S",
            "seq 1, win 512, length 0",
          );
          const fin = tcpLine(
            flow.inIface,
            flow.src,
            flow.sport,
            flow.dst,
            flow.dport,
            "F.",
            "seq 1, ack 1, win 512, length 0",
          );
          const what = target === "MASQUERADE" ? "masqueraded" : "SNATed";
          f.plan = {
            next: fixedPackets([syn, fin]),
            sysctl: { "net.ipv4.ip_forward": 1 },
            judge(reports) {
              const synOut = reports[0]?.egress.find((e) => e.packetId === 0);
              if (!synOut || synOut.packet.ip.src === flow.src)
                return {
                  confirmed: false,
                  outcome: `a SYN of this flow is not ${what} here (${reports[0] ? formatSummary(reports[0].packets[0]) : "no report"}), so the rule does not apply to it`,
                };
              const j = reports[1]?.packets[0];
              const left = reports[1]?.egress.find((e) => e.packetId === 0);
              if (j && left && j.ct?.state === "INVALID" && left.packet.ip.src === flow.src) {
                return {
                  confirmed: true,
                  outcome: `the SYN left ${what} to ${formatIpv4(synOut.packet.ip.src)}; a FIN|ACK with no conntrack entry is INVALID (${ctReasonText(j.ct)}), the nat table is not consulted, and it left on ${left.iface} with source ${formatIpv4(flow.src)} (not ${what})`,
                };
              }
              return {
                confirmed: false,
                outcome: j ? `the FIN|ACK did not leak: ${formatFate(j.fate)}` : "no report",
              };
            },
          };
        }
      }
      return f;
    });
  },
};
