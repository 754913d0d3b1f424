/**
 * Topology files for `ctsim run`: the hosts and devices of a network, the links between their interfaces, and the
 * traffic (ctsim's own YAML format; not a kernel file):
 *
 *     seed: 1                                   # optional: seeds every node's generator
 *     hop_limit: 512                            # optional: link crossings per packet before it counts as a loop
 *     nodes:
 *       client:                                 # a Linux host: a host file ...
 *         host: client.yaml
 *         iptables: client.v4                   # iptables-save text or a script of iptables commands (optional)
 *       natgw:                                  # ... or inline, with the host-file keys
 *         interfaces: [{name: eth0, mac: "02:00:00:00:00:01", addresses: ["192.0.2.1/24"]}]
 *         routes: ["default via 192.0.2.254 dev eth0"]
 *         sysctl: {net.ipv4.ip_forward: 1}
 *         sockets: [{port: 80, protocol: tcp}, {kind: proxy, ...}]   # listen sockets; other kinds by registry
 *         iptables: |
 *           *nat
 *           -A POSTROUTING -j MASQUERADE
 *           COMMIT
 *         kernel: "6.18"                        # optional kernel profile, backend: legacy|nft, trace_all: bool
 *       nat-gateway-1:                          # a device model, by kind (./registry.ts)
 *         kind: aws-nat-gateway
 *         interfaces: [...]
 *         ...                                   # the model's own keys
 *     links:
 *       - {name: lan, ends: [client:eth0, natgw:eth0], delay: 0.0005}   # two ends: point-to-point; more: segment
 *     traffic:
 *       - {at: 0, inject: {node: natgw, iface: eth0, packet: "IP 10.0.0.5.1914 > 2.2.2.2.80: Flags [F], seq 1, win 512, length 0"}}
 *       - {at: 0, connect: {name: f1, node: client, to: "203.0.113.10:80", sport: 40000, send: 100, close: true}}
 *       - {at: 3, abort: f1}                    # or close: f1, send: {flow: f1, bytes: 100}
 *
 * Files named in the topology are read through the caller's `readFile` (src/ does no I/O), relative to the
 * topology file. Every error is an InputError at file:line:column (code TOPO_*, or the host file's and rule
 * parser's own codes inside them).
 *
 * Leaves out on purpose: IPv6, VLANs on links, UDP endpoint flows (UDP packets are injected as text).
 */
import {
  LineCounter,
  isMap,
  isScalar,
  isSeq,
  parseDocument,
  type Document,
  type Node as YamlNode,
  type Pair,
  type YAMLMap,
} from "yaml";
import { InputError } from "../../errors";
import type { SourceLocation } from "../../errors";
import { parseHostFile } from "../../host/hostfile";
import type { Host, ListeningSocket } from "../../host/types";
import { loadRuleset } from "../../netfilter/parse_script";
import type { Ruleset } from "../../netfilter/ruleset";
import { parseIpv4 } from "../../wire/addr";
import type { Packet } from "../../wire/packet";
import { parseTcpdumpText } from "../../wire/text";
import { Prng } from "../../util/prng";
import { HostSim } from "../host";
import type { Backend } from "../host";
import { NetEngine } from "./engine";
import type { EngineOptions, LinkSpec } from "./engine";
import { LinuxNode } from "./linux_node";
import type { DeviceKind, KeyPath, SocketKind } from "./registry";
import { defaultDeviceRegistry, defaultSocketRegistry, KindRegistry } from "./registry";
import type { TcpApp, TcpSock } from "./tcp_endpoint";
import type { NetNode } from "./types";

export interface TopologyOptions {
  readonly file?: string;
  /** Reads a file named in the topology (path as written, resolved by the caller relative to the topology). */
  readonly readFile?: (path: string) => string;
  readonly devices?: KindRegistry<DeviceKind>;
  readonly socketKinds?: KindRegistry<SocketKind>;
  /** Overrides the file's seed. */
  readonly seed?: number | string;
}

