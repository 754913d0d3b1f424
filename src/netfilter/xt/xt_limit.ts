/**
 * limit match: net/netfilter/xt_limit.c (token bucket, XT_LIMIT_SCALE 10000, `limit_mt_check` refuses a zero
 * rate or burst and rates that overflow), kernel 6.17; userspace extensions/libxt_limit.c (`parse_rate`,
 * `print_rate`, `limit_save`; default 3/hour burst 5), iptables 1.8.x.
 *
 * Left out on purpose: SMP (one bucket per rule, as the kernel shares it via `master`).
 *
 * Per packet: `limit_mt` with `user2credits` (HZ 1000, CREDITS_PER_JIFFY 32); per-rule bucket in\npar.ruleState keyed by the options object.
 */

import type { MatchDescriptor } from "../registry";
import { collect, parseUint } from "./util";
import type { Skb, XtActionParam } from "../skb";

export const XT_LIMIT_SCALE = 10000;
export const XT_LIMIT_AVG = (XT_LIMIT_SCALE * 3600) / 3;
export const XT_LIMIT_BURST = 5;

export interface LimitMatchOptions {
  /** Average period between packets in 1/XT_LIMIT_SCALE seconds (`struct xt_rateinfo.avg`). */
  readonly avg: number;
  readonly burst: number;
}

const UNITS: readonly (readonly [string, number])[] = [
  ["second", 1],
  ["minute", 60],
  ["hour", 3600],
  ["day", 86400],
];

export function parseRate(text: string): number | undefined {
  const slash = text.indexOf("/");
  let mult = 1;
  if (slash >= 0) {
    const unit = text.slice(slash + 1).toLowerCase();
    const found = UNITS.find(([name]) => unit.length > 0 && name.startsWith(unit));
    const alias = unit === "sec" ? 1 : unit === "min" ? 60 : undefined;
    if (!found && alias === undefined) return undefined;
    mult = found ? found[1] : alias!;
  }
  const r = parseUint(slash < 0 ? text : text.slice(0, slash));
  if (r === undefined || r === 0) return undefined;
  const avg = Math.floor((XT_LIMIT_SCALE * mult) / r);
  return avg === 0 ? undefined : avg;
}

/** print_rate of libxt_limit.c. */
export function formatRate(period: number): string {
  const rates: readonly (readonly [string, number])[] = [
    ["day", XT_LIMIT_SCALE * 86400],
    ["hour", XT_LIMIT_SCALE * 3600],
    ["min", XT_LIMIT_SCALE * 60],
    ["sec", XT_LIMIT_SCALE],
  ];
  let i = 1;
  for (; i < rates.length; i++) {
    const mult = rates[i][1];
    if (period > mult || Math.floor(mult / period) < mult % period) break;
  }
  return `${Math.floor(rates[i - 1][1] / period)}/${rates[i - 1][0]}`;
}

export const limitMatch: MatchDescriptor<LimitMatchOptions> = {
  kind: "match",
  name: "limit",
  match: limitMt,
  kernelFile: "net/netfilter/xt_limit.c",
  userspaceFile: "extensions/libxt_limit.c",
  options: [
    { name: "limit", nargs: 1 },
    { name: "limit-burst", nargs: 1 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    let avg = XT_LIMIT_AVG;
    let burst = XT_LIMIT_BURST;
    const l = m.get("limit");
    if (l) {
      const v = parseRate(l.args[0]);
      if (v === undefined) return ctx.fail(`bad rate "${l.args[0]}" (N/sec, N/min, N/hour or N/day)`, l);
      avg = v;
    }
    const b = m.get("limit-burst");
    if (b) {
      const v = parseUint(b.args[0], 10000);
      if (v === undefined || v === 0) return ctx.fail(`bad --limit-burst "${b.args[0]}" (1..10000)`, b);
      burst = v;
    }
    for (const o of m.values()) if (o.invert) return ctx.fail(`limit: --${o.name} cannot be inverted`, o);
    return { avg, burst };
  },
  save(o) {
    return `--limit ${formatRate(o.avg)}${o.burst !== XT_LIMIT_BURST ? ` --limit-burst ${o.burst}` : ""}`;
  },
};

/** CONFIG_HZ of the modelled kernel (Fedora/Debian x86_64 build with 1000). */
export const HZ = 1000;
/** MAX_CPJ = 0xFFFFFFFF / (HZ*60*60*24); CREDITS_PER_JIFFY = POW2_BELOW32(MAX_CPJ). */
const MAX_CPJ = Math.floor(0xffffffff / (HZ * 60 * 60 * 24));
export const CREDITS_PER_JIFFY = 2 ** Math.floor(Math.log2(MAX_CPJ));

/** user2credits: u32 arithmetic as the kernel's (divide first when multiplying would overflow). */
export function user2credits(user: number): number {
  const u = user >>> 0;
  if (u > Math.floor(0xffffffff / (HZ * CREDITS_PER_JIFFY))) {
    return (Math.floor(u / XT_LIMIT_SCALE) * HZ * CREDITS_PER_JIFFY) >>> 0;
  }
  return Math.floor((u * HZ * CREDITS_PER_JIFFY) / XT_LIMIT_SCALE) >>> 0;
}

/** struct xt_limit_priv plus the rule's credit_cap and cost. */
export interface LimitState {
  prev: number;
  credit: number;
  readonly creditCap: number;
  readonly cost: number;
}

/**
 * limit_mt: the token bucket in credits. The bucket is created full (limit_mt_check) when the rule first sees
 * a packet, since the emulator has no rule-load time; `prev` is in jiffies of the packet time (`par.now`).
 */
export function limitMt(o: LimitMatchOptions, _skb: Skb, par: XtActionParam): boolean {
  const now = Math.floor(par.now * HZ);
  let st = par.ruleState.get(o) as LimitState | undefined;
  if (!st) {
    const full = user2credits(Math.imul(o.avg, o.burst) >>> 0);
    st = { prev: now, credit: full, creditCap: full, cost: user2credits(o.avg) };
    par.ruleState.set(o, st);
  }
  if (st.credit < st.cost && st.prev === now) return false;
  // credit_increase is a u32: (now - prev) * CREDITS_PER_JIFFY wraps after ~37 hours idle, as in the kernel.
  const increase = ((((now - st.prev) % 2 ** 32) * CREDITS_PER_JIFFY) % 2 ** 32) >>> 0;
  st.prev = now;
  let credit = (st.credit + increase) >>> 0;
  if (credit > st.creditCap) credit = st.creditCap;
  let ret = false;
  if (credit >= st.cost) {
    ret = true;
    credit -= st.cost;
  }
  st.credit = credit;
  return ret;
}
