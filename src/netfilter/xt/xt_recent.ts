/**
 * recent match: net/netfilter/xt_recent.c (revision 1: `recent_mt`, `recent_mt_check`: one of
 * set/rcheck/update/remove, --reap needs --seconds, --hitcount at most ip_pkt_list_tot), kernel 6.17;
 * userspace extensions/libxt_recent.c (`recent_parse`, `recent_print` with "--", `recent_check`),
 * iptables 1.8.x. Needed by kube-proxy session affinity.
 *
 * Left out on purpose: the /proc/net/xt_recent interface.
 */

import { formatIpv4, parseIpv4 } from "../../wire/addr";
import type { MatchDescriptor } from "../registry";
import { collect, parseUint } from "./util";

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
