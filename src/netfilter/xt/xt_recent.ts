/**
 * recent match: net/netfilter/xt_recent.c (revision 1: `recent_mt`, `recent_mt_check`: one of
 * set/rcheck/update/remove, --reap needs --seconds, --hitcount at most ip_pkt_list_tot), kernel 6.17;
 * userspace extensions/libxt_recent.c (`recent_parse`, `recent_print` with "--", `recent_check`),
 * iptables 1.8.x. Needed by kube-proxy session affinity.
 *
 * Left out on purpose: the /proc/net/xt_recent interface.
 *
 * Per packet: `recent_mt`, `recent_entry_init/update/reap`; the tables (ip_list_tot 200 entries,\nip_pkt_list_tot 255 stamps) are shared by name across the rule set through par.ruleState[RECENT_TABLES].
 */

import { formatIpv4, parseIpv4 } from "../../wire/addr";
import type { MatchDescriptor } from "../registry";
import { collect, parseUint } from "./util";
import type { Skb, XtActionParam } from "../skb";

export type RecentCommand = "set" | "rcheck" | "update" | "remove";

export interface RecentMatchOptions {
  readonly command: RecentCommand;
  readonly invert: boolean;
  readonly seconds: number;
  readonly reap: boolean;
  readonly hitcount: number;
  readonly rttl: boolean;
  readonly name: string;
  readonly mask: number;
  readonly side: "rsource" | "rdest";
}

/** Default ip_pkt_list_tot module parameter. */
export const XT_RECENT_MAX_HITCOUNT = 255;

