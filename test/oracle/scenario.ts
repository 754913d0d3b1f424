/**
 * Oracle scenarios: a directory `test/oracle/scenarios/<name>/` holding `scenario.yaml` plus the host file,
 * iptables-save rules and tcpdump-text packets that ctsim itself reads. This module loads and validates the
 * scenario file and defines the recording (golden) JSON shape. It is test tooling: it may read files.
 */
import { readFileSync, readdirSync, existsSync, statSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { parseMac, parseIpv4Prefix, type Ipv4Prefix } from "../../src/wire/addr";
import { parseHostFile, type Host } from "../../src/host/hostfile";

export const ORACLE_DIR = dirname(fileURLToPath(import.meta.url));
export const SCENARIO_ROOT = join(ORACLE_DIR, "scenarios");
export const RECORDING_ROOT = join(ORACLE_DIR, "recordings");

export interface PeerSpec {
  readonly mac: string;
  readonly addresses: readonly Ipv4Prefix[];
  /** As written, for `ip addr add`. */
  readonly addressText: readonly string[];
}

export interface Scenario {
  readonly name: string;
  readonly dir: string;
  readonly description: string;
  readonly hostFile: string;
  readonly host: Host;
  readonly rulesFile: string;
  readonly rulesText: string;
  readonly packetsFile: string;
  readonly packetsText: string;
  /** Per router interface, the neighbour behind it. */
  readonly peers: Readonly<Record<string, PeerSpec>>;
  /** Extra sysctls for the router namespace (applied after the host file's). */
  readonly sysctl: Readonly<Record<string, number | string>>;
  readonly gapMs: number;
  /** `ipset save` text loaded into the router namespace with `ipset restore` before the rules (optional). */
  readonly ipsetsFile?: string;
  readonly ipsetsText?: string;
  /**
   * Packets the router itself sends (key `local`): 0-based position in packets.txt -> owner of the sending
   * process. Those lines read `<oif> Out IP ...`; the recorder sends them from the router namespace as that
   * uid/gid (UDP `sendto` from the packet's source address and port), the engine replays them as locally
   * generated with that socket owner.
   */
  readonly local: ReadonlyMap<number, LocalOwner>;
}

export interface LocalOwner {
  readonly uid: number;
  readonly gid: number;
}

const SCENARIO_KEYS = [
  "description",
  "host",
  "rules",
  "packets",
  "peers",
  "sysctl",
  "gap_ms",
  "ipsets",
  "local",
];

function bad(file: string, message: string): never {
  throw new Error(`${file}: ${message}`);
}

export function loadScenario(dir: string): Scenario {
  const absDir = resolve(dir);
  const name = absDir.split("/").pop()!;
  const file = join(absDir, "scenario.yaml");
  const raw = parseYaml(readFileSync(file, "utf8")) as Record<string, unknown>;
  if (!raw || typeof raw !== "object") bad(file, "not a mapping");
  for (const k of Object.keys(raw)) if (!SCENARIO_KEYS.includes(k)) bad(file, `unknown key "${k}"`);
  const str = (k: string): string => {
    const v = raw[k];
    if (typeof v !== "string" || v === "") bad(file, `"${k}" must be a non-empty string`);
    return v;
  };
  const description = str("description").trim();
  const hostFile = str("host");
  const rulesFile = str("rules");
  const packetsFile = str("packets");
  const hostText = readFileSync(join(absDir, hostFile), "utf8");
  const host = parseHostFile(hostText, join(name, hostFile));
  const peersRaw = raw.peers as Record<string, { mac?: unknown; addresses?: unknown }> | undefined;
  if (!peersRaw || typeof peersRaw !== "object") bad(file, `"peers" must map router interfaces to peers`);
  const peers: Record<string, PeerSpec> = {};
  for (const [iface, p] of Object.entries(peersRaw)) {
    if (!host.interfaces.some((i) => i.name === iface))
      bad(file, `peer for unknown router interface "${iface}"`);
    const mac = typeof p?.mac === "string" ? parseMac(p.mac) : undefined;
    if (!mac) bad(file, `peers.${iface}.mac is missing or malformed`);
    const addressText = Array.isArray(p.addresses) ? p.addresses.map(String) : [];
    const addresses = addressText.map(
      (a) => parseIpv4Prefix(a) ?? bad(file, `peers.${iface}: bad address "${a}"`),
    );
    peers[iface] = { mac, addresses, addressText };
  }
  for (const i of host.interfaces)
    if (i.name !== "lo" && !peers[i.name]) bad(file, `router interface "${i.name}" has no peer`);
  const sysctl: Record<string, number | string> = {};
  if (raw.sysctl !== undefined) {
    if (typeof raw.sysctl !== "object" || raw.sysctl === null) bad(file, `"sysctl" must be a mapping`);
    for (const [k, v] of Object.entries(raw.sysctl)) sysctl[k] = typeof v === "number" ? v : String(v);
  }
  const gapMs = raw.gap_ms === undefined ? 150 : Number(raw.gap_ms);
  if (!Number.isFinite(gapMs) || gapMs < 20) bad(file, `"gap_ms" must be a number >= 20`);
  const ipsetsFile = raw.ipsets === undefined ? undefined : str("ipsets");
  const local = new Map<number, LocalOwner>();
  if (raw.local !== undefined) {
    if (typeof raw.local !== "object" || raw.local === null || Array.isArray(raw.local))
      bad(file, `"local" must map packet positions (0-based) to {uid, gid}`);
    for (const [k, v] of Object.entries(raw.local as Record<string, unknown>)) {
      const o = v as { uid?: unknown; gid?: unknown } | null;
      const ok = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0;
      if (!/^\d+$/.test(k) || !o || !ok(o.uid) || !ok(o.gid))
        bad(file, `local.${k}: want a 0-based packet position mapped to {uid: N, gid: N}`);
      local.set(Number(k), { uid: o.uid, gid: o.gid });
    }
  }
  return {
    name,
    dir: absDir,
    description,
    hostFile,
    host,
    rulesFile,
    rulesText: readFileSync(join(absDir, rulesFile), "utf8"),
    packetsFile,
    packetsText: readFileSync(join(absDir, packetsFile), "utf8"),
    peers,
    sysctl,
    gapMs,
    local,
    ...(ipsetsFile !== undefined
      ? { ipsetsFile, ipsetsText: readFileSync(join(absDir, ipsetsFile), "utf8") }
      : {}),
  };
}

/** Names of all scenario directories, sorted. */
export function listScenarios(root = SCENARIO_ROOT): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((n) => statSync(join(root, n)).isDirectory() && existsSync(join(root, n, "scenario.yaml")))
    .sort();
}

