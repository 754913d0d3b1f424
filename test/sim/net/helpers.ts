/** Builders for network tests: hosts from a few lines, rulesets from iptables-save text. */
import { parseHostFile } from "../../../src/host/hostfile";
import { loadRuleset } from "../../../src/netfilter/parse_script";
import { LinuxNode } from "../../../src/sim/net/linux_node";
import type { LinkSpec } from "../../../src/sim/net/engine";
import { parseIpv4 } from "../../../src/wire/addr";

export function ip(text: string): number {
  const a = parseIpv4(text);
  if (a === undefined) throw new Error(`bad address ${text}`);
  return a;
}

export interface TestHost {
  name: string;
  ifaces: { name: string; mac: string; addr: string }[];
  routes?: string[];
  forward?: boolean;
  rules?: string;
  sockets?: { port: number }[];
}

export function linuxNode(h: TestHost, neighbours: Map<string, string>, seed = 1): LinuxNode {
  const yaml = [
    `hostname: ${h.name}`,
    `interfaces:`,
    ...h.ifaces.map((i) => `  - {name: ${i.name}, mac: "${i.mac}", addresses: ["${i.addr}"]}`),
    ...(h.routes?.length ? ["routes:", ...h.routes.map((r) => `  - ${r}`)] : []),
    ...(h.forward ? ["sysctl: {net.ipv4.ip_forward: 1}"] : []),
    ...(h.sockets?.length
      ? ["sockets:", ...h.sockets.map((s) => `  - {port: ${s.port}, protocol: tcp}`)]
      : []),
  ].join("\n");
  const host = parseHostFile(yaml, `${h.name}.yaml`);
  const loaded = loadRuleset(h.rules ?? "", { file: `${h.name}.rules` });
  if (loaded.errors.length) throw new Error(loaded.errors[0].message);
  return new LinuxNode({
    name: h.name,
    host,
    ruleset: loaded.ruleset,
    seed,
    neighbourMac: (_iface, addr) => neighbours.get(String(addr)),
  });
}

/** Links and the neighbour table (address -> MAC) for a set of test hosts. */
export function wire(
  hosts: TestHost[],
  links: [string, string, string, string][],
): {
  links: LinkSpec[];
  neighbours: Map<string, string>;
} {
  const neighbours = new Map<string, string>();
  const end = (node: string, iface: string) => {
    const h = hosts.find((x) => x.name === node)!;
    const i = h.ifaces.find((x) => x.name === iface)!;
    const a = ip(i.addr.split("/")[0]);
    neighbours.set(String(a), i.mac);
    return { node, iface, mac: i.mac, addresses: [a] };
  };
  return {
    links: links.map(([n1, i1, n2, i2], k) => ({ name: `l${k}`, ends: [end(n1, i1), end(n2, i2)] })),
    neighbours,
  };
}
