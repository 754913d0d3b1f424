/**
 * statistic match: net/netfilter/xt_statistic.c (`statistic_mt`: random with probability/2^31, or nth;
 * `statistic_mt_check` refuses packet > every), kernel 6.17; userspace extensions/libxt_statistic.c
 * (`statistic_parse`, `statistic_check`, `print_match` with "--"), iptables 1.8.x.
 *
 * Left out on purpose: nothing of the syntax. The random draw comes from the injected generator.
 *
 * Per packet: `statistic_mt`; the nth counter lives in par.ruleState keyed by the options object.
 */

import type { MatchDescriptor } from "../registry";
import { collect, parseUint } from "./util";
import type { Skb, XtActionParam } from "../skb";
import { hostOf } from "../host_services";

export type StatisticMatchOptions =
  | { readonly mode: "random"; readonly probability: number; readonly invert: boolean }
  | { readonly mode: "nth"; readonly every: number; readonly packet: number; readonly invert: boolean };

export const statisticMatch: MatchDescriptor<StatisticMatchOptions> = {
  kind: "match",
  name: "statistic",
  match: statisticMt,
  kernelFile: "net/netfilter/xt_statistic.c",
  userspaceFile: "extensions/libxt_statistic.c",
  options: [
    { name: "mode", nargs: 1 },
    { name: "probability", nargs: 1, invert: true },
    { name: "every", nargs: 1, invert: true },
    { name: "packet", nargs: 1 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    const mode = m.get("mode");
    if (!mode) return ctx.fail("statistic: --mode is required");
    const invert = [...m.values()].some((o) => o.invert);
    if (mode.args[0] === "random") {
      const p = m.get("probability");
      if (!p) return ctx.fail("statistic: --mode random needs --probability", mode);
      if (m.has("every") || m.has("packet"))
        return ctx.fail("statistic: --every/--packet need --mode nth", mode);
      if (!/^(\d+(\.\d*)?|\.\d+)$/.test(p.args[0])) return ctx.fail(`bad probability "${p.args[0]}"`, p);
      const v = Number(p.args[0]);
      if (!(v >= 0 && v <= 1)) return ctx.fail(`probability "${p.args[0]}" is not between 0 and 1`, p);
      /* lround(0x80000000 * prob), a u32 in the kernel (1.0 becomes 0x80000000). */
      return { mode: "random", probability: Math.round(0x80000000 * v), invert };
    }
    if (mode.args[0] === "nth") {
      const e = m.get("every");
      if (!e) return ctx.fail("statistic: --mode nth needs --every", mode);
      if (m.has("probability")) return ctx.fail("statistic: --probability needs --mode random", mode);
      const every = parseUint(e.args[0]);
      if (every === undefined || every === 0) return ctx.fail(`bad --every "${e.args[0]}"`, e);
      let packet = 0;
      const pk = m.get("packet");
      /* The option table says --every `.also = O_PACKET`: both or neither. */
      if (!pk) return ctx.fail("statistic: --every needs --packet", e);
      {
        const v = parseUint(pk.args[0]);
        if (v === undefined) return ctx.fail(`bad --packet "${pk.args[0]}"`, pk);
        if (v > every - 1) return ctx.fail("statistic: --packet must be lower than --every", pk);
        packet = v;
      }
      return { mode: "nth", every, packet, invert };
    }
    return ctx.fail(`bad mode "${mode.args[0]}" (random or nth)`, mode);
  },
  save(o) {
    const inv = o.invert ? " !" : "";
    if (o.mode === "random")
      return `--mode random${inv} --probability ${(o.probability / 0x80000000).toFixed(11)}`;
    return `--mode nth${inv} --every ${o.every} --packet ${o.packet}`;
  },
};

/**
 * statistic_mt. random: `(get_random_u32() & 0x7FFFFFFF) < probability` (probability already scaled to
 * 2^31 by userspace), from the host's seeded generator. nth: the shared counter starts at `every - 1 - packet`
 * (userspace stores every-1 and count), counts up to every-1 and wraps to 0, which is the matching packet.
 */
export function statisticMt(o: StatisticMatchOptions, _skb: Skb, par: XtActionParam): boolean {
  let ret = o.invert;
  if (o.mode === "random") {
    if ((hostOf(par.host).randomU32() & 0x7fffffff) >>> 0 < o.probability) ret = !ret;
    return ret;
  }
  const every = o.every - 1;
  const st = (par.ruleState.get(o) as { count: number } | undefined) ?? { count: every - o.packet };
  par.ruleState.set(o, st);
  st.count = st.count === every ? 0 : st.count + 1;
  if (st.count === 0) ret = !ret;
  return ret;
}