export type TrafficItem =
  | {
      readonly at: number;
      readonly kind: "inject";
      readonly node: string;
      readonly iface: string;
      readonly packet: Packet;
    }
  | {
      readonly at: number;
      readonly kind: "connect";
      readonly flow: string;
      readonly node: string;
      readonly src?: number;
      readonly sport: number;
      readonly dst: number;
      readonly dport: number;
      readonly send: number;
      readonly close: boolean;
      readonly transparent: boolean;
    }
  | { readonly at: number; readonly kind: "send"; readonly flow: string; readonly bytes: number }
  | { readonly at: number; readonly kind: "close" | "abort"; readonly flow: string };

/** A connect flow and, after the run, its socket. */
export interface Flow {
  readonly name: string;
  readonly node: string;
  sock?: TcpSock;
  /** Error the application saw (ECONNREFUSED, ECONNRESET, ETIMEDOUT, EADDRNOTAVAIL). */
  error?: string;
  established?: number;
}

export interface Topology {
  readonly file?: string;
  readonly seed: number | string;
  readonly hopLimit?: number;
  readonly nodes: readonly NetNode[];
  readonly linux: ReadonlyMap<string, LinuxNode>;
  readonly links: readonly LinkSpec[];
  readonly traffic: readonly TrafficItem[];
  readonly flows: Map<string, Flow>;
}

interface Ctx {
  readonly text: string;
  readonly file?: string;
  readonly lc: LineCounter;
  readonly opts: TopologyOptions;
}

function locAt(ctx: Ctx, offset: number): SourceLocation & { excerpt: string } {
  const { line, col } = ctx.lc.linePos(offset);
  return { file: ctx.file, line, column: col, excerpt: ctx.text.split(/\r?\n/)[line - 1] ?? "" };
}
function start(node: unknown): number {
  return (node as { range?: [number, number, number] } | null)?.range?.[0] ?? 0;
}
function fail(ctx: Ctx, node: unknown, code: string, message: string): never {
  throw new InputError({ ...locAt(ctx, start(node)), code, message });
}
function map(ctx: Ctx, node: unknown, what: string): YAMLMap {
  if (!isMap(node)) fail(ctx, node, "TOPO_BAD_TYPE", `${what} must be a mapping`);
  return node;
}
function seq(ctx: Ctx, node: unknown, what: string): readonly unknown[] {
  if (!isSeq(node)) fail(ctx, node, "TOPO_BAD_TYPE", `${what} must be a list`);
  return node.items;
}
function str(ctx: Ctx, node: unknown, what: string): string {
  if (!isScalar(node) || node.value === null || typeof node.value === "object")
    fail(ctx, node, "TOPO_BAD_TYPE", `${what} must be a scalar`);
  return String(node.value);
}
function num(ctx: Ctx, node: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const t = str(ctx, node, what);
  const n = Number(t);
  if (t.trim() === "" || !Number.isFinite(n) || n < min || n > max)
    fail(ctx, node, "TOPO_BAD_NUMBER", `${what} must be a number ${min}..${max}, got "${t}"`);
  return n;
}
function int(ctx: Ctx, node: unknown, what: string, min: number, max: number): number {
  const n = num(ctx, node, what, min, max);
  if (!Number.isInteger(n)) fail(ctx, node, "TOPO_BAD_NUMBER", `${what} must be an integer, got ${n}`);
  return n;
}
function bool(ctx: Ctx, node: unknown, what: string): boolean {
  if (!isScalar(node) || typeof node.value !== "boolean")
    fail(ctx, node, "TOPO_BAD_TYPE", `${what} must be true or false`);
  return node.value;
}
function fields(
  ctx: Ctx,
  m: YAMLMap,
  allowed: readonly string[] | undefined,
  what: string,
): Map<string, { key: unknown; value: unknown; pair: Pair }> {
  const out = new Map<string, { key: unknown; value: unknown; pair: Pair }>();
  for (const pair of m.items) {
    const k = str(ctx, pair.key, `key in ${what}`);
    if (allowed && !allowed.includes(k))
      fail(
        ctx,
        pair.key,
        "TOPO_UNKNOWN_KEY",
        `unknown key "${k}" in ${what} (expected one of: ${allowed.join(", ")})`,
      );
    if (out.has(k)) fail(ctx, pair.key, "TOPO_DUPLICATE_KEY", `duplicate key "${k}" in ${what}`);
    out.set(k, { key: pair.key, value: pair.value, pair });
  }
  return out;
}
function need<T>(ctx: Ctx, f: Map<string, T>, name: string, owner: unknown, what: string): T {
  const v = f.get(name);
  if (!v) fail(ctx, owner, "TOPO_MISSING_KEY", `${what} needs "${name}"`);
  return v;
}

