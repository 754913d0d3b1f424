// Shared inputs for the check tests: seed 001's gateway (examples/seed001/host.yaml) and rule sets, inline.
export const HOST = `hostname: natgw
interfaces:
  - { name: eth0, mac: "00:16:3e:00:cd:08", addresses: ["192.168.100.104/24"] }
routes:
  - default via 192.168.100.253 dev eth0
sysctl:
  net.ipv4.ip_forward: 1
`;

export const RULES = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
`;

export const RULES_FIXED = RULES.replace(
  ":OUTPUT ACCEPT [0:0]\nCOMMIT",
  ":OUTPUT ACCEPT [0:0]\n-A FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT",
);

/** A CheckEnv over an in-memory file system. */
export function memEnv(files: Record<string, string>) {
  let t = 0;
  return {
    readFile(p: string): string {
      const text = files[p];
      if (text === undefined) throw new Error(`ENOENT: no such file '${p}'`);
      return text;
    },
    now: () => (t += 1.5),
  };
}
