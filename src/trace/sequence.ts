/**
 * A text sequence diagram of the packets that crossed links in a `ctsim run` (ctsim's own format, not a kernel
 * one): one column per node in order of first appearance, one row per crossing, the arrow from sender to
 * receiver, and the packet as tcpdump would summarise it on the right:
 *
 *     time       client      router      natgw
 *     0.000000   |---------->|           |           tcp 192.168.100.105:1836 > 2.2.2.2:80 [S] ttl 64
 *     0.000000   |           |---------->|           tcp 192.168.100.105:1836 > 2.2.2.2:80 [S] ttl 63
 *     0.000000   |           |<----------|           tcp 192.168.100.104:1836 > 2.2.2.2:80 [S] ttl 62
 *
 * A frame no station took ends in `x`. Leaves out on purpose: colour (the CLI adds none here), wrapping.
 */
import type { Packet } from "../wire/packet";
import { packetBrief } from "./summary";

export interface SequenceCrossing {
  readonly time: number;
  readonly from: { readonly node: string };
  readonly to: readonly { readonly node: string }[];
  readonly packet: Packet;
  readonly link?: string;
}

export interface SequenceOptions {
  /** Column width (default 12). */
  readonly width?: number;
  /** Column order; nodes not listed follow in order of appearance. */
  readonly order?: readonly string[];
  /** At most this many rows; the rest is summarised (default unlimited). */
  readonly maxRows?: number;
}

export function formatSequence(crossings: readonly SequenceCrossing[], opts: SequenceOptions = {}): string[] {
  const w = Math.max(opts.width ?? 12, 4);
  const cols: string[] = [...(opts.order ?? [])];
  const col = (n: string): number => {
    let i = cols.indexOf(n);
    if (i < 0) i = cols.push(n) - 1;
    return i;
  };
  for (const c of crossings) {
    col(c.from.node);
    for (const t of c.to) col(t.node);
  }
  const out: string[] = [];
  const head = `${"time".padEnd(11)}${cols.map((n) => (n.length >= w ? n.slice(0, w - 1) + " " : n.padEnd(w))).join("")}`;
  out.push(head.trimEnd());
  const max = opts.maxRows ?? Infinity;
  let rows = 0;
  for (const c of crossings) {
    const targets = c.to.length ? c.to.map((t) => col(t.node)) : [-1];
    for (const t of targets) {
      if (rows >= max) {
        rows++;
        continue;
      }
      rows++;
      const a = col(c.from.node);
      const line: string[] = [];
      for (let i = 0; i < cols.length; i++) line.push("|".padEnd(w));
      let row = line.join("");
      if (t < 0) {
        // nobody took the frame: a short arrow ending in x
        const s = a * w + 1;
        const arrow = "-".repeat(Math.max(w - 3, 1)) + "x";
        row = row.slice(0, s) + arrow + row.slice(s + arrow.length);
      } else if (t !== a) {
        const lo = Math.min(a, t) * w;
        const hi = Math.max(a, t) * w;
        const body = "-".repeat(hi - lo - 2);
        const arrow = t > a ? `${body}>` : `<${body}`;
        row = row.slice(0, lo + 1) + arrow + row.slice(hi);
      }
      const ttl = c.packet.ip.ttl;
      out.push(`${c.time.toFixed(6).padEnd(11)}${row}${packetBrief(c.packet)} ttl ${ttl}`);
    }
  }
  if (rows > max) out.push(`... ${rows - max} more crossings`);
  return out;
}