function readRef(ctx: Ctx, node: unknown, what: string): { text: string; file: string } {
  const path = str(ctx, node, what);
  if (!ctx.opts.readFile) fail(ctx, node, "TOPO_NO_FILES", `${what}: files cannot be read here ("${path}")`);
  try {
    return { text: ctx.opts.readFile(path), file: path };
  } catch (err) {
    if (err instanceof InputError) throw err;
    fail(ctx, node, "TOPO_READ", `cannot read ${what} "${path}": ${(err as Error).message}`);
  }
}

/**
 * The text of the topology with everything blanked (newlines kept) except the given pairs of a mapping: parsing
 * it as a host file keeps the host parser's line:column positions right.
 */
function masked(ctx: Ctx, keep: readonly Pair[]): string {
  const chars = ctx.text.replace(/[^\n]/g, " ").split("");
  for (const p of keep) {
    const a = start(p.key);
    const v = p.value as { range?: [number, number, number] } | null;
    const b = v?.range?.[2] ?? v?.range?.[1] ?? a;
    for (let i = a; i < b; i++) chars[i] = ctx.text[i];
  }
  return chars.join("");
}

const HOST_KEYS = ["hostname", "interfaces", "routes", "rules", "sysctl"];
const LINUX_KEYS = [
  "host",
  ...HOST_KEYS,
  "sockets",
  "iptables",
  "kernel",
  "backend",
  "trace_all",
  "tcp_rmem_max",
];

interface LinuxSpec {
  host: Host;
  ruleset: Ruleset;
  kernel?: string;
  backend?: Backend;
  traceAll?: boolean;
  rmemMax?: number;
  sockets: { node: YamlNode; kind?: string; map: YAMLMap }[];
}

