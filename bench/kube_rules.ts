/**
 * The kube-proxy-shaped iptables-save rule set of the benchmarks (bench/trace.ts, bench/load.ts), with the
 * address plan the trace benchmark's capture follows. No side effects on import.
 *
 * nat KUBE-SERVICES has one `-d VIP/32 -p tcp -m comment -m tcp --dport P -j KUBE-SVC-x` rule per service and a
 * last `-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`; per service a KUBE-SVC chain (the `! -s 10.0.0.0/8`
 * KUBE-MARK-MASQ rule, then `-m statistic --mode random --probability 1/n` jumps to its KUBE-SEP chains) and per
 * endpoint a KUBE-SEP chain (hairpin KUBE-MARK-MASQ, `-j DNAT --to-destination ep:8080`); KUBE-MARK-MASQ,
 * KUBE-POSTROUTING (`MARK --xor-mark`, MASQUERADE); filter FORWARD -> KUBE-FORWARD (INVALID drop, mark accept,
 * RELATED,ESTABLISHED accept). 13 fixed rules + (2 + 3 x endpoints) per service.
 */
import { formatIpv4 } from "../src/wire/addr";

/** Rules that do not depend on the number of services. */
export const FIXED_RULES = 13;

/** The number of services that makes the total close to `rules`. */
export function servicesFor(rules: number, endpoints: number): number {
  return Math.max(1, Math.round((rules - FIXED_RULES) / (2 + 3 * endpoints)));
}

/** Cluster IP of service `s`: 172.30.0.1 ... */
export const vip = (s: number): number => 0xac1e0000 + 1 + s;
/** Service port of service `s`. */
export const svcPort = (s: number): number => [80, 443, 8080][s % 3];
/** Pod address of endpoint `e` of service `s`: 10.180.1.0 ... */
export const epAddr = (s: number, e: number, endpoints: number): number => 0x0ab40100 + s * endpoints + e;

const chainId = (kind: string, s: number, e = -1): string =>
  `KUBE-${kind}-${String(s).padStart(6, "0")}${e >= 0 ? `E${e}` : ""}AAAAAAA`.slice(0, 26);

/** The rule set as iptables-save text. */
export function kubeRulesText(services: number, endpoints: number): string {
  const nat: string[] = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"];
  nat.push(":POSTROUTING ACCEPT [0:0]", ":KUBE-SERVICES - [0:0]", ":KUBE-NODEPORTS - [0:0]");
  nat.push(":KUBE-MARK-MASQ - [0:0]", ":KUBE-POSTROUTING - [0:0]");
  const body: string[] = [];
  const svcRules: string[] = [];
  for (let s = 0; s < services; s++) {
    const v = formatIpv4(vip(s));
    const p = svcPort(s);
    const name = `ns${s % 50}/svc${s}:p${p}`;
    const svc = chainId("SVC", s);
    nat.push(`:${svc} - [0:0]`);
    svcRules.push(
      `-A KUBE-SERVICES -d ${v}/32 -p tcp -m comment --comment "${name} cluster IP" -m tcp --dport ${p} -j ${svc}`,
    );
    body.push(
      `-A ${svc} -d ${v}/32 ! -s 10.0.0.0/8 -p tcp -m comment --comment "${name} cluster IP" -m tcp --dport ${p} -j KUBE-MARK-MASQ`,
    );
    for (let e = 0; e < endpoints; e++) {
      const sep = chainId("SEP", s, e);
      const ep = formatIpv4(epAddr(s, e, endpoints));
      nat.push(`:${sep} - [0:0]`);
      const left = endpoints - e;
      body.push(
        left > 1
          ? `-A ${svc} -m comment --comment "${name} -> ${ep}:8080" -m statistic --mode random --probability ${(1 / left).toFixed(10)} -j ${sep}`
          : `-A ${svc} -m comment --comment "${name} -> ${ep}:8080" -j ${sep}`,
      );
      body.push(`-A ${sep} -s ${ep}/32 -m comment --comment "${name}" -j KUBE-MARK-MASQ`);
      body.push(`-A ${sep} -p tcp -m comment --comment "${name}" -m tcp -j DNAT --to-destination ${ep}:8080`);
    }
  }
  nat.push(...svcRules);
  nat.push(
    `-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`,
  );
  nat.push(...body);
  nat.push("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000");
  nat.push("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN");
  nat.push("-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000");
  nat.push(
    `-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully`,
  );
  nat.push(`-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`);
  nat.push(`-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`);
  nat.push(`-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING`);
  nat.push("COMMIT");
  const filter = [
    "*filter",
    ":INPUT ACCEPT [0:0]",
    ":FORWARD DROP [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ":KUBE-FORWARD - [0:0]",
    `-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD`,
    "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
    `-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT`,
    `-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    "COMMIT",
  ];
  return `${nat.join("\n")}\n${filter.join("\n")}\n`;
}
