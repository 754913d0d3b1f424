/**
 * Parser for `ipset save` output (ipset 7.x, lib/session.c save format; `ipset restore` reads the same):
 * `create NAME TYPE [options]` and `add NAME ELEMENT [timeout N] [nomatch] [comment "..."] [packets N bytes N]
 * [skbmark ...]` lines, `#` comments and blank lines. Elements per type as ipset's parse functions accept them
 * (lib/parse.c `ipset_parse_ip`, `ipset_parse_net`, `ipset_parse_proto_port`, `ipset_parse_tcp_udp_port`):
 * hash:ip takes an address, a range a-b or a/cidr (expanded, as ipset does); hash:net a/cidr (a bare address
 * is /32); *,port `PROTO:PORT` or `PORT` (tcp), `icmp:TYPE/CODE` or an ICMP name; bitmap:port a port or a range.
 *
 * Errors are Diagnostics with file, line and column (../errors); the parser collects them and keeps going.
 * Leaves out on purpose: IPv6 (family inet6 sets are refused), `-exist`/`flush`/`swap` commands, hash:mac and
 * the other types src/ipset/ipset.ts leaves out.
 */

import type { Diagnostic } from "../errors";
import { parseIpv4, parseIpv4Prefix, prefixMask } from "../wire/addr";
import { IPSET_TYPES, type IpSet, type IpSetElement, type IpSetType } from "./ipset";
import { parsePort, parseUint } from "../netfilter/xt/util";
import { parseIcmpType } from "../netfilter/xt/xt_icmp";

export interface IpsetParseResult {
  readonly sets: Map<string, IpSet>;
  readonly diagnostics: Diagnostic[];
}

interface Word {
  readonly text: string;
  readonly column: number;
}

/** Splits on blanks, keeping "double quoted" words (with \" escapes) together. */
function tokenize(line: string): Word[] | string {
  const out: Word[] = [];
  let i = 0;
  while (i < line.length) {
    if (line[i] === " " || line[i] === "\t") {
      i++;
      continue;
    }
    const start = i;
    if (line[i] === '"') {
      let s = "";
      i++;
      while (i < line.length && line[i] !== '"') {
        if (line[i] === "\\" && i + 1 < line.length) i++;
        s += line[i++];
      }
      if (i >= line.length) return "unterminated quoted string";
      i++;
      out.push({ text: s, column: start + 1 });
    } else {
      while (i < line.length && line[i] !== " " && line[i] !== "\t") i++;
      out.push({ text: line.slice(start, i), column: start + 1 });
    }
  }
  return out;
}

const PROTO_NUMBERS: ReadonlyMap<string, number> = new Map([
  ["tcp", 6],
  ["udp", 17],
  ["icmp", 1],
  ["sctp", 132],
  ["udplite", 136],
]);

/** Options of `add` lines that take a value. */
const ADD_VALUE_OPTS = new Set(["timeout", "comment", "packets", "bytes", "skbmark", "skbprio", "skbqueue"]);

/** Create options that take no value. */
const CREATE_FLAGS = new Set(["counters", "comment", "skbinfo", "forceadd"]);

