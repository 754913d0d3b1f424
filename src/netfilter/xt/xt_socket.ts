/**
 * socket match: net/netfilter/xt_socket.c (revision 3: `socket_mt4_v1_v2_v3`; `.hooks` PRE_ROUTING |
 * LOCAL_IN), kernel 6.17; userspace extensions/libxt_socket.c (`socket_mt_save_v3`), iptables 1.8.x.
 *
 * Left out on purpose: revisions 0-2.
 */

import type { MatchDescriptor } from "../registry";
import { collect } from "./util";

export interface SocketMatchOptions {
  readonly transparent: boolean;
  readonly nowildcard: boolean;
  readonly restoreSkmark: boolean;
}

export const socketMatch: MatchDescriptor<SocketMatchOptions> = {
  kind: "match",
  name: "socket",
  kernelFile: "net/netfilter/xt_socket.c",
  userspaceFile: "extensions/libxt_socket.c",
  hooks: ["PREROUTING", "INPUT"],
  options: [
    { name: "transparent", nargs: 0 },
    { name: "nowildcard", nargs: 0 },
    { name: "restore-skmark", nargs: 0 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    return {
      transparent: m.has("transparent"),
      nowildcard: m.has("nowildcard"),
      restoreSkmark: m.has("restore-skmark"),
    };
  },
  save(o) {
    return [
      o.transparent && "--transparent",
      o.nowildcard && "--nowildcard",
      o.restoreSkmark && "--restore-skmark",
    ]
      .filter(Boolean)
      .join(" ");
  },
};
