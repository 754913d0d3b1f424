/**
 * The host file: one emulated host's interfaces, addresses, routes, `ip rule`s, sysctls and listening sockets,
 * in the project's YAML format:
 *
 *     hostname: natgw
 *     interfaces:
 *       - {name: eth0, mac: "00:16:3e:00:cd:08", addresses: ["192.168.100.104/24"]}
 *     routes: ["default via 192.168.100.253 dev eth0", "local 0.0.0.0/0 dev lo table 100"]
 *     rules: ["fwmark 100 lookup 100"]                       # optional
 *     sysctl: {net.ipv4.ip_forward: 1}                       # optional
 *     sockets: [{address: 0.0.0.0, port: 80, protocol: tcp, transparent: false}]   # optional
 *
 * Route and rule lines use iproute2's argument grammar (iproute2 ip/iproute.c `iproute_modify`, ip/iprule.c
 * `iprule_modify`), reduced to the keywords below. connectedRoutes() mirrors the kernel's
 * net/ipv4/fib_frontend.c `fib_add_ifaddr` (kernel 6.18): a `local` route per address in table local and a
 * link-scope prefix route per primary address in table main.
 * Leaves out on purpose: IPv6, multipath (`nexthop`), route metrics/MTU/realms, rule actions other than
 * `lookup`/`table`, broadcast routes (fib_add_ifaddr adds them, but nothing in ctsim routes broadcasts), and
 * interface flags (every interface is up).
 *
 * Bad structure throws InputError with file:line:column (columns point into the offending scalar).
 */
import {
  LineCounter,
  isMap,
  isScalar,
  isSeq,
  parseDocument,
  type Node as YamlNode,
  type YAMLMap,
} from "yaml";
import { InputError, type SourceLocation } from "../errors";
import {
  formatIpv4 as fmt,
  parseIpv4,
  parseIpv4Prefix,
  parseMac,
  prefixMask,
  type Ipv4Prefix,
} from "../wire/addr";
import {
  RT_TABLE_DEFAULT,
  RT_TABLE_LOCAL,
  RT_TABLE_MAIN,
  type Host,
  type HostInterface,
  type IpRule,
  type ListeningSocket,
  type Route,
  type RouteScope,
  type RouteType,
} from "./types";

export * from "./types";

interface Ctx {
  readonly text: string;
  readonly file?: string;
  readonly lc: LineCounter;
}

function locAt(ctx: Ctx, offset: number): SourceLocation & { excerpt: string } {
  const { line, col } = ctx.lc.linePos(offset);
  const excerpt = ctx.text.split(/\r?\n/)[line - 1] ?? "";
  return { file: ctx.file, line, column: col, excerpt };
}

function fail(ctx: Ctx, offset: number, code: string, message: string): never {
  throw new InputError({ ...locAt(ctx, offset), code, message });
}

function nodeStart(node: unknown): number {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range ? range[0] : 0;
}

function where(ctx: Ctx, node: unknown): SourceLocation {
  const { excerpt: _excerpt, ...loc } = locAt(ctx, nodeStart(node));
  return loc;
}

/** Offset of the first character of a scalar's value (after an opening quote). */
function scalarValueStart(ctx: Ctx, node: YamlNode): number {
  const start = nodeStart(node);
  const ch = ctx.text[start];
  return ch === '"' || ch === "'" ? start + 1 : start;
}

function expectMap(ctx: Ctx, node: unknown, what: string): YAMLMap {
  if (!isMap(node)) fail(ctx, nodeStart(node), "HOST_BAD_TYPE", `${what} must be a mapping`);
  return node;
}

function expectSeq(ctx: Ctx, node: unknown, what: string): readonly unknown[] {
  if (!isSeq(node)) fail(ctx, nodeStart(node), "HOST_BAD_TYPE", `${what} must be a list`);
  return node.items;
}

function scalarString(ctx: Ctx, node: unknown, what: string): string {
  if (!isScalar(node) || node.value === null || typeof node.value === "object")
    fail(ctx, nodeStart(node), "HOST_BAD_TYPE", `${what} must be a scalar`);
  return String(node.value);
}