export function parseIpsetSave(text: string, file = "<ipset>", loadedAt = 0): IpsetParseResult {
  const sets = new Map<string, { set: Omit<IpSet, "elements">; elements: IpSetElement[] }>();
  const diagnostics: Diagnostic[] = [];
  const lines = text.split("\n");
  lines.forEach((raw, idx) => {
    const line = raw.replace(/\r$/, "");
    const lineNo = idx + 1;
    const fail = (message: string, column = 1, code = "IPSET_SYNTAX"): void => {
      diagnostics.push({ file, line: lineNo, column, code, message, excerpt: line });
    };
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const words = tokenize(line);
    if (typeof words === "string") return fail(words);
    const [cmd, name, third, ...rest] = words;
    if (cmd.text === "create" || cmd.text === "-N" || cmd.text === "n") {
      if (!name || !third) return fail("create needs a set name and a type", cmd.column);
      if (name.text.length >= 32)
        return fail(`set name "${name.text}" is too long (at most 31)`, name.column);
      if (sets.has(name.text))
        return fail(`set "${name.text}" already exists`, name.column, "IPSET_DUPLICATE");
      if (!(IPSET_TYPES as readonly string[]).includes(third.text)) {
        return fail(
          `unsupported set type "${third.text}" (supported: ${IPSET_TYPES.join(", ")})`,
          third.column,
          "IPSET_TYPE",
        );
      }
      const options = new Map<string, string>();
      for (let i = 0; i < rest.length; i++) {
        const w = rest[i];
        if (CREATE_FLAGS.has(w.text)) {
          options.set(w.text, "");
          continue;
        }
        const v = rest[i + 1];
        if (!v) return fail(`option "${w.text}" needs a value`, w.column);
        options.set(w.text, v.text);
        i++;
      }
      if (options.get("family") === "inet6") return fail("IPv6 sets are not supported", third.column);
      sets.set(name.text, {
        set: { name: name.text, type: third.text as IpSetType, options, loadedAt },
        elements: [],
      });
      return;
    }
    if (cmd.text === "add" || cmd.text === "-A" || cmd.text === "a") {
      if (!name || !third) return fail("add needs a set name and an element", cmd.column);
      const entry = sets.get(name.text);
      if (!entry) return fail(`set "${name.text}" does not exist`, name.column, "IPSET_UNKNOWN_SET");
      const extra: { nomatch?: boolean; timeout?: number; comment?: string } = {};
      for (let i = 0; i < rest.length; i++) {
        const w = rest[i];
        if (w.text === "nomatch") {
          extra.nomatch = true;
          continue;
        }
        if (!ADD_VALUE_OPTS.has(w.text)) return fail(`unknown element option "${w.text}"`, w.column);
        const v = rest[i + 1];
        if (!v) return fail(`option "${w.text}" needs a value`, w.column);
        i++;
        if (w.text === "timeout") {
          const t = parseUint(v.text);
          if (t === undefined) return fail(`bad timeout "${v.text}"`, v.column);
          extra.timeout = t;
        } else if (w.text === "comment") extra.comment = v.text;
      }
      if (extra.nomatch && !entry.set.type.startsWith("hash:net")) {
        return fail(`nomatch is only valid in hash:net sets`, third.column);
      }
      const els = parseElement(entry.set.type, third.text, entry.set.options);
      if (typeof els === "string") return fail(els, third.column, "IPSET_ELEMENT");
      for (const e of els) entry.elements.push({ ...e, ...extra });
      return;
    }
    fail(`unknown command "${cmd.text}" (create or add)`, cmd.column);
  });
  const out = new Map<string, IpSet>();
  for (const [name, { set, elements }] of sets) out.set(name, { ...set, elements });
  for (const s of out.values()) {
    if (s.type !== "list:set") continue;
    for (const e of s.elements) {
      const m = out.get(e.member!);
      if (!m) {
        diagnostics.push({
          file,
          code: "IPSET_UNKNOWN_SET",
          message: `list:set ${s.name}: no set "${e.member}"`,
        });
      } else if (m.type === "list:set") {
        diagnostics.push({
          file,
          code: "IPSET_ELEMENT",
          message: `list:set ${s.name} cannot hold list:set ${m.name}`,
        });
      }
    }
  }
  return { sets: out, diagnostics };
}

const MAX_EXPAND = 65536;

function parseAddrElement(text: string): IpSetElement[] | string {
  const dash = text.indexOf("-");
  if (dash > 0) {
    const a = parseIpv4(text.slice(0, dash));
    const b = parseIpv4(text.slice(dash + 1));
    if (a === undefined || b === undefined || a > b) return `bad address range "${text}"`;
    if (b - a >= MAX_EXPAND) return `range "${text}" is too large`;
    const out: IpSetElement[] = [];
    for (let x = a; x <= b; x++) out.push({ addr: x >>> 0, cidr: 32 });
    return out;
  }
  const p = parseIpv4Prefix(text);
  if (!p) return `bad address "${text}"`;
  if (p.len === 32) return [{ addr: p.addr, cidr: 32 }];
  const base = (p.addr & prefixMask(p.len)) >>> 0;
  const n = 2 ** (32 - p.len);
  if (n > MAX_EXPAND) return `network "${text}" is too large to expand in a hash:ip set`;
  const out: IpSetElement[] = [];
  for (let i = 0; i < n; i++) out.push({ addr: (base + i) >>> 0, cidr: 32 });
  return out;
}

