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

/** strtoul(..., 0) accepting only what xtables_strtoui accepts: decimal, 0x hex, 0 octal; no sign. */
export function parseUint(text: string, max = 0xffffffff): number | undefined {
  let value: number;
  if (/^0x[0-9a-f]+$/i.test(text)) value = parseInt(text.slice(2), 16);
  else if (/^0[0-7]*$/.test(text)) value = parseInt(text, 8);
  else if (/^[1-9][0-9]*$/.test(text)) value = Number(text);
  else return undefined;
  if (!Number.isSafeInteger(value) || value > max) return undefined;
  return value;
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
  if (/^\d{1,2}$/.test(m) && Number(m) <= 32) {
    const len = Number(m);
    mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  } else {
    mask = parseIpv4(m);
    dottedMask = true;
  }
  if (mask === undefined) return undefined;
  return { addr: (addr & mask) >>> 0, mask, dottedMask };
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