/** Names of all recordings (`<name>.json`), sorted. */
export function listRecordings(root = RECORDING_ROOT): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((n) => n.endsWith(".json"))
    .map((n) => n.slice(0, -5))
    .sort();
}

// ---- The recording (golden) format ----

export interface RecordedEgress {
  /** Router interface the packet left by. */
  readonly iface: string;
  /** `tcpdump -nn -S -v -t` text of the frame (continuation lines joined with one space), IP layer on. */
  readonly text: string;
  /** Ethernet frame as hex, transport checksum completed where the kernel left it to the (veth) NIC. */
  readonly hex: string;
  /** True when the recorder completed a CHECKSUM_PARTIAL transport checksum. */
  readonly checksumCompleted?: boolean;
}

export interface RecordedPacket {
  /** 0-based position in packets.txt. */
  readonly index: number;
  readonly input: {
    /** Set when the router itself sent the packet (scenario key `local`): the sending process's uid/gid. */
    readonly local?: LocalOwner;
    /** The packet's line(s) in packets.txt. */
    readonly text: string;
    /** Router interface it entered by. */
    readonly iface: string;
    /** The injected Ethernet frame. */
    readonly hex: string;
  };
  /** Kernel TRACE lines this packet produced, verbatim from `TRACE:` on. */
  readonly trace: readonly string[];
  /**
   * LOG target lines this packet produced, verbatim (`<prefix>IN=...`). Absent in recordings made before the
   * recorder collected them (01-38); then not compared.
   */
  readonly log?: readonly string[];
  readonly egress: readonly RecordedEgress[];
  /** `conntrack -L -o extended` after the packet, verbatim lines. */
  readonly conntrack: readonly string[];
}

export interface Recording {
  readonly scenario: string;
  readonly description: string;
  readonly provenance: {
    readonly kernel: string;
    readonly date: string;
    readonly iptables: string;
    readonly conntrack: string;
    readonly tcpdump?: string;
    readonly command: string;
  };
  readonly packets: readonly RecordedPacket[];
}

export function loadRecording(name: string, root = RECORDING_ROOT): Recording {
  return JSON.parse(readFileSync(join(root, `${name}.json`), "utf8")) as Recording;
}