function scalarInt(ctx: Ctx, node: unknown, what: string, min: number, max: number): number {
  const text = scalarString(ctx, node, what);
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max)
    fail(ctx, nodeStart(node), "HOST_BAD_NUMBER", `${what} must be an integer ${min}..${max}, got "${text}"`);
  return Number(text);
}

/** Entries of a mapping with their key nodes, rejecting keys outside `allowed`. */
function entries(
  ctx: Ctx,
  map: YAMLMap,
  allowed: readonly string[],
  what: string,
): Map<string, { key: unknown; value: unknown }> {
  const out = new Map<string, { key: unknown; value: unknown }>();
  for (const pair of map.items) {
    const name = scalarString(ctx, pair.key, `key in ${what}`);
    if (!allowed.includes(name))
      fail(
        ctx,
        nodeStart(pair.key),
        "HOST_UNKNOWN_KEY",
        `unknown key "${name}" in ${what} (expected one of: ${allowed.join(", ")})`,
      );
    if (out.has(name))
      fail(ctx, nodeStart(pair.key), "HOST_DUPLICATE_KEY", `duplicate key "${name}" in ${what}`);
    out.set(name, { key: pair.key, value: pair.value });
  }
  return out;
}

function required(
  ctx: Ctx,
  fields: Map<string, { key: unknown; value: unknown }>,
  name: string,
  owner: unknown,
  what: string,
): unknown {
  const f = fields.get(name);
  if (!f) fail(ctx, nodeStart(owner), "HOST_MISSING_KEY", `${what} needs "${name}"`);
  return f.value;
}

const IFNAME_RE = /^[A-Za-z0-9_.@:-]{1,15}$/;

function parseInterface(ctx: Ctx, node: unknown, index: number): HostInterface {
  const what = `interfaces[${index}]`;
  const map = expectMap(ctx, node, what);
  const f = entries(ctx, map, ["name", "mac", "addresses"], what);
  const nameNode = required(ctx, f, "name", map, what);
  const name = scalarString(ctx, nameNode, `${what}.name`);
  if (!IFNAME_RE.test(name))
    fail(ctx, nodeStart(nameNode), "HOST_BAD_IFNAME", `bad interface name "${name}" (1..15 characters)`);
  const macNode = f.get("mac")?.value;
  let mac = "00:00:00:00:00:00";
  if (macNode !== undefined) {
    const macText = scalarString(ctx, macNode, `${what}.mac`);
    const parsed = parseMac(macText);
    if (parsed === undefined)
      fail(ctx, scalarValueStart(ctx, macNode as YamlNode), "HOST_BAD_MAC", `bad MAC address "${macText}"`);
    mac = parsed;
  } else if (name !== "lo") {
    fail(ctx, nodeStart(map), "HOST_MISSING_KEY", `${what} needs "mac"`);
  }
  const addresses: Ipv4Prefix[] = [];
  const addrNode = f.get("addresses")?.value;
  if (addrNode !== undefined) {
    for (const item of expectSeq(ctx, addrNode, `${what}.addresses`)) {
      const text = scalarString(ctx, item, `${what}.addresses entry`);
      const prefix = text.includes("/") ? parseIpv4Prefix(text) : undefined;
      if (prefix === undefined)
        fail(
          ctx,
          scalarValueStart(ctx, item as YamlNode),
          "HOST_BAD_CIDR",
          `bad interface address "${text}" (want a.b.c.d/len)`,
        );
      addresses.push(prefix);
    }
  }
  return { name, mac, addresses, loc: where(ctx, map) };
}

/** A whitespace-separated token with its offset in the line. */
interface Token {
  readonly text: string;
  readonly at: number;
}

function tokenize(line: string): Token[] {
  const out: Token[] = [];
  const re = /\S+/g;
  for (let m = re.exec(line); m; m = re.exec(line)) out.push({ text: m[0], at: m.index });
  return out;
}