function parseLinux(ctx: Ctx, name: string, m: YAMLMap): LinuxSpec {
  const what = `node "${name}"`;
  const f = fields(ctx, m, LINUX_KEYS, what);
  let host: Host;
  const hostRef = f.get("host");
  if (hostRef) {
    for (const k of HOST_KEYS)
      if (f.has(k) && k !== "sysctl")
        fail(ctx, f.get(k)!.key, "TOPO_HOST_TWICE", `${what}: "${k}" cannot be given with "host:"`);
    const r = readRef(ctx, hostRef.value, `${what}.host`);
    host = parseHostFile(r.text, r.file);
    const sys = f.get("sysctl");
    if (sys) {
      // sysctl given with host: overrides the host file's values
      const extra: Record<string, string | number> = {};
      for (const p of map(ctx, sys.value, `${what}.sysctl`).items) {
        const v = str(ctx, p.value, `sysctl ${str(ctx, p.key, "sysctl name")}`);
        extra[str(ctx, p.key, "sysctl name")] = /^-?\d+$/.test(v) ? Number(v) : v;
      }
      host = { ...host, sysctl: { ...host.sysctl, ...extra } };
    }
  } else {
    need(ctx, f, "interfaces", m, what);
    const keep = HOST_KEYS.filter((k) => f.has(k)).map((k) => f.get(k)!.pair);
    host = parseHostFile(masked(ctx, keep), ctx.file);
  }
  if (!f.has("hostname") && !hostRef) host = { ...host, hostname: name };
  let ruleset: Ruleset = loadRuleset("", {}).ruleset;
  const ipt = f.get("iptables");
  if (ipt) {
    let text: string;
    let file: string | undefined;
    const v = ipt.value;
    if (isScalar(v) && (v.type === "BLOCK_LITERAL" || v.type === "BLOCK_FOLDED")) {
      const line = ctx.lc.linePos(start(v)).line;
      text = "\n".repeat(line) + String(v.value);
      file = ctx.file;
    } else {
      const r = readRef(ctx, v, `${what}.iptables`);
      text = r.text;
      file = r.file;
    }
    const loaded = loadRuleset(text, { file });
    if (loaded.errors.length > 0) throw new InputError(loaded.errors[0]);
    ruleset = loaded.ruleset;
  }
  const sockets: LinuxSpec["sockets"] = [];
  const sk = f.get("sockets");
  if (sk) {
    seq(ctx, sk.value, `${what}.sockets`).forEach((item, i) => {
      const sm = map(ctx, item, `${what}.sockets[${i}]`);
      const kindNode = sm.items.find((p) => isScalar(p.key) && p.key.value === "kind")?.value;
      sockets.push({ node: sm, map: sm, ...(kindNode ? { kind: str(ctx, kindNode, "socket kind") } : {}) });
    });
  }
  // listen sockets (no kind) join the host's sockets, as in a host file
  const listen: ListeningSocket[] = [];
  for (const sk of sockets) {
    if (sk.kind !== undefined) continue;
    const lf = fields(ctx, sk.map, ["address", "port", "protocol", "transparent"], `${what}.sockets entry`);
    const port = int(ctx, need(ctx, lf, "port", sk.map, `${what}.sockets entry`).value, "port", 0, 65535);
    const proto = lf.get("protocol") ? str(ctx, lf.get("protocol")!.value, "protocol") : "tcp";
    if (proto !== "tcp" && proto !== "udp")
      fail(
        ctx,
        lf.get("protocol")!.value,
        "TOPO_BAD_SOCKET",
        `socket protocol must be tcp or udp, got "${proto}"`,
      );
    let address = 0;
    if (lf.get("address")) {
      const t = str(ctx, lf.get("address")!.value, "address");
      const a = parseIpv4(t);
      if (a === undefined) fail(ctx, lf.get("address")!.value, "TOPO_BAD_ADDRESS", `bad address "${t}"`);
      address = a;
    }
    const transparent = lf.get("transparent")
      ? bool(ctx, lf.get("transparent")!.value, "transparent")
      : false;
    listen.push({ address, port, protocol: proto, transparent, loc: locAt(ctx, start(sk.map)) });
  }
  if (listen.length) host = { ...host, sockets: [...host.sockets, ...listen] };
  const kernel = f.get("kernel") ? str(ctx, f.get("kernel")!.value, `${what}.kernel`) : undefined;
  let backend: Backend | undefined;
  if (f.get("backend")) {
    const b = str(ctx, f.get("backend")!.value, `${what}.backend`);
    if (b !== "legacy" && b !== "nft")
      fail(ctx, f.get("backend")!.value, "TOPO_BAD_VALUE", `backend must be legacy or nft, got "${b}"`);
    backend = b;
  }
  return {
    host,
    ruleset,
    kernel,
    backend,
    traceAll: f.get("trace_all") ? bool(ctx, f.get("trace_all")!.value, `${what}.trace_all`) : undefined,
    rmemMax: f.get("tcp_rmem_max")
      ? int(ctx, f.get("tcp_rmem_max")!.value, "tcp_rmem_max", 1, 2 ** 31)
      : undefined,
    sockets,
  };
}

function endpoint(ctx: Ctx, node: unknown, what: string): { addr: number; port: number } {
  const t = str(ctx, node, what);
  const m = /^(\d+\.\d+\.\d+\.\d+):(\d{1,5})$/.exec(t);
  const addr = m ? parseIpv4(m[1]) : undefined;
  if (!m || addr === undefined || Number(m[2]) > 65535)
    fail(ctx, node, "TOPO_BAD_ENDPOINT", `${what} must be ADDRESS:PORT, got "${t}"`);
  return { addr, port: Number(m[2]) };
}

