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
import { dportRange, findInvalidDrop, targetRules } from "../analysis";
import { ctReasonText, fixedPackets, snatFlow, tcpLine } from "../demo";
import { formatIpv4 } from "../../wire/addr";
import { formatSummary } from "../../trace/summary";

export const snatInvalidLeak: LintRule = {
  id: "snat-invalid-leak",
  severity: "warning",
  description:
    "SNAT/MASQUERADE without a ctstate INVALID drop in FORWARD: INVALID packets leave un-NATed with private sources",
  check(ctx: LintContext): Finding[] {
    const rules = targetRules(ctx.ruleset, "nat", ["SNAT", "MASQUERADE"], "POSTROUTING");
    if (rules.length === 0) return [];
    if (findInvalidDrop(ctx.ruleset, ["PREROUTING", "FORWARD"])) return [];
    return rules.map(({ table, chain, rule }) => {
      const target = rule.target?.kind === "extension" ? rule.target.name : "SNAT";
      const f: Finding = {
        id: snatInvalidLeak.id,
        severity: snatInvalidLeak.severity,
        ...ruleLocation(table, chain, rule),
        message: `${target} with no "-m conntrack --ctstate INVALID -j DROP" on the forwarding path`,
        explanation:
          "Packets conntrack marks INVALID (a late FIN or RST after the entry expired, an out-of-window segment) " +
          "carry no conntrack, so nf_nat_inet_fn never consults the nat table: they are forwarded with the " +
          "original private source address instead of being " +
          (target === "MASQUERADE" ? "masqueraded" : "SNATed") +
          ".",
        fix: "iptables -t filter -I FORWARD 1 -m conntrack --ctstate INVALID -j DROP",
      };
      if (ctx.host && (rule.proto === undefined || rule.proto.proto === 0 || rule.proto.proto === 6)) {
        const flow = snatFlow(ctx.host, rule, dportRange(rule)?.[0] ?? 80);
        if (flow) {
          const line = tcpLine(
            flow.inIface,
            flow.src,
            flow.sport,
            flow.dst,
            flow.dport,
            "F.",
            "seq 1, ack 1, win 512, length 0",
          );
          f.plan = {
            next: fixedPackets([line]),
            sysctl: { "net.ipv4.ip_forward": 1 },
            judge(reports) {
              const j = reports[0]?.packets[0];
              const left = reports[0]?.egress.find((e) => e.packetId === 0);
              if (j && left && j.ct?.state === "INVALID" && left.packet.ip.src === flow.src) {
                return {
                  confirmed: true,
                  outcome: `a FIN|ACK with no conntrack entry is INVALID (${ctReasonText(j.ct)}); the nat table is not consulted; it left on ${left.iface} with source ${formatIpv4(flow.src)} (not ${target === "MASQUERADE" ? "masqueraded" : "SNATed"})`,
                };
              }
              return { confirmed: false, outcome: j ? formatSummary(j) : "no report" };
            },
          };
        }
      }
      return f;
    });
  },
};