const ROUTE_TYPES: readonly RouteType[] = ["unicast", "local", "blackhole", "unreachable", "prohibit"];
const SCOPES: Record<string, RouteScope> = {
  global: "universe",
  universe: "universe",
  link: "link",
  host: "host",
};

/** Parses a table name or number as iproute2's rtnl_rttable_a2n does for the built-in names. */
export function parseTableId(text: string): number | undefined {
  if (text === "main") return RT_TABLE_MAIN;
  if (text === "local") return RT_TABLE_LOCAL;
  if (text === "default") return RT_TABLE_DEFAULT;
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 0xffffffff ? n : undefined;
}

function parsePrefixToken(text: string): Ipv4Prefix | undefined {
  if (text === "default" || text === "all") return { addr: 0, len: 0 };
  return parseIpv4Prefix(text);
}

interface LineSource {
  readonly line: string;
  /** Reports a problem at a token (or the start of the line). */
  err(code: string, message: string, tok?: Token): never;
  readonly loc: SourceLocation;
}

/**
 * Parses one `ip route` argument list: `[TYPE] PREFIX [via A] [dev IF] [src A] [table T] [metric N]
 * [proto P] [scope S]`. `default` is 0.0.0.0/0. The prefix must have no host bits set (the kernel rejects
 * that with "Invalid prefix for given prefix length").
 */
export function parseRouteLine(line: string, src?: LineSource): Route {
  const err: (code: string, message: string, tok?: Token) => never =
    src?.err ??
    ((code: string, message: string): never => {
      throw new InputError({ code, message: `${message}: "${line}"` });
    });
  const toks = tokenize(line);
  let i = 0;
  let type: RouteType = "unicast";
  if (toks[i] && (ROUTE_TYPES as readonly string[]).includes(toks[i].text))
    type = toks[i++].text as RouteType;
  const prefixTok = toks[i++];
  if (!prefixTok) err("HOST_BAD_ROUTE", 'route needs a destination prefix or "default"');
  const prefix = parsePrefixToken(prefixTok.text);
  if (!prefix || prefixTok.text === "all")
    err("HOST_BAD_ROUTE", `bad route destination "${prefixTok.text}"`, prefixTok);
  if ((prefix.addr & ~prefixMask(prefix.len)) >>> 0 !== 0)
    err("HOST_BAD_ROUTE", `route destination "${prefixTok.text}" has host bits set`, prefixTok);
  let via: number | undefined;
  let dev: string | undefined;
  let srcAddr: number | undefined;
  let table = type === "local" ? RT_TABLE_LOCAL : RT_TABLE_MAIN;
  let metric: number | undefined;
  let proto: string | undefined;
  let scope: RouteScope | undefined;
  const seen = new Set<string>();
  while (i < toks.length) {
    const kw = toks[i++];
    const arg = toks[i++];
    const key = kw.text === "preference" || kw.text === "priority" ? "metric" : kw.text;
    if (!["via", "dev", "oif", "src", "table", "metric", "proto", "scope"].includes(key))
      err("HOST_BAD_ROUTE", `unknown route keyword "${kw.text}"`, kw);
    if (!arg) err("HOST_BAD_ROUTE", `"${kw.text}" needs an argument`, kw);
    if (seen.has(key)) err("HOST_BAD_ROUTE", `"${kw.text}" given twice`, kw);
    seen.add(key);
    switch (key) {
      case "via": {
        const a = parseIpv4(arg.text.startsWith("inet ") ? arg.text.slice(5) : arg.text);
        if (a === undefined) err("HOST_BAD_ROUTE", `bad gateway address "${arg.text}"`, arg);
        via = a;
        break;
      }
      case "dev":
      case "oif":
        if (!IFNAME_RE.test(arg.text)) err("HOST_BAD_ROUTE", `bad device name "${arg.text}"`, arg);
        dev = arg.text;
        break;
      case "src": {
        const a = parseIpv4(arg.text);
        if (a === undefined) err("HOST_BAD_ROUTE", `bad source address "${arg.text}"`, arg);
        srcAddr = a;
        break;
      }
      case "table": {
        const t = parseTableId(arg.text);
        if (t === undefined) err("HOST_BAD_ROUTE", `bad table "${arg.text}"`, arg);
        table = t;
        break;
      }
      case "metric":
        if (!/^\d+$/.test(arg.text)) err("HOST_BAD_ROUTE", `bad metric "${arg.text}"`, arg);
        metric = Number(arg.text);
        break;
      case "proto":
        proto = arg.text;
        break;
      case "scope": {
        const s = SCOPES[arg.text];
        if (!s) err("HOST_BAD_ROUTE", `bad scope "${arg.text}"`, arg);
        scope = s;
        break;
      }
    }
  }
  if (type === "unicast" && via === undefined && dev === undefined)
    err("HOST_BAD_ROUTE", 'unicast route needs "via" or "dev"', prefixTok);
  if (type === "local" && dev === undefined) err("HOST_BAD_ROUTE", 'local route needs "dev"', prefixTok);
  return {
    type,
    prefix,
    ...(via !== undefined ? { via } : {}),
    ...(dev !== undefined ? { dev } : {}),
    ...(srcAddr !== undefined ? { src: srcAddr } : {}),
    table,
    ...(metric !== undefined ? { metric } : {}),
    ...(scope !== undefined ? { scope } : {}),
    proto: proto ?? "static",
    text: line,
    ...(src ? { loc: src.loc } : {}),
  };
}

