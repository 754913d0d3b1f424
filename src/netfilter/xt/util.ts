/**
 * Shared option parsing and printing for the xt_* descriptors, after libxtables (libxtables/xtables.c:
 * `xtables_strtoui`, `xtables_parse_port`, `xtables_save_string`, `xtables_ipmask_to_numeric`;
 * libxtables/xtoptions.c: `xtopt_parse_mark`, `xtopt_parse_mint`), iptables 1.8.x.
 *
 * Left out on purpose: name resolution through the host (getservbyname uses the small table below; hostnames
 * in addresses are refused), IPv6 addresses.
 */

import { formatIpv4, parseIpv4 } from "../../wire/addr";
import type { Diagnostic } from "../../errors";
import type { XtOption, XtParseContext } from "../registry";

/**
 * strtoul(..., 0) accepting only what xtables_strtoui accepts: decimal, 0x hex, 0 octal; no sign. The forms are
 * `/^0x[0-9a-f]+$/i`, `/^0[0-7]*$/` and `/^[1-9][0-9]*$/`, checked code unit by code unit (no regular
 * expression: the loader calls this for every port and mark of a rule set, mostly before V8 optimizes it).
 */
export function parseUint(text: string, max = 0xffffffff): number | undefined {
  const n = text.length;
  if (n === 0) return undefined;
  let value: number;
  if (text.charCodeAt(0) !== 0x30 /* 0 */) {
    if (!allDigits(text, 0, 0x39)) return undefined;
    value = Number(text);
  } else if (n > 2 && (text.charCodeAt(1) | 0x20) === 0x78 /* x or X */) {
    for (let i = 2; i < n; i++) {
      const c = text.charCodeAt(i);
      const lower = c | 0x20;
      if (!((c >= 0x30 && c <= 0x39) || (lower >= 0x61 && lower <= 0x66))) return undefined;
    }
    value = parseInt(text.slice(2), 16);
  } else {
    if (!allDigits(text, 1, 0x37)) return undefined;
    value = parseInt(text, 8);
  }
  if (!Number.isSafeInteger(value) || value > max) return undefined;
  return value;
}

/** Whether text[from...] are all digits from "0" up to the code unit `last` ("9", or "7" for octal). */
function allDigits(text: string, from: number, last: number): boolean {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > last) return false;
  }
  return true;
}

/** The few /etc/services names rule sets use (tcp/udp share numbers). */
export const SERVICES: ReadonlyMap<string, number> = new Map([
  ["echo", 7],
  ["ftp-data", 20],
  ["ftp", 21],
  ["ssh", 22],
  ["telnet", 23],
  ["smtp", 25],
  ["domain", 53],
  ["bootps", 67],
  ["bootpc", 68],
  ["tftp", 69],
  ["http", 80],
  ["www", 80],
  ["pop3", 110],
  ["sunrpc", 111],
  ["ntp", 123],
  ["netbios-ns", 137],
  ["netbios-dgm", 138],
  ["netbios-ssn", 139],
  ["imap", 143],
  ["imap2", 143],
  ["snmp", 161],
  ["ldap", 389],
  ["https", 443],
  ["microsoft-ds", 445],
  ["isakmp", 500],
  ["syslog", 514],
  ["submission", 587],
  ["ldaps", 636],
  ["imaps", 993],
  ["pop3s", 995],
  ["openvpn", 1194],
  ["mysql", 3306],
  ["ipsec-nat-t", 4500],
  ["postgresql", 5432],
]);

/** xtables_parse_port: a service name or a number 0..65535. */
export function parsePort(text: string): number | undefined {
  const svc = SERVICES.get(text.toLowerCase());
  if (svc !== undefined) return svc;
  return parseUint(text, 0xffff);
}

/** `a:b`, `a:`, `:b`, `:`, `a` (tcp/udp/conntrack/length style). Fails when min > max. */
export function parseColonRange(
  text: string,
  parseOne: (s: string) => number | undefined,
  max: number,
): readonly [number, number] | undefined {
  const colon = text.indexOf(":");
  if (colon < 0) {
    const v = parseOne(text);
    return v === undefined ? undefined : [v, v];
  }
  const a = text.slice(0, colon);
  const b = text.slice(colon + 1);
  const lo = a === "" ? 0 : parseOne(a);
  const hi = b === "" ? max : parseOne(b);
  if (lo === undefined || hi === undefined || lo > hi) return undefined;
  return [lo, hi];
}

