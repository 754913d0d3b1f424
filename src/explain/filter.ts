/**
 * A small subset of pcap-filter(7) for `ctsim explain --match`: which packets to explain.
 *
 * Grammar (libpcap gencode.c / grammar.y semantics for these primitives):
 *     expr    := or
 *     or      := and (("or" | "||") and)*
 *     and     := not (("and" | "&&") not)*
 *     not     := ("not" | "!") not | "(" expr ")" | primitive
 *     primitive := "tcp" | "udp" | "icmp" | "ip"
 *                | ["src" | "dst"] "host" ADDR  |  ["src" | "dst"] ADDR
 *                | ["src" | "dst"] ["tcp" | "udp"] "port" NUMBER
 *     (pcap-filter's "src or dst" and "src and dst" qualifiers are accepted too)
 * "port" matches TCP and UDP ports, as pcap's does; "host" matches either address. Anything else (net, portrange,
 * len, byte offsets, ether, vlan, IPv6) is refused with the column it starts at.
 *
 * Leaves out on purpose: everything outside the grammar above.
 */
import { InputError } from "../errors";
import type { Packet } from "../wire/packet";
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from "../wire/packet";
import { parseIpv4 } from "../wire/addr";

export type PacketFilter =
  | { readonly op: "and" | "or"; readonly left: PacketFilter; readonly right: PacketFilter }
  | { readonly op: "not"; readonly arg: PacketFilter }
  | { readonly op: "proto"; readonly proto: number | "ip" }
  | { readonly op: "host"; readonly dir: Dir; readonly addr: number }
  | { readonly op: "port"; readonly dir: Dir; readonly port: number; readonly proto?: number };

type Dir = "src" | "dst" | "either" | "both";

interface Tok {
  readonly text: string;
  readonly col: number;
}

const SUPPORTED =
  "tcp, udp, icmp, ip, [src|dst] host ADDR, [src|dst] [tcp|udp] port N, and/or/not (&& || !), parentheses";

function tokenize(text: string, fail: (col: number, msg: string) => never): Tok[] {
  const out: Tok[] = [];
  const re = /\s*(\(|\)|&&|\|\||!|[^\s()!&|]+|[&|])/gy;
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = re.exec(text)) !== null) {
    if (m[0].length === 0) break;
    const col = m.index + m[0].length - m[1].length + 1;
    if (m[1] === "&" || m[1] === "|") fail(col, `"${m[1]}" is not an operator here (use && or ||)`);
    out.push({ text: m[1], col });
    last = re.lastIndex;
  }
  if (text.slice(last).trim() !== "") fail(last + 1, "unexpected character");
  return out;
}

/** Parses a filter expression; throws InputError (file "--match", column) on anything outside the subset. */
export function parseFilter(text: string, source = "--match"): PacketFilter {
  const fail = (col: number, msg: string): never => {
    throw new InputError({
      code: "FILTER_SYNTAX",
      file: source,
      line: 1,
      column: col,
      message: `${msg}; supported: ${SUPPORTED}`,
      excerpt: text,
    });
  };
  const toks = tokenize(text, fail);
  let i = 0;
  const peek = () => toks[i]?.text.toLowerCase();
  const end = () => text.length + 1;
  const col = () => toks[i]?.col ?? end();

  const number = (what: string): number => {
    const t = toks[i];
    if (!t) return fail(end(), `expected ${what}`);
    if (!/^\d+$/.test(t.text) || Number(t.text) > 65535)
      return fail(t.col, `expected ${what}, got "${t.text}"`);
    i++;
    return Number(t.text);
  };
  const address = (): number => {
    const t = toks[i];
    if (!t) return fail(end(), "expected an IPv4 address");
    const a = parseIpv4(t.text);
    if (a === undefined)
      return fail(t.col, `expected an IPv4 address, got "${t.text}" (host names are not resolved)`);
    i++;
    return a;
  };

  const primitive = (): PacketFilter => {
    let dir: Dir = "either";
    const w = peek();
    if (w === undefined) return fail(end(), "expression ends too early");
    if (w === "src" || w === "dst") {
      dir = w;
      i++;
      if (
        (peek() === "or" || peek() === "and") &&
        ["src", "dst"].includes(toks[i + 1]?.text.toLowerCase() ?? "")
      ) {
        dir = peek() === "or" ? "either" : "both";
        i += 2;
      }
    }
    const k = peek();
    if (k === "tcp" || k === "udp") {
      const proto = k === "tcp" ? IPPROTO_TCP : IPPROTO_UDP;
      i++;
      if (peek() === "port") {
        i++;
        return { op: "port", dir, port: number("a port number"), proto };
      }
      if (dir !== "either") return fail(toks[i - 1].col, `"${dir}" needs host or port after it`);
      return { op: "proto", proto };
    }
    if (k === "icmp" || k === "ip") {
      if (dir !== "either") return fail(col(), `"${dir}" needs host or port after it`);
      i++;
      return { op: "proto", proto: k === "icmp" ? IPPROTO_ICMP : "ip" };
    }
    if (k === "host") {
      i++;
      return { op: "host", dir, addr: address() };
    }
    if (k === "port") {
      i++;
      return { op: "port", dir, port: number("a port number") };
    }
    if (k !== undefined && parseIpv4(toks[i].text) !== undefined) return { op: "host", dir, addr: address() };
    return fail(col(), `"${toks[i].text}" is not supported`);
  };

  const unary = (): PacketFilter => {
    const w = peek();
    if (w === "not" || w === "!") {
      i++;
      return { op: "not", arg: unary() };
    }
    if (w === "(") {
      const open = col();
      i++;
      const e = orExpr();
      if (peek() !== ")")
        return fail(toks[i] ? col() : open, toks[i] ? `expected ")"` : `"(" is never closed`);
      i++;
      return e;
    }
    return primitive();
  };
  const andExpr = (): PacketFilter => {
    let left = unary();
    while (peek() === "and" || peek() === "&&") {
      i++;
      left = { op: "and", left, right: unary() };
    }
    return left;
  };
  const orExpr = (): PacketFilter => {
    let left = andExpr();
    while (peek() === "or" || peek() === "||") {
      i++;
      left = { op: "or", left, right: andExpr() };
    }
    return left;
  };

  if (toks.length === 0) return fail(1, "empty expression");
  const e = orExpr();
  if (i < toks.length) return fail(col(), `unexpected "${toks[i].text}"`);
  return e;
}

function dirMatch(dir: Dir, a: boolean, b: boolean): boolean {
  return dir === "src" ? a : dir === "dst" ? b : dir === "both" ? a && b : a || b;
}

/** Does the packet match the filter? */
export function matchFilter(f: PacketFilter, p: Packet): boolean {
  switch (f.op) {
    case "and":
      return matchFilter(f.left, p) && matchFilter(f.right, p);
    case "or":
      return matchFilter(f.left, p) || matchFilter(f.right, p);
    case "not":
      return !matchFilter(f.arg, p);
    case "proto":
      return f.proto === "ip" || p.ip.protocol === f.proto;
    case "host":
      return dirMatch(f.dir, p.ip.src === f.addr, p.ip.dst === f.addr);
    case "port": {
      const l4 = p.l4;
      if (l4.kind !== "tcp" && l4.kind !== "udp") return false;
      if (f.proto !== undefined && p.ip.protocol !== f.proto) return false;
      return dirMatch(f.dir, l4.srcPort === f.port, l4.dstPort === f.port);
    }
  }
}