/** Parses a topology and builds its nodes. Throws InputError at file:line:column. */
export function loadTopology(text: string, opts: TopologyOptions = {}): Topology {
  const lc = new LineCounter();
  const ctx: Ctx = { text, file: opts.file, lc, opts };
  const doc: Document = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new InputError({ ...locAt(ctx, e.pos[0]), code: "TOPO_YAML", message: e.message.split("\n")[0] });
  }
  const root = map(ctx, doc.contents, "topology");
  const f = fields(ctx, root, ["seed", "hop_limit", "nodes", "links", "traffic", "description"], "topology");
  const seedNode = f.get("seed")?.value;
  const seed =
    opts.seed ??
    (seedNode === undefined
      ? 0
      : /^\d+$/.test(str(ctx, seedNode, "seed"))
        ? Number(str(ctx, seedNode, "seed"))
        : str(ctx, seedNode, "seed"));
  const hopLimit = f.get("hop_limit") ? int(ctx, f.get("hop_limit")!.value, "hop_limit", 1, 1e6) : undefined;
  const devices = opts.devices ?? defaultDeviceRegistry();
  const socketKinds = opts.socketKinds ?? defaultSocketRegistry();

  // Neighbour resolution is filled in after the links are read.
  const owner = new Map<string, Map<number, string>>(); // "node/iface" -> address -> MAC on that link
  const nodes: NetNode[] = [];
  const linux = new Map<string, LinuxNode>();
  const ifaceInfo = new Map<string, { mac?: string; addresses: number[] }>();
  const nodeNodes = new Map<string, YAMLMap>();
  const pendingSockets: { node: LinuxNode; spec: LinuxSpec; name: string }[] = [];
  const sharedState = new Map<string, unknown>();

  const nodesMap = map(ctx, need(ctx, f, "nodes", root, "topology").value, "nodes");
  for (const pair of nodesMap.items) {
    const name = str(ctx, pair.key, "node name");
    if (nodeNodes.has(name)) fail(ctx, pair.key, "TOPO_DUPLICATE_NODE", `node "${name}" given twice`);
    const m = map(ctx, pair.value, `node "${name}"`);
    nodeNodes.set(name, m);
    const kindPair = m.items.find((p) => isScalar(p.key) && p.key.value === "kind");
    const prng = new Prng(`${String(seed)}/${name}`);
    if (kindPair) {
      const kind = str(ctx, kindPair.value, `node "${name}".kind`);
      const dk = devices.get(kind);
      if (!dk)
        fail(
          ctx,
          kindPair.value,
          "TOPO_UNKNOWN_KIND",
          `unknown node kind "${kind}" (known: ${devices.names().join(", ") || "none"})`,
        );
      const df = fields(
        ctx,
        m,
        ["kind", "interfaces", "description", ...dk.keys],
        `node "${name}" (${kind})`,
      );
      const ifPair = df.get("interfaces")?.pair;
      const interfaces = ifPair ? parseHostFile(masked(ctx, [ifPair]), ctx.file).interfaces : [];
      const config: Record<string, unknown> = {};
      for (const [k, v] of df)
        if (k !== "kind" && k !== "interfaces")
          config[k] = (v.value as YamlNode | null)?.toJSON?.() ?? v.value;
      const locate = (path: KeyPath): unknown => {
        let cur: unknown = m;
        let last: unknown = m;
        for (const k of path) {
          if (isMap(cur)) {
            const p = cur.items.find((x) => isScalar(x.key) && x.key.value === k);
            if (!p) return last;
            last = p.key;
            cur = p.value;
          } else if (isSeq(cur) && typeof k === "number") {
            if (!cur.items[k]) return last;
            cur = cur.items[k];
          } else return last;
          last = cur ?? last;
        }
        return cur ?? last;
      };
      const node = dk.create(
        { name, kind, interfaces, config, loc: locAt(ctx, start(m)) },
        {
          fail: (path, code, message) => fail(ctx, locate(path), code, `node "${name}": ${message}`),
          prng,
          shared: <T>(key: string, init: () => T): T => {
            if (!sharedState.has(key)) sharedState.set(key, init());
            return sharedState.get(key) as T;
          },
          hostSim: (path) => {
            const sub = map(ctx, locate(path), `node "${name}".${path.join(".")}`);
            const spec = parseLinux(ctx, name, sub);
            return new HostSim({
              host: spec.host,
              ruleset: spec.ruleset,
              kernel: spec.kernel,
              backend: spec.backend,
              traceAll: spec.traceAll,
              seed: `${String(seed)}/${name}/appliance`,
            });
          },
        },
      );
      for (const i of interfaces)
        ifaceInfo.set(`${name}/${i.name}`, { mac: i.mac, addresses: i.addresses.map((a) => a.addr) });
      nodes.push(node);
      continue;
    }
    const spec = parseLinux(ctx, name, m);
    const node = new LinuxNode({
      name,
      host: spec.host,
      ruleset: spec.ruleset,
      kernel: spec.kernel,
      backend: spec.backend,
      traceAll: spec.traceAll,
      seed: `${String(seed)}/${name}`,
      ...(spec.rmemMax ? { tcp: { rmemMax: spec.rmemMax } } : {}),
      neighbourMac: (iface, addr) => owner.get(`${name}/${iface}`)?.get(addr),
    });
    if (node.sim.problems.length > 0) {
      const p = node.sim.problems[0];
      throw new InputError({
        code: "TOPO_RULE_UNSUPPORTED",
        file: p.rule.source.file ?? ctx.file,
        line: p.rule.source.line,
        column: p.rule.source.column,
        message: `node "${name}": ${p.what}`,
      });
    }
    for (const i of spec.host.interfaces)
      ifaceInfo.set(`${name}/${i.name}`, { mac: i.mac, addresses: i.addresses.map((a) => a.addr) });
    linux.set(name, node);
    nodes.push(node);
    pendingSockets.push({ node, spec, name });
  }

  // sockets (after all nodes exist, so kinds may refer to them by name)
  for (const { node, spec, name } of pendingSockets) {
    for (const s of spec.sockets) {
      if (s.kind === undefined) continue; // listen sockets are host-file sockets, already installed
      const sk = socketKinds.get(s.kind);
      const kindNode = s.map.items.find((p) => isScalar(p.key) && p.key.value === "kind")!.value;
      if (!sk)
        fail(
          ctx,
          kindNode,
          "TOPO_UNKNOWN_SOCKET",
          `unknown socket kind "${s.kind}" (known: listen${socketKinds
            .names()
            .map((n) => `, ${n}`)
            .join("")})`,
        );
      const sf = fields(ctx, s.map, ["kind", ...sk.keys], `socket (${s.kind})`);
      const config: Record<string, unknown> = {};
      for (const [k, v] of sf)
        if (k !== "kind") config[k] = (v.value as YamlNode | null)?.toJSON?.() ?? v.value;
      sk.install(config, {
        stack: node.tcp,
        prng: new Prng(`${String(seed)}/${name}/${s.kind}`),
        fail: (path, code, message) => {
          let cur: unknown = s.map;
          for (const k of path) {
            const next = isMap(cur)
              ? cur.items.find((x) => isScalar(x.key) && x.key.value === k)?.value
              : isSeq(cur) && typeof k === "number"
                ? cur.items[k]
                : undefined;
            if (next === undefined) break;
            cur = next;
          }
          fail(ctx, cur, code, `node "${name}" socket ${s.kind}: ${message}`);
        },
      });
    }
  }

  // links
  const links: LinkSpec[] = [];
  const used = new Map<string, string>();
  const linksNode = f.get("links")?.value;
  if (linksNode !== undefined)
    seq(ctx, linksNode, "links").forEach((item, i) => {
      const what = `links[${i}]`;
      const lm = map(ctx, item, what);
      const lf = fields(ctx, lm, ["name", "ends", "delay"], what);
      const name = lf.get("name") ? str(ctx, lf.get("name")!.value, `${what}.name`) : `link${i}`;
      const endsNode = need(ctx, lf, "ends", lm, what).value;
      const ends = seq(ctx, endsNode, `${what}.ends`).map((e) => {
        const t = str(ctx, e, `${what}.ends entry`);
        const mm = /^([^:\s]+):([^:\s]+)$/.exec(t);
        if (!mm) fail(ctx, e, "TOPO_BAD_END", `link end must be NODE:IFACE, got "${t}"`);
        const [, n, ifn] = mm;
        const nn = nodes.find((x) => x.name === n);
        if (!nn) fail(ctx, e, "TOPO_UNKNOWN_NODE", `unknown node "${n}"`);
        if (!nn.interfaces.includes(ifn))
          fail(
            ctx,
            e,
            "TOPO_UNKNOWN_IFACE",
            `node "${n}" has no interface "${ifn}" (has: ${nn.interfaces.join(", ")})`,
          );
        const k = `${n}/${ifn}`;
        if (used.has(k)) fail(ctx, e, "TOPO_IFACE_TWICE", `${n}:${ifn} is already on link "${used.get(k)}"`);
        used.set(k, name);
        const info = ifaceInfo.get(k);
        return {
          node: n,
          iface: ifn,
          ...(info?.mac ? { mac: info.mac } : {}),
          addresses: info?.addresses ?? [],
        };
      });
      if (ends.length < 2) fail(ctx, endsNode, "TOPO_BAD_LINK", `${what} needs at least two ends`);
      const delay = lf.get("delay") ? num(ctx, lf.get("delay")!.value, `${what}.delay`, 0, 3600) : 0;
      links.push({ name, ends, delay });
      for (const e of ends) {
        const table = new Map<number, string>();
        for (const o of ends) if (o !== e && o.mac) for (const a of o.addresses) table.set(a, o.mac);
        owner.set(`${e.node}/${e.iface}`, table);
      }
    });

  // traffic
  const traffic: TrafficItem[] = [];
  const flows = new Map<string, Flow>();
  const trafficNode = f.get("traffic")?.value;
  if (trafficNode !== undefined)
    seq(ctx, trafficNode, "traffic").forEach((item, i) => {
      const what = `traffic[${i}]`;
      const tm = map(ctx, item, what);
      const tf = fields(ctx, tm, ["at", "inject", "connect", "send", "close", "abort"], what);
      const at = tf.get("at") ? num(ctx, tf.get("at")!.value, `${what}.at`, 0, 1e9) : 0;
      const acts = [...tf.keys()].filter((k) => k !== "at");
      if (acts.length !== 1)
        fail(ctx, tm, "TOPO_BAD_TRAFFIC", `${what} needs exactly one of inject, connect, send, close, abort`);
      const act = acts[0];
      const v = tf.get(act)!.value;
      const flowRef = (node: unknown): string => {
        const n = str(ctx, node, `${what}.${act}`);
        if (!flows.has(n)) fail(ctx, node, "TOPO_UNKNOWN_FLOW", `no earlier connect named "${n}"`);
        return n;
      };
      switch (act) {
        case "inject": {
          const im = map(ctx, v, `${what}.inject`);
          const jf = fields(ctx, im, ["node", "iface", "packet"], `${what}.inject`);
          const nodeN = need(ctx, jf, "node", im, `${what}.inject`).value;
          const n = str(ctx, nodeN, "node");
          const nn = nodes.find((x) => x.name === n);
          if (!nn) fail(ctx, nodeN, "TOPO_UNKNOWN_NODE", `unknown node "${n}"`);
          const ifN = need(ctx, jf, "iface", im, `${what}.inject`).value;
          const iface = str(ctx, ifN, "iface");
          if (!nn.interfaces.includes(iface))
            fail(ctx, ifN, "TOPO_UNKNOWN_IFACE", `node "${n}" has no interface "${iface}"`);
          const pN = need(ctx, jf, "packet", im, `${what}.inject`).value;
          const ptext = str(ctx, pN, "packet");
          const { line } = lc.linePos(start(pN));
          const r = parseTcpdumpText(ptext.trim() + "\n", { file: ctx.file });
          if (r.errors.length > 0) fail(ctx, pN, "TOPO_BAD_PACKET", `packet: ${r.errors[0].message}`);
          if (r.packets.length !== 1)
            fail(ctx, pN, "TOPO_BAD_PACKET", `packet must be one IPv4 packet in tcpdump text`);
          const sec = Math.floor(at);
          const packet: Packet = {
            ...r.packets[0],
            tsSec: sec,
            tsNsec: Math.round((at - sec) * 1e9),
            origin: `${ctx.file ?? "topology"}:${line}`,
          };
          traffic.push({ at, kind: "inject", node: n, iface, packet });
          return;
        }
        case "connect": {
          const cm = map(ctx, v, `${what}.connect`);
          const cf = fields(
            ctx,
            cm,
            ["name", "node", "to", "src", "sport", "send", "close", "transparent"],
            `${what}.connect`,
          );
          const nodeN = need(ctx, cf, "node", cm, `${what}.connect`).value;
          const n = str(ctx, nodeN, "node");
          if (!linux.has(n))
            fail(
              ctx,
              nodeN,
              "TOPO_NOT_LINUX",
              nodes.some((x) => x.name === n)
                ? `node "${n}" is a device, not a Linux host`
                : `unknown node "${n}"`,
            );
          const name = cf.get("name") ? str(ctx, cf.get("name")!.value, "name") : `flow${flows.size + 1}`;
          if (flows.has(name))
            fail(ctx, cf.get("name")!.value, "TOPO_DUPLICATE_FLOW", `flow "${name}" given twice`);
          const to = endpoint(ctx, need(ctx, cf, "to", cm, `${what}.connect`).value, "to");
          let src: number | undefined;
          if (cf.get("src")) {
            const t = str(ctx, cf.get("src")!.value, "src");
            src = parseIpv4(t);
            if (src === undefined) fail(ctx, cf.get("src")!.value, "TOPO_BAD_ADDRESS", `bad address "${t}"`);
          }
          const sport = int(ctx, need(ctx, cf, "sport", cm, `${what}.connect`).value, "sport", 1, 65535);
          const send = cf.get("send") ? int(ctx, cf.get("send")!.value, "send", 0, 2 ** 31) : 0;
          const close = cf.get("close") ? bool(ctx, cf.get("close")!.value, "close") : false;
          const transparent = cf.get("transparent")
            ? bool(ctx, cf.get("transparent")!.value, "transparent")
            : false;
          flows.set(name, { name, node: n });
          traffic.push({
            at,
            kind: "connect",
            flow: name,
            node: n,
            ...(src !== undefined ? { src } : {}),
            sport,
            dst: to.addr,
            dport: to.port,
            send,
            close,
            transparent,
          });
          return;
        }
        case "send": {
          const sm = map(ctx, v, `${what}.send`);
          const sf = fields(ctx, sm, ["flow", "bytes"], `${what}.send`);
          const flow = flowRef(need(ctx, sf, "flow", sm, `${what}.send`).value);
          const bytes = int(ctx, need(ctx, sf, "bytes", sm, `${what}.send`).value, "bytes", 1, 2 ** 31);
          traffic.push({ at, kind: "send", flow, bytes });
          return;
        }
        default:
          traffic.push({ at, kind: act as "close" | "abort", flow: flowRef(v) });
      }
    });

  return { file: opts.file, seed, hopLimit, nodes, linux, links, traffic, flows };
}