/**
 * Parses one `ip rule` argument list: `[priority N] [not] [from P|all] [to P|all] [fwmark V[/M]] [iif IF]
 * [oif IF] [tos T] (lookup|table) T`.
 */
export function parseRuleLine(line: string, src?: LineSource): IpRule {
  const err: (code: string, message: string, tok?: Token) => never =
    src?.err ??
    ((code: string, message: string): never => {
      throw new InputError({ code, message: `${message}: "${line}"` });
    });
  const toks = tokenize(line);
  let priority: number | undefined;
  let not = false;
  let from: Ipv4Prefix | undefined;
  let to: Ipv4Prefix | undefined;
  let fwmark: { value: number; mask: number } | undefined;
  let iif: string | undefined;
  let oif: string | undefined;
  let tos: number | undefined;
  let table: number | undefined;
  const num = (t: Token): number => {
    const v = /^0x[0-9a-f]+$/i.test(t.text) || /^\d+$/.test(t.text) ? Number(t.text) : NaN;
    if (!Number.isFinite(v) || v > 0xffffffff) err("HOST_BAD_RULE", `bad number "${t.text}"`, t);
    return v;
  };
  let i = 0;
  while (i < toks.length) {
    const kw = toks[i++];
    if (kw.text === "not") {
      not = true;
      continue;
    }
    const arg = toks[i++];
    if (!arg) err("HOST_BAD_RULE", `"${kw.text}" needs an argument`, kw);
    switch (kw.text) {
      case "priority":
      case "pref":
      case "preference":
        priority = num(arg);
        break;
      case "from":
      case "to": {
        const p = parsePrefixToken(arg.text);
        if (!p) err("HOST_BAD_RULE", `bad prefix "${arg.text}"`, arg);
        if (kw.text === "from") from = p;
        else to = p;
        break;
      }
      case "fwmark": {
        const [v, m] = arg.text.split("/");
        const value = num({ text: v, at: arg.at });
        const mask = m === undefined ? 0xffffffff : num({ text: m, at: arg.at + v.length + 1 });
        fwmark = { value, mask };
        break;
      }
      case "iif":
      case "dev":
        iif = arg.text;
        break;
      case "oif":
        oif = arg.text;
        break;
      case "tos":
      case "dsfield":
        tos = num(arg);
        break;
      case "lookup":
      case "table": {
        const t = parseTableId(arg.text);
        if (t === undefined) err("HOST_BAD_RULE", `bad table "${arg.text}"`, arg);
        table = t;
        break;
      }
      default:
        err("HOST_BAD_RULE", `unknown rule keyword "${kw.text}"`, kw);
    }
  }
  if (table === undefined) err("HOST_BAD_RULE", 'rule needs "lookup TABLE"');
  return {
    ...(priority !== undefined ? { priority } : {}),
    not,
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to } : {}),
    ...(fwmark !== undefined ? { fwmark } : {}),
    ...(iif !== undefined ? { iif } : {}),
    ...(oif !== undefined ? { oif } : {}),
    ...(tos !== undefined ? { tos } : {}),
    table,
    text: line,
    ...(src ? { loc: src.loc } : {}),
  };
}