export function formatRange(r: readonly [number, number], sep = ":"): string {
  return r[0] === r[1] ? String(r[0]) : `${r[0]}${sep}${r[1]}`;
}

export function hex(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
}

/** `value[/mask]` as xtopt_parse_mark: mask defaults to 0xffffffff. */
export function parseMarkMask(text: string): { value: number; mask: number } | undefined {
  const slash = text.indexOf("/");
  const value = parseUint(slash < 0 ? text : text.slice(0, slash));
  if (value === undefined) return undefined;
  if (slash < 0) return { value, mask: 0xffffffff };
  const mask = parseUint(text.slice(slash + 1));
  return mask === undefined ? undefined : { value, mask };
}

/** xtables_save_string: bare when only [A-Za-z0-9_-], else double-quoted with `"`, `\` and `'` escaped. */
export function saveString(value: string): string {
  if (value.length > 0 && /^[A-Za-z0-9_-]+$/.test(value)) return value;
  return `"${value.replace(/["\\']/g, (c) => `\\${c}`)}"`;
}

/** Dotted address; a /32 mask prints nothing (xtables_ipmask_to_numeric), else /len or a dotted mask. */
export function formatAddrMask(addr: number, mask: number): string {
  if (mask >>> 0 === 0xffffffff) return formatIpv4(addr);
  const len = maskToLen(mask);
  return `${formatIpv4(addr)}/${len === undefined ? formatIpv4(mask) : len}`;
}

/** Prefix length of a contiguous mask, undefined when the mask is not contiguous. */
export function maskToLen(mask: number): number | undefined {
  const m = mask >>> 0;
  for (let len = 0; len <= 32; len++) {
    if ((len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0) === m) return len;
  }
  return undefined;
}

/** `a.b.c.d[/len|/mask]` -> pre-masked address and mask. */
export function parseAddrMask(text: string): { addr: number; mask: number; dottedMask: boolean } | undefined {
  const slash = text.indexOf("/");
  const addr = parseIpv4(slash < 0 ? text : text.slice(0, slash));
  if (addr === undefined) return undefined;
  if (slash < 0) return { addr, mask: 0xffffffff, dottedMask: false };
  const m = text.slice(slash + 1);
  let mask: number | undefined;
  let dottedMask = false;
  const len = prefixLength(m);
  if (len !== undefined) mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  else {
    mask = parseIpv4(m);
    dottedMask = true;
  }
  if (mask === undefined) return undefined;
  return { addr: (addr & mask) >>> 0, mask, dottedMask };
}

/** A prefix length `/^\d{1,2}$/` up to 32, else undefined. */
function prefixLength(m: string): number | undefined {
  const n = m.length;
  if (n < 1 || n > 2) return undefined;
  const a = m.charCodeAt(0) - 0x30;
  const b = n === 2 ? m.charCodeAt(1) - 0x30 : 0;
  if (a < 0 || a > 9 || b < 0 || b > 9) return undefined;
  const len = n === 2 ? a * 10 + b : a;
  return len <= 32 ? len : undefined;
}

/** Options by canonical name; a second occurrence of a one-shot option is an error, as XTOPT_MAND/`flags` do. */
export function collect(
  opts: readonly XtOption[],
  ctx: XtParseContext,
  repeatable: readonly string[] = [],
): Map<string, XtOption> | Diagnostic {
  const map = new Map<string, XtOption>();
  for (let k = 0; k < opts.length; k++) {
    const o = opts[k];
    if (map.has(o.name) && !repeatable.includes(o.name)) {
      return ctx.fail(`option "--${o.name}" may only be given once`, o);
    }
    map.set(o.name, o);
  }
  return map;
}

/** Rejects `!` on an option that does not allow it. */
export function noInvert(o: XtOption, ctx: XtParseContext): Diagnostic | undefined {
  return o.invert ? ctx.fail(`option "--${o.name}" cannot be inverted`, o) : undefined;
}

/** Prefix "! " when inverted. */
export function bang(invert: boolean): string {
  return invert ? "! " : "";
}

/** Joins non-empty parts with single spaces. */
export function words(...parts: (string | undefined | false)[]): string {
  return parts.filter((p): p is string => typeof p === "string" && p.length > 0).join(" ");
}

/** Protocols whose matches and NAT port ranges carry ports. */
export const PORT_PROTOCOLS: ReadonlySet<number> = new Set([6, 17, 33, 132, 136]);
