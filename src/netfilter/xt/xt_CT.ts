/**
 * CT and NOTRACK targets: net/netfilter/xt_CT.c (revision 2: `xt_ct_tg_check_v2` builds a template
 * conntrack with zone, helper, timeout policy and event masks; NOTRACK sets IP_CT_UNTRACKED; `.table` "raw"
 * for all), kernel 6.17; userspace extensions/libxt_CT.c (`ct_parse_v1`, `ct_save_v1`, the NOTRACK alias),
 * iptables 1.8.x.
 *
 * Left out on purpose: --zone-orig/--zone-reply direction zones and `--zone mark`; helpers and timeout
 * policies are only named, not checked for existence.
 *
 * Per packet: `xt_ct_target` (returns XT_CONTINUE, as the kernel does: later raw rules still run).
 */

import type { TargetDescriptor } from "../registry";
import { collect, parseUint } from "./util";
import type { Skb, TargetVerdict } from "../skb";
import { XT_CONTINUE } from "../skb";
import { IP_CT_UNTRACKED } from "../../conntrack/types";

export const CT_EVENTS = [
  "new",
  "related",
  "destroy",
  "reply",
  "assured",
  "protoinfo",
  "helper",
  "mark",
  "natseqinfo",
  "secmark",
] as const;
export const CT_EXP_EVENTS = ["new"] as const;

export interface CtTargetOptions {
  readonly notrack: boolean;
  readonly helper?: string;
  readonly timeout?: string;
  readonly ctevents: readonly string[];
  readonly expevents: readonly string[];
  readonly zone: number;
}

function parseEvents(text: string, names: readonly string[]): string[] | undefined {
  const set = new Set<string>();
  for (const w of text.split(",")) {
    if (!names.includes(w)) return undefined;
    set.add(w);
  }
  return names.filter((n) => set.has(n));
}

export const ctTarget: TargetDescriptor<CtTargetOptions> = {
  kind: "target",
  name: "CT",
  target: ctTg,
  kernelFile: "net/netfilter/xt_CT.c",
  userspaceFile: "extensions/libxt_CT.c",
  table: "raw",
  options: [
    { name: "notrack", nargs: 0 },
    { name: "helper", nargs: 1 },
    { name: "timeout", nargs: 1 },
    { name: "ctevents", nargs: 1 },
    { name: "expevents", nargs: 1 },
    { name: "zone", nargs: 1 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    for (const o of opts) if (o.invert) return ctx.fail(`--${o.name} cannot be inverted`, o);
    let zone = 0;
    const z = m.get("zone");
    if (z) {
      const v = parseUint(z.args[0], 0xffff);
      if (v === undefined) return ctx.fail(`bad --zone "${z.args[0]}" (0..65535)`, z);
      zone = v;
    }
    const ev = m.get("ctevents");
    const ctevents = ev ? parseEvents(ev.args[0], CT_EVENTS) : [];
    if (!ctevents)
      return ctx.fail(`bad --ctevents "${ev!.args[0]}" (supported: ${CT_EVENTS.join(", ")})`, ev);
    const xev = m.get("expevents");
    const expevents = xev ? parseEvents(xev.args[0], CT_EXP_EVENTS) : [];
    if (!expevents) return ctx.fail(`bad --expevents "${xev!.args[0]}" (supported: new)`, xev);
    const helper = m.get("helper")?.args[0];
    const timeout = m.get("timeout")?.args[0];
    if (m.has("notrack") && (helper || timeout || ctevents.length || expevents.length || zone)) {
      return ctx.fail("CT: --notrack cannot be combined with other options", m.get("notrack"));
    }
    return {
      notrack: m.has("notrack"),
      ...(helper !== undefined ? { helper } : {}),
      ...(timeout !== undefined ? { timeout } : {}),
      ctevents,
      expevents,
      zone,
    };
  },
  save(o) {
    return [
      o.notrack && "--notrack",
      o.helper !== undefined && `--helper ${o.helper}`,
      o.timeout !== undefined && `--timeout ${o.timeout}`,
      o.ctevents.length > 0 && `--ctevents ${o.ctevents.join(",")}`,
      o.expevents.length > 0 && `--expevents ${o.expevents.join(",")}`,
      o.zone !== 0 && `--zone ${o.zone}`,
    ]
      .filter(Boolean)
      .join(" ");
  },
};

export type NotrackTargetOptions = Record<string, never>;

/** `-j NOTRACK`: the CT target with XT_CT_NOTRACK | XT_CT_NOTRACK_ALIAS, printed back as NOTRACK. */
export const notrackTarget: TargetDescriptor<NotrackTargetOptions> = {
  kind: "target",
  name: "NOTRACK",
  target: notrackTg,
  kernelFile: "net/netfilter/xt_CT.c",
  userspaceFile: "extensions/libxt_CT.c",
  table: "raw",
  options: [],
  parse() {
    return {};
  },
  save() {
    return "";
  },
};

/**
 * xt_ct_target: a packet that already carries a conntrack (or a template, or UNTRACKED) is left alone;
 * --notrack marks it UNTRACKED; otherwise the rule's template (zone, and the recorded helper/timeout/event
 * options) is attached for nf_conntrack_in. Always XT_CONTINUE.
 */
export function ctTg(o: CtTargetOptions, skb: Skb): TargetVerdict {
  if (skb.ct || skb.untracked || skb.ctTemplate) return XT_CONTINUE;
  if (o.notrack) {
    skb.untracked = true;
    skb.ctinfo = IP_CT_UNTRACKED;
    return XT_CONTINUE;
  }
  const template = {
    zone: o.zone,
    ...(o.helper !== undefined ? { helper: o.helper } : {}),
    ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
    ...(o.ctevents.length ? { ctevents: o.ctevents } : {}),
    ...(o.expevents.length ? { expevents: o.expevents } : {}),
  };
  skb.ctTemplate = template;
  return XT_CONTINUE;
}

/** `-j NOTRACK`: xt_ct_target with the notrack template. */
export function notrackTg(_o: NotrackTargetOptions, skb: Skb): TargetVerdict {
  return ctTg({ notrack: true, ctevents: [], expevents: [], zone: 0 }, skb);
}