function lineSource(ctx: Ctx, node: unknown, what: string): LineSource {
  const line = scalarString(ctx, node, what);
  const base = scalarValueStart(ctx, node as YamlNode);
  return {
    line,
    loc: where(ctx, node),
    err: (code, message, tok) => fail(ctx, base + (tok?.at ?? 0), code, message),
  };
}

function parseSocket(ctx: Ctx, node: unknown, index: number): ListeningSocket {
  const what = `sockets[${index}]`;
  const map = expectMap(ctx, node, what);
  const f = entries(ctx, map, ["address", "port", "protocol", "transparent"], what);
  const addrNode = f.get("address")?.value;
  let address = 0;
  if (addrNode !== undefined) {
    const text = scalarString(ctx, addrNode, `${what}.address`);
    const a = parseIpv4(text);
    if (a === undefined) fail(ctx, nodeStart(addrNode), "HOST_BAD_ADDRESS", `bad socket address "${text}"`);
    address = a;
  }
  const port = scalarInt(ctx, required(ctx, f, "port", map, what), `${what}.port`, 0, 65535);
  const protoNode = required(ctx, f, "protocol", map, what);
  const protocol = scalarString(ctx, protoNode, `${what}.protocol`);
  if (protocol !== "tcp" && protocol !== "udp")
    fail(
      ctx,
      nodeStart(protoNode),
      "HOST_BAD_SOCKET",
      `socket protocol must be tcp or udp, got "${protocol}"`,
    );
  let transparent = false;
  const tNode = f.get("transparent")?.value;
  if (tNode !== undefined) {
    if (!isScalar(tNode) || typeof tNode.value !== "boolean")
      fail(ctx, nodeStart(tNode), "HOST_BAD_TYPE", `${what}.transparent must be true or false`);
    transparent = tNode.value;
  }
  return { address, port, protocol, transparent, loc: where(ctx, map) };
}

const SYSCTL_RE = /^[a-z0-9_]+(\.[A-Za-z0-9_\-]+)+$/;

