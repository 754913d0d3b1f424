/**
 * NFLOG target: net/netfilter/xt_NFLOG.c (`nflog_tg`, `nflog_tg_check`: prefix NUL-terminated in 64 bytes),
 * kernel 6.17; userspace extensions/libxt_NFLOG.c (`NFLOG_parse`, `nflog_print` with "--"; iptables-nft
 * truncates an over-long prefix to 63 characters), iptables 1.8.x.
 *
 * Left out on purpose: nothing of the syntax.
 *
 * Per packet: `nflog_tg`, reported through effects.log with an `NFLOG group=N ` marker (no netlink).
 */

import type { TargetDescriptor } from "../registry";
import { collect, parseUint, saveString } from "./util";
import type { Skb, TargetVerdict, XtActionParam } from "../skb";
import { XT_CONTINUE } from "../skb";
import { nfLogPacket } from "../../trace/nf_log";
import { logSubject } from "./xt_LOG";

export const NFLOG_PREFIX_MAX = 63;
export const XT_NFLOG_DEFAULT_THRESHOLD = 0;

export interface NflogTargetOptions {
  readonly group: number;
  readonly prefix: string;
  /** --nflog-size (XT_NFLOG_F_COPY_LEN) or the legacy --nflog-range. */
  readonly len?: { readonly value: number; readonly copyLen: boolean };
  readonly threshold: number;
}

export const nflogTarget: TargetDescriptor<NflogTargetOptions> = {
  kind: "target",
  name: "NFLOG",
  target: nflogTg,
  kernelFile: "net/netfilter/xt_NFLOG.c",
  userspaceFile: "extensions/libxt_NFLOG.c",
  options: [
    { name: "nflog-group", nargs: 1 },
    { name: "nflog-prefix", nargs: 1 },
    { name: "nflog-range", nargs: 1 },
    { name: "nflog-size", nargs: 1 },
    { name: "nflog-threshold", nargs: 1 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    const num = (name: string, max: number): number | undefined | false => {
      const o = m.get(name);
      if (!o) return undefined;
      const v = parseUint(o.args[0], max);
      return v === undefined ? false : v;
    };
    for (const o of opts) if (o.invert) return ctx.fail(`--${o.name} cannot be inverted`, o);
    const group = num("nflog-group", 0xffff);
    if (group === false)
      return ctx.fail(
        `bad --nflog-group "${m.get("nflog-group")!.args[0]}" (0..65535)`,
        m.get("nflog-group"),
      );
    const range = num("nflog-range", 0xffffffff);
    if (range === false)
      return ctx.fail(`bad --nflog-range "${m.get("nflog-range")!.args[0]}"`, m.get("nflog-range"));
    const size = num("nflog-size", 0xffffffff);
    if (size === false)
      return ctx.fail(`bad --nflog-size "${m.get("nflog-size")!.args[0]}"`, m.get("nflog-size"));
    if (range !== undefined && size !== undefined) {
      return ctx.fail("--nflog-range and --nflog-size exclude each other", m.get("nflog-size"));
    }
    const threshold = num("nflog-threshold", 0xffff);
    if (threshold === false) {
      return ctx.fail(
        `bad --nflog-threshold "${m.get("nflog-threshold")!.args[0]}" (0..65535)`,
        m.get("nflog-threshold"),
      );
    }
    const prefix = (m.get("nflog-prefix")?.args[0] ?? "").slice(0, NFLOG_PREFIX_MAX);
    const len =
      size !== undefined
        ? { value: size, copyLen: true }
        : range !== undefined
          ? { value: range, copyLen: false }
          : undefined;
    return {
      group: group ?? 0,
      prefix,
      ...(len ? { len } : {}),
      threshold: threshold ?? XT_NFLOG_DEFAULT_THRESHOLD,
    };
  },
  save(o) {
    return [
      o.prefix && `--nflog-prefix ${saveString(o.prefix)}`,
      o.group !== 0 && `--nflog-group ${o.group}`,
      o.len && o.len.copyLen && `--nflog-size ${o.len.value}`,
      o.len && !o.len.copyLen && o.len.value !== 0 && `--nflog-range ${o.len.value}`,
      o.threshold !== XT_NFLOG_DEFAULT_THRESHOLD && `--nflog-threshold ${o.threshold}`,
    ]
      .filter(Boolean)
      .join(" ");
  },
};

/**
 * nflog_tg: the packet goes to nfnetlink_log group N, not to the kernel log. The emulator reports it as a log
 * line with the marker `NFLOG group=N ` before the LOG-format text (prefix included, no optional fields), so
 * output readers can tell it apart. XT_CONTINUE.
 */
export function nflogTg(o: NflogTargetOptions, skb: Skb, par: XtActionParam): TargetVerdict {
  const text = nfLogPacket(o.prefix, logSubject(skb, par), { level: 4, logflags: 0 });
  par.effects.log(`NFLOG group=${o.group} ${text}`);
  return XT_CONTINUE;
}
