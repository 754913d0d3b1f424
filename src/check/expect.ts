/**
 * Compares a check file's expectations with what the system under test observed, field by field, so a failure
 * names exactly the field that differed (`leaves[0].src: want 192.168.100.104, got 192.168.100.105`).
 *
 * Format of the expectations: ./schema.ts. Vocabulary of the observations: ./subject.ts. No kernel code is
 * mirrored here. Leaves out on purpose: regular expressions and numeric ranges in expected values.
 */
import type { Expectation, FieldExpectation, Loc } from "./schema";
import type { ConntrackFields, LeftPacket, Observation } from "./subject";

export interface FieldDiff {
  /** 1-based packet number in the case. */
  readonly packet: number;
  readonly node?: string;
  /** The field that differed: `fate`, `leaves[0].src`, `conntrack.reply.dst`, `matched[1]`. */
  readonly field: string;
  readonly want: string;
  readonly got: string;
  /** Where the expectation was written. */
  readonly loc: Loc;
}

export function show(v: unknown): string {
  if (v === undefined) return "(nothing)";
  if (v === null) return "none";
  if (Array.isArray(v)) return `[${v.map(show).join(", ")}]`;
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function same(want: unknown, got: unknown): boolean {
  if (want === null || want === undefined) return got === null || got === undefined;
  return String(want) === String(got);
}

const RULE_NUM = /^([a-z]+):([^:\s]+):(\d+)$/;
const RULE_LABEL = /^([a-z]+):([^:\s]+):(rule|policy|return):(\d+)$/;
const RULE_POLICY = /^([a-z]+):([^:\s]+):policy$/;

function squash(s: string): string {
  return s.trim().replace(/\s+/g, " ");
}

/** Does an expected rule reference (label or text) name this rule? */
export function ruleMatches(want: string, label: string | undefined, text: string | undefined): boolean {
  const w = want.trim();
  let m = RULE_NUM.exec(w);
  // `table:chain:N` names the chain's N-th rule whatever its TRACE label: the kernel labels an unconditional
  // verdict rule `policy` (built-in chain) or `return` (user chain), like the chain's tail.
  if (m) {
    const [, table, chain, num] = m;
    return ["rule", "return", "policy"].some((c) => label === `${table}:${chain}:${c}:${num}`);
  }
  if (RULE_LABEL.test(w)) return label === w;
  m = RULE_POLICY.exec(w);
  if (m) return label?.startsWith(`${m[1]}:${m[2]}:policy:`) === true;
  if (text === undefined) return false;
  const t = squash(text);
  const x = squash(w);
  // `-A FORWARD ...` as written, or the same without the command (`-m conntrack ... -j DROP`).
  return t === x || t.replace(/^-[AI] \S+ /, "") === x.replace(/^-[AI] \S+ /, "");
}

function ruleShow(label: string | undefined, text: string | undefined): string {
  if (!label) return "(no rule)";
  return text ? `${label} (${squash(text)})` : label;
}

function leftShow(p: LeftPacket): string {
  return `${p.iface}: ${p.line}`;
}

function conntrackShow(c: ConntrackFields | null): string {
  return c ? c.line : "none (no conntrack entry)";
}

function natShow(o: Observation): string {
  const n = o.nat;
  const tuple = `${n.src}${n.sport !== undefined ? `:${n.sport}` : ""} > ${n.dst}${n.dport !== undefined ? `:${n.dport}` : ""}`;
  return `${n.kind} ${tuple}${n.by ? ` (${n.by})` : ""}`;
}

export function compareFields(
  want: Readonly<Record<string, unknown>>,
  got: Readonly<Record<string, unknown>>,
  prefix: string,
  out: (field: string, want: string, got: string) => void,
): void {
  for (const [k, v] of Object.entries(want)) {
    const g = got[k];
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      compareFields(
        v as Record<string, unknown>,
        (g ?? {}) as Record<string, unknown>,
        `${prefix}.${k}`,
        out,
      );
    } else if (Array.isArray(v)) {
      const gl = Array.isArray(g) ? g.map(String) : [];
      const missing = v.map(String).filter((x) => !gl.includes(x));
      if (missing.length > 0) out(`${prefix}.${k}`, show(v), show(gl));
    } else if (!same(v, g)) out(`${prefix}.${k}`, show(v), show(g));
  }
}

