/**
 * LOG target: net/netfilter/xt_LOG.c (`log_tg`, `log_tg_check`: level <= 7, prefix NUL-terminated within
 * 30 bytes), kernel 6.17; userspace extensions/libxt_LOG.c (`LOG_parse`, `LOG_save`; default level 4),
 * iptables 1.8.x.
 *
 * Left out on purpose: nothing of the syntax. The line format is in KERNEL_FACTS §6.1.
 *
 * Per packet: `log_tg` formatting with src/trace/nf_log.ts (the syslog level is not part of the line).
 */

import type { TargetDescriptor } from "../registry";
import { collect, saveString } from "./util";
import type { Skb, TargetVerdict, XtActionParam } from "../skb";
import { XT_CONTINUE, skbOwner } from "../skb";
import {
  NF_LOG_IPOPT,
  NF_LOG_MACDECODE,
  NF_LOG_TCPOPT,
  NF_LOG_TCPSEQ,
  NF_LOG_UID,
  nfLogPacket,
  type NfLogSubject,
} from "../../trace/nf_log";

export const LOG_DEFAULT_LEVEL = 4;
/** Prefix buffer of `struct xt_log_info` is 30 bytes including the NUL. */
export const LOG_PREFIX_MAX = 29;

export const LOG_LEVELS: ReadonlyMap<string, number> = new Map([
  ["emerg", 0],
  ["panic", 0],
  ["alert", 1],
  ["crit", 2],
  ["err", 3],
  ["error", 3],
  ["warning", 4],
  ["warn", 4],
  ["notice", 5],
  ["info", 6],
  ["debug", 7],
]);

export interface LogTargetOptions {
  readonly level: number;
  readonly prefix: string;
  readonly tcpSequence: boolean;
  readonly tcpOptions: boolean;
  readonly ipOptions: boolean;
  readonly uid: boolean;
  readonly macDecode: boolean;
}

export const logTarget: TargetDescriptor<LogTargetOptions> = {
  kind: "target",
  name: "LOG",
  target: logTg,
  kernelFile: "net/netfilter/xt_LOG.c",
  userspaceFile: "extensions/libxt_LOG.c",
  options: [
    { name: "log-level", nargs: 1 },
    { name: "log-prefix", nargs: 1 },
    { name: "log-tcp-sequence", nargs: 0 },
    { name: "log-tcp-options", nargs: 0 },
    { name: "log-ip-options", nargs: 0 },
    { name: "log-uid", nargs: 0 },
    { name: "log-macdecode", nargs: 0 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    for (const o of opts) if (o.invert) return ctx.fail(`--${o.name} cannot be inverted`, o);
    let level = LOG_DEFAULT_LEVEL;
    const l = m.get("log-level");
    if (l) {
      const t = l.args[0];
      const v = /^[0-7]$/.test(t) ? Number(t) : LOG_LEVELS.get(t.toLowerCase());
      if (v === undefined) return ctx.fail(`bad --log-level "${t}" (0..7 or a syslog level name)`, l);
      level = v;
    }
    const prefix = m.get("log-prefix")?.args[0] ?? "";
    if (prefix.length > LOG_PREFIX_MAX) {
      return ctx.fail(`--log-prefix is too long (at most ${LOG_PREFIX_MAX} characters)`, m.get("log-prefix"));
    }
    if (m.has("log-prefix") && prefix.length === 0)
      return ctx.fail("--log-prefix cannot be empty", m.get("log-prefix"));
    return {
      level,
      prefix,
      tcpSequence: m.has("log-tcp-sequence"),
      tcpOptions: m.has("log-tcp-options"),
      ipOptions: m.has("log-ip-options"),
      uid: m.has("log-uid"),
      macDecode: m.has("log-macdecode"),
    };
  },
  save(o) {
    return [
      o.prefix && `--log-prefix ${saveString(o.prefix)}`,
      o.level !== LOG_DEFAULT_LEVEL && `--log-level ${o.level}`,
      o.tcpSequence && "--log-tcp-sequence",
      o.tcpOptions && "--log-tcp-options",
      o.ipOptions && "--log-ip-options",
      o.uid && "--log-uid",
      o.macDecode && "--log-macdecode",
    ]
      .filter(Boolean)
      .join(" ");
  },
};

/** The logger's view of a packet: devices of the hook, link header, mark and the socket owner (UID=/GID=). */
export function logSubject(skb: Skb, par: XtActionParam): NfLogSubject {
  const owner = skbOwner(skb);
  return {
    pkt: skb.pkt,
    mark: skb.mark,
    inIface: par.inIface,
    outIface: par.outIface,
    link: skb.pkt.link,
    ...(owner ? { owner } : {}),
  };
}

/** log_tg: nf_log_packet with the rule's level, prefix and flags; XT_CONTINUE. */
export function logTg(o: LogTargetOptions, skb: Skb, par: XtActionParam): TargetVerdict {
  const logflags =
    (o.tcpSequence ? NF_LOG_TCPSEQ : 0) |
    (o.tcpOptions ? NF_LOG_TCPOPT : 0) |
    (o.ipOptions ? NF_LOG_IPOPT : 0) |
    (o.uid ? NF_LOG_UID : 0) |
    (o.macDecode ? NF_LOG_MACDECODE : 0);
  par.effects.log(nfLogPacket(o.prefix, logSubject(skb, par), { level: o.level, logflags }));
  return XT_CONTINUE;
}