/** An engine with the topology's nodes and links and its traffic scheduled. */
export function buildEngine(topo: Topology, opts: EngineOptions = {}): NetEngine {
  const engine = new NetEngine(topo.nodes, topo.links, {
    ...(topo.hopLimit !== undefined ? { hopLimit: topo.hopLimit } : {}),
    ...opts,
  });
  for (const t of topo.traffic) {
    if (t.kind === "inject") {
      engine.inject(t.at, t.node, t.iface, t.packet);
      continue;
    }
    const flow = topo.flows.get(t.flow)!;
    const node = topo.linux.get(flow.node)!;
    if (t.kind === "connect") {
      engine.schedule(t.at, t.node, `connect ${t.flow}`, (now) =>
        node.act(now, (stack, at) => {
          const app: TcpApp = {
            onEstablished: (sk, when) => {
              flow.established = when;
              if (t.send > 0) stack.send(sk, t.send, when);
              if (t.close) stack.close(sk, when);
            },
            onError: (_sk, e) => {
              flow.error = e;
            },
          };
          flow.sock = stack.connect(
            {
              ...(t.src !== undefined ? { src: t.src } : {}),
              sport: t.sport,
              dst: t.dst,
              dport: t.dport,
              transparent: t.transparent,
              app,
              label: t.flow,
            },
            at,
          );
          if (flow.sock.error) flow.error = flow.sock.error;
        }),
      );
    } else {
      engine.schedule(t.at, flow.node, `${t.kind} ${t.flow}`, (now) =>
        node.act(now, (stack, at) => {
          const sk = flow.sock;
          if (!sk) return;
          if (t.kind === "send") stack.send(sk, t.bytes, at);
          else if (t.kind === "close") stack.close(sk, at);
          else stack.abort(sk, at);
        }),
      );
    }
  }
  return engine;
}
