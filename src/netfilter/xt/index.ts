/**
 * The default registry: every xt_* descriptor ctsim supports, registered once. A test checks that every
 * xt_*.ts file in this folder is registered here.
 */

import { Registry } from "../registry";
import { addrtypeMatch } from "./xt_addrtype";
import { commentMatch } from "./xt_comment";
import { connmarkMatch, connmarkTarget } from "./xt_connmark";
import { conntrackMatch } from "./xt_conntrack";
import { icmpMatch } from "./xt_icmp";
import { iprangeMatch } from "./xt_iprange";
import { lengthMatch } from "./xt_length";
import { limitMatch } from "./xt_limit";
import { macMatch } from "./xt_mac";
import { markMatch, markTarget } from "./xt_mark";
import { multiportMatch } from "./xt_multiport";
import { nfacctMatch } from "./xt_nfacct";
import { ownerMatch } from "./xt_owner";
import { physdevMatch } from "./xt_physdev";
import { pkttypeMatch } from "./xt_pkttype";
import { recentMatch } from "./xt_recent";
import { setMatch } from "./xt_set";
import { socketMatch } from "./xt_socket";
import { stateMatch } from "./xt_state";
import { statisticMatch } from "./xt_statistic";
import { tcpMatch, udpMatch } from "./xt_tcpudp";
import { ttlMatch } from "./xt_hl";
import { checksumTarget } from "./xt_CHECKSUM";
import { ctTarget, notrackTarget } from "./xt_CT";
import { dscpTarget } from "./xt_DSCP";
import { logTarget } from "./xt_LOG";
import { masqueradeTarget } from "./xt_MASQUERADE";
import { netmapTarget } from "./xt_NETMAP";
import { nflogTarget } from "./xt_NFLOG";
import { redirectTarget } from "./xt_REDIRECT";
import { rejectTarget } from "./xt_REJECT";
import { tcpmssTarget } from "./xt_TCPMSS";
import { tproxyTarget } from "./xt_TPROXY";
import { traceTarget } from "./xt_TRACE";
import { ttlTarget } from "./xt_TTL";
import { dnatTarget, snatTarget } from "./xt_nat";

export const ALL_DESCRIPTORS = [
  addrtypeMatch,
  commentMatch,
  connmarkMatch,
  conntrackMatch,
  icmpMatch,
  iprangeMatch,
  lengthMatch,
  limitMatch,
  macMatch,
  markMatch,
  multiportMatch,
  nfacctMatch,
  ownerMatch,
  physdevMatch,
  pkttypeMatch,
  recentMatch,
  setMatch,
  socketMatch,
  stateMatch,
  statisticMatch,
  tcpMatch,
  udpMatch,
  ttlMatch,
  checksumTarget,
  connmarkTarget,
  ctTarget,
  notrackTarget,
  dscpTarget,
  logTarget,
  markTarget,
  masqueradeTarget,
  netmapTarget,
  nflogTarget,
  redirectTarget,
  rejectTarget,
  tcpmssTarget,
  tproxyTarget,
  traceTarget,
  ttlTarget,
  snatTarget,
  dnatTarget,
] as const;

/** A registry holding every supported descriptor. */
export function createDefaultRegistry(): Registry {
  const r = new Registry();
  for (const d of ALL_DESCRIPTORS) r.register(d);
  return r;
}

export const defaultRegistry: Registry = createDefaultRegistry();
