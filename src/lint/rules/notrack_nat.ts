/**
 * notrack-nat: raw-table NOTRACK (or `CT --notrack`) on traffic that a nat rule expects to translate.
 *
 * Kernel behaviour (Linux 6.18): net/netfilter/xt_CT.c `notrack_tg` attaches the untracked conntrack
 * (IP_CT_UNTRACKED) before conntrack runs (raw is at NF_IP_PRI_RAW, before NF_IP_PRI_CONNTRACK);
 * `nf_conntrack_in` then leaves the packet alone and net/netfilter/nf_nat_core.c `nf_nat_inet_fn` returns
 * NF_ACCEPT for a packet without a real conntrack, so no DNAT/SNAT/MASQUERADE/REDIRECT ever applies to it.
 *
 * raw PREROUTING affects the nat PREROUTING and POSTROUTING chains (forwarded traffic), raw OUTPUT the nat
 * OUTPUT and POSTROUTING chains. Overlap is decided from selectors (src/lint/analysis.ts `mayOverlap`); the
 * dynamic part sends a SYN both rules select.
 */
import type { Finding, LintContext, LintRule } from "../types";
import { ruleLocation, ruleWhere } from "../types";
import type { Located } from "../analysis";
import { allRules, dportRange, isExtension, mayOverlap, targetName } from "../analysis";
import { fixedPackets, ifaceTowards, insidePrefix, outsideAddress, tcpLine } from "../demo";
import { Fib } from "../../host/route";
import type { Host } from "../../host/types";
import type { CtTargetOptions } from "../../netfilter/xt/xt_CT";
import type { Hook } from "../../netfilter/ruleset";
import { formatSummary } from "../../trace/summary";

const NAT_TARGETS = ["DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP"];
/** raw hook -> nat hooks that see the same packets. */
const AFFECTS: Record<string, readonly Hook[]> = {
  PREROUTING: ["PREROUTING", "POSTROUTING"],
  OUTPUT: ["OUTPUT", "POSTROUTING"],
};

function isNotrack(l: Located): boolean {
  if (isExtension(l.rule, "NOTRACK")) return true;
  return (
    isExtension(l.rule, "CT") &&
    l.rule.target?.kind === "extension" &&
    (l.rule.target.options as CtTargetOptions).notrack
  );
}

export const notrackNat: LintRule = {
  id: "notrack-nat",
  severity: "warning",
  description:
    "NOTRACK in raw on traffic a nat rule expects to translate (untracked packets are never NATed)",
  check(ctx: LintContext): Finding[] {
    const all = [...allRules(ctx.ruleset)];
    const notracks = all.filter((l) => l.table === "raw" && !l.rule.neverMatches && isNotrack(l));
    const nats = all.filter(
      (l) => l.table === "nat" && !l.rule.neverMatches && isExtension(l.rule, ...NAT_TARGETS),
    );
    const out: Finding[] = [];
    for (const n of nats) {
      for (const r of notracks) {
        const hooks = r.chain.hooks.flatMap((h) => AFFECTS[h] ?? []);
        if (!n.chain.hooks.some((h) => hooks.includes(h))) continue;
        // Interfaces only compare when both rules see the same input (PREROUTING -i vs PREROUTING -i).
        const sameSide = n.chain.hooks.includes("PREROUTING") && r.chain.hooks.includes("PREROUTING");
        if (!mayOverlap(r.rule, n.rule, { ignoreIfaces: !sameSide })) continue;
        const f: Finding = {
          id: notrackNat.id,
          severity: notrackNat.severity,
          ...ruleLocation(n.table, n.chain, n.rule),
          message: `${targetName(n.rule)} never applies to packets that ${ruleWhere(r.table, r.chain, r.rule)} (line ${r.rule.source.line}, ${targetName(r.rule)}) marks untracked`,
          explanation:
            "The raw table runs before conntrack; an untracked packet has no conntrack entry, and the NAT hooks only translate packets with one, so these packets pass the nat table untouched.",
          fix: `narrow the NOTRACK rule at line ${r.rule.source.line} so it excludes this traffic (e.g. add "! -d" / "! --dport" for the translated service), or drop the nat rule`,
        };
        if (ctx.host) {
          const plan = notrackDemo(ctx.host, r, n);
          if (plan) f.plan = plan;
        }
        out.push(f);
        break;
      }
    }
    return out;
  },
};

function notrackDemo(host: Host, raw: Located, nat: Located): Finding["plan"] {
  const fib = new Fib(host);
  if (!raw.chain.hooks.includes("PREROUTING")) return undefined;
  const pick = (
    a?: { addr: number; mask: number; invert: boolean },
    b?: { addr: number; mask: number; invert: boolean },
  ) => {
    const s = a && !a.invert && a.mask !== 0 ? a : b && !b.invert && b.mask !== 0 ? b : undefined;
    return s ? insidePrefix(fib, s.addr, s.mask, s.mask === 0xffffffff ? 0 : 10) : undefined;
  };
  const dst =
    pick(nat.rule.dst, raw.rule.dst) ??
    (nat.chain.hooks.includes("PREROUTING")
      ? fib.interfaces().find((i) => i.name !== "lo")?.addresses[0]?.addr
      : undefined) ??
    outsideAddress(fib, nat.rule);
  if (dst === undefined) return undefined;
  const src =
    pick(nat.rule.src, raw.rule.src) ?? outsideAddress(fib, { ...nat.rule, dst: undefined }, undefined, dst);
  if (src === undefined) return undefined;
  const inName = (x: Located) =>
    x.rule.inIface && !x.rule.inIface.invert && !x.rule.inIface.name.endsWith("+")
      ? x.rule.inIface.name
      : undefined;
  const iface = inName(raw) ?? inName(nat) ?? ifaceTowards(fib, src);
  if (!iface) return undefined;
  const dport = dportRange(nat.rule)?.[0] ?? dportRange(raw.rule)?.[0] ?? 80;
  const line = tcpLine(iface, src, 40000, dst, dport, "S", "seq 1000, win 64240, length 0");
  return {
    next: fixedPackets([line]),
    sysctl: { "net.ipv4.ip_forward": 1 },
    judge(reports) {
      const j = reports[0]?.packets[0];
      if (!j) return { confirmed: false, outcome: "no report" };
      const natted = j.nat.some((s) => (s.kind === "binding" || s.kind === "rewrite") && s.from !== s.to);
      if (j.ct?.state === "UNTRACKED" && !natted)
        return {
          confirmed: true,
          outcome: `a SYN both rules select is UNTRACKED and not translated: ${formatSummary(j).replace(/^=> #0 /, "")}`,
        };
      return { confirmed: false, outcome: formatSummary(j) };
    },
  };
}