function compareOne(
  f: FieldExpectation,
  o: Observation,
  emit: (field: string, w: string, g: string) => void,
) {
  const w = f.want;
  switch (f.key) {
    case "ctstate":
      if (!same(w, o.ctstate)) emit("ctstate", show(w), o.ctstate ?? "(no conntrack lookup)");
      return;
    case "ctinfo":
      if (!same(w, o.ctinfo)) emit("ctinfo", show(w), o.ctinfo ?? "(none)");
      return;
    case "fate":
      if (!same(w, o.fate)) emit("fate", show(w), `${o.fate} (${o.fateText})`);
      return;
    case "rule":
      if (!ruleMatches(String(w), o.rule, o.ruleText)) emit("rule", show(w), ruleShow(o.rule, o.ruleText));
      return;
    case "matched": {
      const list = (w as (string | undefined)[]).filter((x): x is string => x !== undefined);
      list.forEach((x, i) => {
        if (!o.matched.some((m) => ruleMatches(x, m.label, m.text)))
          emit(
            `matched[${i}]`,
            x,
            o.matched.length ? o.matched.map((m) => ruleShow(m.label, m.text)).join("; ") : "no rule matched",
          );
      });
      return;
    }
    case "conntrack": {
      if (w === "none") {
        if (o.conntrack) emit("conntrack", "none", o.conntrack.line);
        return;
      }
      if (!o.conntrack) {
        emit("conntrack", typeof w === "string" ? w : show(w), conntrackShow(null));
        return;
      }
      if (typeof w === "string") {
        const have = o.conntrack.line.split(/\s+/);
        const missing = w
          .trim()
          .split(/\s+/)
          .filter((t) => !have.includes(t));
        if (missing.length > 0) emit("conntrack", w, `${o.conntrack.line} (missing: ${missing.join(" ")})`);
        return;
      }
      compareFields(
        w as Record<string, unknown>,
        o.conntrack as unknown as Record<string, unknown>,
        "conntrack",
        emit,
      );
      return;
    }
    case "nat": {
      const translated = o.nat.kind === "binding" || o.nat.kind === "rewrite";
      if (w === "none") {
        if (translated) emit("nat", "none", natShow(o));
        return;
      }
      const want = w as Record<string, unknown>;
      compareFields(want, o.nat as unknown as Record<string, unknown>, "nat", (field, ww, gg) =>
        emit(field, ww, `${gg} (${natShow(o)})`),
      );
      return;
    }
    case "leaves":
      comparePacketList(w, o.leaves, "leaves", emit);
      return;
    default:
      // Network keys (path, loop, received, sent, socket): compared by src/check/topology.ts.
      return;
  }
}

/**
 * A list of packets against `none`/[] (nothing), `{every: fields}` (each packet has these fields) or a list
 * (exactly these packets, paired order-free: a host may send an ICMP redirect before the packet it forwards).
 * `name` prefixes the field names of the diffs (`leaves[0].src`, `received[1].flags`).
 */
export function comparePacketList(
  w: unknown,
  got: readonly LeftPacket[],
  name: string,
  emit: (field: string, w: string, g: string) => void,
): void {
  if (Array.isArray(w)) {
    if (w.length === 0) {
      if (got.length > 0) emit(name, "none", got.map(leftShow).join(" | "));
      return;
    }
    if (got.length !== w.length)
      emit(
        name,
        `${w.length} packet(s)`,
        got.length ? `${got.length}: ${got.map(leftShow).join(" | ")}` : "nothing",
      );
    // Pair each expected packet with the unused packet that differs in the fewest fields.
    const used = new Set<number>();
    w.forEach((x, i) => {
      let best = -1;
      let bestDiffs: [string, string, string][] = [];
      got.forEach((p, k) => {
        if (used.has(k)) return;
        const d: [string, string, string][] = [];
        compareFields(
          x as Record<string, unknown>,
          p as unknown as Record<string, unknown>,
          `${name}[${i}]`,
          (fl, ww, gg) => d.push([fl, ww, `${gg} (${leftShow(p)})`]),
        );
        if (best < 0 || d.length < bestDiffs.length) {
          best = k;
          bestDiffs = d;
        }
      });
      if (best < 0) return;
      used.add(best);
      for (const [fl, ww, gg] of bestDiffs) emit(fl, ww, gg);
    });
    return;
  }
  const every = (w as { every: Record<string, unknown> }).every;
  got.forEach((p, i) =>
    compareFields(every, p as unknown as Record<string, unknown>, `${name}[${i}]`, (fl, ww, gg) =>
      emit(fl, ww, `${gg} (${leftShow(p)})`),
    ),
  );
}

/** Whether a packet has every field of `want` (as in `leaves`). */
export function packetHas(want: Readonly<Record<string, unknown>>, p: LeftPacket): boolean {
  let ok = true;
  compareFields(want, p as unknown as Record<string, unknown>, "", () => {
    ok = false;
  });
  return ok;
}

/** One failed field of expectation `x`, located at `loc` (the field's line in the check file). */
export function fieldDiff(x: Expectation, field: string, want: string, got: string, loc: Loc): FieldDiff {
  return { packet: x.packet, ...(x.node !== undefined ? { node: x.node } : {}), field, want, got, loc };
}

/** The fields of `x` that `obs` does not satisfy (empty: the expectation holds). */
export function compareExpectation(x: Expectation, obs: Observation): FieldDiff[] {
  const out: FieldDiff[] = [];
  for (const f of x.fields)
    compareOne(f, obs, (field, want, got) => out.push(fieldDiff(x, field, want, got, f.loc)));
  return out;
}