function parseNetElement(text: string): IpSetElement | string {
  const p = parseIpv4Prefix(text);
  if (!p || p.len === 0) return `bad network "${text}" (a.b.c.d/1..32)`;
  return { addr: (p.addr & prefixMask(p.len)) >>> 0, cidr: p.len };
}

/** `[proto:]port`, `icmp:type/code`, `icmp:name`. */
function parseProtoPort(text: string): { port: number; proto: number } | string {
  const colon = text.indexOf(":");
  if (colon < 0) {
    const port = parsePort(text);
    return port === undefined ? `bad port "${text}"` : { port, proto: 6 };
  }
  const protoText = text.slice(0, colon).toLowerCase();
  const portText = text.slice(colon + 1);
  if (protoText === "icmp") {
    const slash = /^(\d+)\/(\d+)$/.exec(portText);
    if (slash && Number(slash[1]) <= 255 && Number(slash[2]) <= 255) {
      return { port: (Number(slash[1]) << 8) | Number(slash[2]), proto: 1 };
    }
    // A name (ipset's icmp_types table): its type with the lowest code ("echo-request" is 8/0).
    const t = /^\d/.test(portText) ? undefined : parseIcmpType(portText);
    if (!t || t.type === 0xff) return `bad ICMP type/code "${portText}"`;
    return { port: (t.type << 8) | t.code[0], proto: 1 };
  }
  const proto = PROTO_NUMBERS.get(protoText) ?? (/^\d+$/.test(protoText) ? Number(protoText) : undefined);
  if (proto === undefined || proto > 255) return `bad protocol "${protoText}"`;
  const port = parsePort(portText);
  if (port === undefined) return `bad port "${portText}"`;
  return { port, proto };
}

function parsePortRange(text: string): [number, number] | undefined {
  const dash = text.indexOf("-");
  const a = parsePort(dash < 0 ? text : text.slice(0, dash));
  const b = dash < 0 ? a : parsePort(text.slice(dash + 1));
  if (a === undefined || b === undefined || a > b) return undefined;
  return [a, b];
}

function parseElement(
  type: IpSetType,
  text: string,
  options: ReadonlyMap<string, string>,
): IpSetElement[] | string {
  switch (type) {
    case "hash:ip":
      return parseAddrElement(text);
    case "bitmap:ip": {
      const els = parseAddrElement(text);
      const range = options.get("range");
      if (typeof els === "string" || !range) return els;
      const r = range.includes("-")
        ? range.split("-").map((s) => parseIpv4(s))
        : (() => {
            const p = parseIpv4Prefix(range);
            if (!p) return [undefined, undefined];
            const lo = (p.addr & prefixMask(p.len)) >>> 0;
            return [lo, lo + 2 ** (32 - p.len) - 1];
          })();
      if (r[0] === undefined || r[1] === undefined) return `bad bitmap:ip range "${range}"`;
      if (els.some((e) => e.addr! < r[0]! || e.addr! > r[1]!))
        return `element "${text}" is outside the range`;
      return els;
    }
    case "hash:net": {
      const e = parseNetElement(text);
      return typeof e === "string" ? e : [e];
    }
    case "hash:ip,port":
    case "hash:net,port": {
      const comma = text.indexOf(",");
      if (comma < 0) return `element "${text}" needs ADDR,[PROTO:]PORT`;
      const pp = parseProtoPort(text.slice(comma + 1));
      if (typeof pp === "string") return pp;
      const addrs =
        type === "hash:ip,port"
          ? parseAddrElement(text.slice(0, comma))
          : parseNetElement(text.slice(0, comma));
      if (typeof addrs === "string") return addrs;
      return (Array.isArray(addrs) ? addrs : [addrs]).map((a) => ({ ...a, ...pp }));
    }
    case "bitmap:port": {
      const r = parsePortRange(text);
      if (!r) return `bad port or port range "${text}"`;
      const range = options.get("range");
      const lim = range ? parsePortRange(range) : undefined;
      if (range && !lim) return `bad bitmap:port range "${range}"`;
      if (lim && (r[0] < lim[0] || r[1] > lim[1])) return `port "${text}" is outside the range ${range}`;
      const out: IpSetElement[] = [];
      for (let p = r[0]; p <= r[1]; p++) out.push({ port: p });
      return out;
    }
    case "list:set":
      return [{ member: text }];
  }
}