export const recentMatch: MatchDescriptor<RecentMatchOptions> = {
  kind: "match",
  name: "recent",
  match: recentMt,
  kernelFile: "net/netfilter/xt_recent.c",
  userspaceFile: "extensions/libxt_recent.c",
  options: [
    { name: "set", nargs: 0, invert: true },
    { name: "rcheck", nargs: 0, invert: true },
    { name: "update", nargs: 0, invert: true },
    { name: "remove", nargs: 0, invert: true },
    { name: "seconds", nargs: 1 },
    { name: "reap", nargs: 0 },
    { name: "hitcount", nargs: 1 },
    { name: "rttl", nargs: 0 },
    { name: "name", nargs: 1 },
    { name: "mask", nargs: 1 },
    { name: "rsource", nargs: 0 },
    { name: "rdest", nargs: 0 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    const cmds = opts.filter((o) => ["set", "rcheck", "update", "remove"].includes(o.name));
    if (cmds.length !== 1) {
      return ctx.fail("recent: exactly one of --set, --rcheck, --update or --remove is required", cmds[1]);
    }
    const cmd = cmds[0];
    let seconds = 0;
    let hitcount = 0;
    let mask = 0xffffffff;
    const s = m.get("seconds");
    if (s) {
      const v = parseUint(s.args[0]);
      if (v === undefined || v === 0) return ctx.fail(`bad --seconds "${s.args[0]}"`, s);
      seconds = v;
    }
    const h = m.get("hitcount");
    if (h) {
      const v = parseUint(h.args[0], 0xffff);
      if (v === undefined) return ctx.fail(`bad --hitcount "${h.args[0]}"`, h);
      hitcount = v;
    }
    const mk = m.get("mask");
    if (mk) {
      const v = parseIpv4(mk.args[0]);
      if (v === undefined) return ctx.fail(`bad --mask "${mk.args[0]}"`, mk);
      mask = v;
    }
    const name = m.get("name")?.args[0] ?? "DEFAULT";
    if (name.length === 0 || name.length > 199) return ctx.fail(`bad --name "${name}"`, m.get("name"));
    if (m.has("reap") && !seconds) return ctx.fail("recent: --reap needs --seconds", m.get("reap"));
    if (m.has("rttl") && cmd.name !== "rcheck" && cmd.name !== "update") {
      return ctx.fail("recent: --rttl only works with --rcheck or --update", m.get("rttl"));
    }
    if ((seconds || hitcount) && cmd.name !== "rcheck" && cmd.name !== "update") {
      return ctx.fail("recent: --seconds and --hitcount only work with --rcheck or --update", s ?? h);
    }
    return {
      command: cmd.name as RecentCommand,
      invert: cmd.invert,
      seconds,
      reap: m.has("reap"),
      hitcount,
      rttl: m.has("rttl"),
      name,
      mask,
      side: m.has("rdest") ? "rdest" : "rsource",
    };
  },
  check(o, ctx) {
    if (o.hitcount > XT_RECENT_MAX_HITCOUNT) {
      return ctx.fail(
        `recent: --hitcount ${o.hitcount} is above ip_pkt_list_tot (${XT_RECENT_MAX_HITCOUNT})`,
      );
    }
    return undefined;
  },
  save(o) {
    return [
      o.invert && "!",
      `--${o.command}`,
      o.seconds && `--seconds ${o.seconds}`,
      o.reap && "--reap",
      o.hitcount && `--hitcount ${o.hitcount}`,
      o.rttl && "--rttl",
      `--name ${o.name}`,
      `--mask ${formatIpv4(o.mask)}`,
      `--${o.side}`,
    ]
      .filter(Boolean)
      .join(" ");
  },
};

/** Module parameters of xt_recent.c: ip_list_tot (entries per table) and ip_pkt_list_tot (stamps per entry). */
export const XT_RECENT_IP_LIST_TOT = 200;
export const XT_RECENT_PKT_LIST_TOT = 255;
/** CONFIG_HZ of the modelled kernel; stamps are in jiffies. */
const RECENT_HZ = 1000;

/** struct recent_entry. */
export interface RecentEntry {
  readonly addr: number;
  ttl: number;
  /** Ring of jiffies stamps; `index` is the next slot, `nstamps` how many are valid. */
  readonly stamps: number[];
  index: number;
  nstamps: number;
}

/** struct recent_table: entries by masked address, kept in LRU order (oldest first). */
export interface RecentTable {
  readonly name: string;
  readonly entries: Map<number, RecentEntry>;
}

/** Key under which the per-rule-set recent tables live in par.ruleState (one namespace of tables by name). */
export const RECENT_TABLES = Object.freeze({ kind: "xt_recent tables" });

/** The table named `name` of this rule set (created on first use, as recent_mt_check does). */
export function recentTable(ruleState: Map<object, unknown>, name: string): RecentTable {
  let tables = ruleState.get(RECENT_TABLES) as Map<string, RecentTable> | undefined;
  if (!tables) {
    tables = new Map();
    ruleState.set(RECENT_TABLES, tables);
  }
  let t = tables.get(name);
  if (!t) {
    t = { name, entries: new Map() };
    tables.set(name, t);
  }
  return t;
}

function touch(t: RecentTable, e: RecentEntry): void {
  // list_move_tail on the LRU list: Map order is insertion order.
  t.entries.delete(e.addr);
  t.entries.set(e.addr, e);
}

/** recent_entry_update. */
function entryUpdate(t: RecentTable, e: RecentEntry, now: number): void {
  e.index %= XT_RECENT_PKT_LIST_TOT;
  e.stamps[e.index++] = now;
  if (e.index > e.nstamps) e.nstamps = e.index;
  touch(t, e);
}

/** recent_entry_init: evicts the oldest entry when the table is full. */
function entryInit(t: RecentTable, addr: number, ttl: number, now: number): RecentEntry {
  if (t.entries.size >= XT_RECENT_IP_LIST_TOT) {
    const oldest = t.entries.keys().next().value as number;
    t.entries.delete(oldest);
  }
  const e: RecentEntry = { addr, ttl, stamps: [now], index: 1, nstamps: 1 };
  t.entries.set(addr, e);
  return e;
}

/** time_after(a, b) on jiffies. */
function timeAfter(a: number, b: number): boolean {
  return b - a < 0;
}

/** recent_entry_reap: drop the oldest entry if its newest stamp is before `time` (unless it is `working`). */
function entryReap(t: RecentTable, time: number, working: RecentEntry): void {
  const first = t.entries.values().next();
  if (first.done) return;
  const e = first.value;
  if (e === working) return;
  if (timeAfter(time, e.stamps[e.index - 1])) t.entries.delete(e.addr);
}

/**
 * recent_mt: the address (source or destination, masked) is looked up in the named table; --set adds or
 * refreshes, --remove deletes, --rcheck/--update test the stamps against --seconds/--hitcount (--update
 * refreshes on a hit), --reap drops the oldest stale entry. `!` starts from true. The TTL seen before
 * forwarding (TTL+1 on a forwarded packet) is stored and, with --rttl, must be equal.
 */
export function recentMt(o: RecentMatchOptions, skb: Skb, par: XtActionParam): boolean {
  const ip = skb.pkt.ip;
  const addr = ((o.side === "rdest" ? ip.dst : ip.src) & o.mask) >>> 0;
  let ttl = ip.ttl;
  if (par.outIface !== undefined && !skb.local) ttl++;
  const now = Math.floor(par.now * RECENT_HZ);
  const t = recentTable(par.ruleState, o.name);
  let ret = o.invert;
  const found = t.entries.get(addr);
  const e = found && (!o.rttl || found.ttl === ttl) ? found : undefined;
  if (!e) {
    if (o.command !== "set") return ret;
    entryInit(t, addr, ttl, now);
    return !ret;
  }
  if (o.command === "set") ret = !ret;
  else if (o.command === "remove") {
    t.entries.delete(e.addr);
    return !ret;
  } else if (o.seconds || o.hitcount) {
    const time = now - o.seconds * RECENT_HZ;
    let hits = 0;
    for (let i = 0; i < e.nstamps; i++) {
      if (o.seconds && timeAfter(time, e.stamps[i])) continue;
      if (!o.hitcount || ++hits >= o.hitcount) {
        ret = !ret;
        break;
      }
    }
    if (o.reap) entryReap(t, time, e);
  } else ret = !ret;
  if (o.command === "set" || (o.command === "update" && ret)) {
    entryUpdate(t, e, now);
    e.ttl = ttl;
  }
  return ret;
}
