/**
 * Report values (./events.ts) whose text is formatted on first read: the datapath builds one per TRACE hit,
 * conntrack decision and NAT step for every packet, and most runs (`ctsim trace --quiet`, counting, checks on
 * fates) never read the text. Each class holds exactly what the text needs, captured when the event happened
 * (Packet values are immutable, so a later rewrite of the packet in flight does not change it), and formats it
 * once, on demand:
 *
 *   - `TraceHitRecord.line`: the `TRACE: table:chain:comment:num ...` line of nf_log_syslog.c
 *     (`nf_log_ip_packet` via ./nf_log.ts), Linux 6.18; `verdict` from the rule set model.
 *   - `CtSummaryRecord.entry`: the `conntrack -L` line of the entry (src/conntrack/show.ts).
 *   - `NatStepRecord.from`/`.to`: `a.b.c.d:port > e.f.g.h:port` of the packet before and after the hook.
 *
 * `toJSON` gives the same plain objects the eager versions were, so JSON output is unchanged.
 *
 * Leaves out on purpose: nothing; these are representations of ./events.ts, not new data.
 */
import type { LinkHeader, Packet } from "../wire/packet";
import { formatIpv4 } from "../wire/addr";
import type { NfConn } from "../conntrack/core";
import { formatConntrackEntry } from "../conntrack/show";
import type { CtReason } from "../conntrack/types";
import type { Chain, Hook, Rule, TableName } from "../netfilter/ruleset";
import type { TraceComment, TracePoint } from "../netfilter/ip_tables";
import { nfLogTrace } from "./nf_log";
import type { CtSummary, NatStep, TraceHit } from "./events";
import type { Mutable } from "../util/types";

/** What a TRACE entry does, as xtables-monitor and nft monitor print it (see TraceHit.verdict). */
export function entryVerdict(point: TracePoint, chain: Chain | undefined): string {
  // The kernel labels an unconditional standard-verdict rule `policy` (built-in chain) or `return` (user chain)
  // like the chain's tail (ip_tables.c get_chainname_rulenum): the number, not the label, tells them apart.
  const rule = chain?.rules[point.num - 1];
  if (!rule) return point.comment === "policy" ? (chain?.policy ?? "ACCEPT") : "RETURN";
  const tg = rule.target;
  if (!tg) return "CONTINUE";
  if (tg.kind === "verdict") return tg.verdict;
  if (tg.kind === "jump") return `${tg.goto ? "GOTO" : "JUMP"}:${tg.chain}`;
  return tg.name;
}

export class TraceHitRecord implements TraceHit {
  readonly table: TableName;
  readonly chain: string;
  readonly comment: TraceComment;
  readonly num: number;
  readonly rule?: Rule;
  readonly link?: LinkHeader;
  private lineText?: string;
  private verdictText?: string;

  constructor(
    readonly packetId: number,
    private readonly point: TracePoint,
    readonly hook: Hook,
    readonly pkt: Packet,
    readonly mark: number,
    readonly inIface: string | undefined,
    readonly outIface: string | undefined,
    link: LinkHeader | undefined,
    /** The chain in the rule-set model (rule and verdict). */
    private readonly model: Chain | undefined,
    /** The socket owner (skb->sk: locally generated, or assigned by TPROXY), printed as UID= GID=. */
    private readonly owner?: { readonly uid: number; readonly gid: number },
  ) {
    this.table = point.table;
    this.chain = point.chain;
    this.comment = point.comment;
    this.num = point.num;
    this.rule = model?.rules[point.num - 1];
    // The MAC= field is printed only for packets with an input device.
    this.link = inIface !== undefined ? link : undefined;
  }

  get line(): string {
    // Every subject has every field (owner possibly undefined): one hidden class for nf_log's reads.
    return (this.lineText ??= nfLogTrace(this.table, this.chain, this.comment, this.num, {
      pkt: this.pkt,
      mark: this.mark,
      inIface: this.inIface,
      outIface: this.outIface,
      link: this.link,
      owner: this.owner,
    }));
  }

  get verdict(): string {
    return (this.verdictText ??= entryVerdict(this.point, this.model));
  }

  toJSON(): TraceHit {
    return {
      packetId: this.packetId,
      table: this.table,
      chain: this.chain,
      comment: this.comment,
      num: this.num,
      hook: this.hook,
      line: this.line,
      ...(this.rule ? { rule: this.rule } : {}),
      verdict: this.verdict,
      pkt: this.pkt,
      inIface: this.inIface,
      outIface: this.outIface,
      mark: this.mark,
      ...(this.link ? { link: this.link } : {}),
    };
  }
}

export class CtSummaryRecord implements CtSummary {
  private entryText?: string;

  constructor(
    readonly state: CtSummary["state"],
    readonly ctinfo: string | undefined,
    readonly dir: "ORIGINAL" | "REPLY" | undefined,
    readonly reason: CtReason | undefined,
    readonly tcp: CtSummary["tcp"] | undefined,
    readonly attached: boolean | undefined,
    /** The entry and the time its `conntrack -L` line is formatted for (undefined: no entry). */
    private readonly ct: NfConn | undefined,
    private readonly now: number,
  ) {}

  get entry(): string | undefined {
    if (!this.ct) return undefined;
    return (this.entryText ??= formatConntrackEntry(this.ct, this.now));
  }

  toJSON(): CtSummary {
    // Keys added in order, present only when set (spreads of conditional literals took V8's slow path).
    const o: Mutable<CtSummary> = {} as Mutable<CtSummary>;
    if (this.tcp) o.tcp = this.tcp;
    o.state = this.state;
    if (this.ctinfo !== undefined) o.ctinfo = this.ctinfo;
    if (this.dir !== undefined) o.dir = this.dir;
    if (this.reason) o.reason = this.reason;
    if (this.attached) o.attached = this.attached;
    if (this.ct) o.entry = this.entry;
    return o;
  }
}

/** `a.b.c.d:port > e.f.g.h:port` (ports for TCP/UDP only). */
function flowText(p: Packet): string {
  const l4 = p.l4;
  if (l4.kind === "tcp" || l4.kind === "udp")
    return `${formatIpv4(p.ip.src)}:${l4.srcPort} > ${formatIpv4(p.ip.dst)}:${l4.dstPort}`;
  return `${formatIpv4(p.ip.src)} > ${formatIpv4(p.ip.dst)}`;
}

export class NatStepRecord implements NatStep {
  private fromText?: string;
  private toText?: string;

  constructor(
    readonly hook: Hook,
    readonly manip: "SRC" | "DST",
    readonly kind: NatStep["kind"],
    readonly by: string | undefined,
    /** Packets before and after the hook (undefined: no from/to). */
    private readonly before: Packet | undefined,
    private readonly after: Packet | undefined,
    readonly why?: string,
  ) {}

  get from(): string | undefined {
    return this.before && (this.fromText ??= flowText(this.before));
  }

  get to(): string | undefined {
    return this.after && (this.toText ??= flowText(this.after));
  }

  toJSON(): NatStep {
    // Keys added in order, present only when set (spreads of conditional literals took V8's slow path).
    const o: Mutable<NatStep> = { hook: this.hook, manip: this.manip, kind: this.kind };
    if (this.by) o.by = this.by;
    if (this.before) o.from = this.from;
    if (this.after) o.to = this.to;
    if (this.why !== undefined) o.why = this.why;
    return o;
  }
}