/** Parses a host file. Throws InputError (code HOST_*) with file, line and column on bad input. */
export function parseHostFile(text: string, file?: string): Host {
  const lc = new LineCounter();
  const ctx: Ctx = { text, file, lc };
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    fail(ctx, e.pos[0], "HOST_YAML", e.message.split("\n")[0]);
  }
  const root = expectMap(ctx, doc.contents, "host file");
  const f = entries(
    ctx,
    root,
    ["hostname", "interfaces", "routes", "rules", "sysctl", "sockets"],
    "host file",
  );
  const hostnameNode = f.get("hostname")?.value;
  const hostname = hostnameNode === undefined ? "localhost" : scalarString(ctx, hostnameNode, "hostname");

  const interfaces: HostInterface[] = [];
  const ifNode = required(ctx, f, "interfaces", root, "host file");
  expectSeq(ctx, ifNode, "interfaces").forEach((item, idx) => {
    const iface = parseInterface(ctx, item, idx);
    if (interfaces.some((o) => o.name === iface.name))
      fail(ctx, nodeStart(item), "HOST_DUPLICATE_IFACE", `interface "${iface.name}" listed twice`);
    interfaces.push(iface);
  });
  const known = new Set(["lo", ...interfaces.map((i) => i.name)]);

  const routes: Route[] = [];
  const routesNode = f.get("routes")?.value;
  if (routesNode !== undefined)
    expectSeq(ctx, routesNode, "routes").forEach((item, idx) => {
      const src = lineSource(ctx, item, `routes[${idx}]`);
      const route = parseRouteLine(src.line, src);
      if (route.dev !== undefined && !known.has(route.dev)) {
        const tok = tokenize(src.line).find(
          (t, j, all) => all[j - 1]?.text === "dev" && t.text === route.dev,
        );
        src.err("HOST_UNKNOWN_IFACE", `route names unknown device "${route.dev}"`, tok);
      }
      routes.push(route);
    });

  const rules: IpRule[] = [];
  const rulesNode = f.get("rules")?.value;
  if (rulesNode !== undefined)
    expectSeq(ctx, rulesNode, "rules").forEach((item, idx) => {
      const src = lineSource(ctx, item, `rules[${idx}]`);
      rules.push(parseRuleLine(src.line, src));
    });

  const sysctl: Record<string, number | string> = {};
  const sysNode = f.get("sysctl")?.value;
  if (sysNode !== undefined) {
    const map = expectMap(ctx, sysNode, "sysctl");
    for (const pair of map.items) {
      const key = scalarString(ctx, pair.key, "sysctl name");
      if (!SYSCTL_RE.test(key))
        fail(ctx, nodeStart(pair.key), "HOST_BAD_SYSCTL", `bad sysctl name "${key}" (want a.b.c form)`);
      if (key in sysctl) fail(ctx, nodeStart(pair.key), "HOST_DUPLICATE_KEY", `sysctl "${key}" given twice`);
      const v = scalarString(ctx, pair.value, `sysctl ${key}`);
      sysctl[key] = /^-?\d+$/.test(v) ? Number(v) : v;
    }
  }

  const sockets: ListeningSocket[] = [];
  const sockNode = f.get("sockets")?.value;
  if (sockNode !== undefined)
    expectSeq(ctx, sockNode, "sockets").forEach((item, idx) => sockets.push(parseSocket(ctx, item, idx)));

  return { hostname, interfaces, routes, rules, sysctl, sockets };
}

/**
 * The routes the kernel adds by itself for the interface addresses (fib_add_ifaddr): for every address a
 * `local ADDR dev IF table local scope host src ADDR`, and for every primary address (the first one in its
 * subnet on that interface) shorter than /32 a `NET/LEN dev IF proto kernel scope link src ADDR` in table main.
 * Broadcast routes are left out.
 */
export function connectedRoutes(host: Host): Route[] {
  const out: Route[] = [];
  for (const iface of host.interfaces) {
    const seen: Ipv4Prefix[] = [];
    const addrs =
      iface.name === "lo" && iface.addresses.length === 0 ? [{ addr: 0x7f000001, len: 8 }] : iface.addresses;
    for (const a of addrs) {
      out.push({
        type: "local",
        prefix: { addr: a.addr, len: 32 },
        dev: iface.name,
        src: a.addr,
        table: RT_TABLE_LOCAL,
        scope: "host",
        proto: "kernel",
        text: `local ${fmt(a.addr)} dev ${iface.name} table local proto kernel scope host src ${fmt(a.addr)}`,
      });
      const net = (a.addr & prefixMask(a.len)) >>> 0;
      const secondary = seen.some((s) => s.len === a.len && (s.addr & prefixMask(s.len)) >>> 0 === net);
      seen.push(a);
      if (a.len === 32 || secondary) continue;
      out.push({
        type: iface.name === "lo" ? "local" : "unicast",
        prefix: { addr: net, len: a.len },
        dev: iface.name,
        src: a.addr,
        table: iface.name === "lo" ? RT_TABLE_LOCAL : RT_TABLE_MAIN,
        scope: iface.name === "lo" ? "host" : "link",
        proto: "kernel",
        text: `${fmt(net)}/${a.len} dev ${iface.name} proto kernel scope link src ${fmt(a.addr)}`,
      });
    }
  }
  return out;
}
