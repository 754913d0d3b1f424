/**
 * Text rendering of `ctsim explain`: a heading per packet, then sections (Conntrack, NAT, Rules, Route, Fate)
 * each naming the kernel functions behind it, then "What would change the outcome" with every candidate fix and
 * what it did when tried in the emulator. ctsim's own format; colour is the caller's (a Style).
 */
import type { ExplainSection, Explanation } from "./explain";

export interface ExplainStyle {
  readonly title: (s: string) => string;
  readonly heading: (s: string) => string;
  readonly dim: (s: string) => string;
  readonly good: (s: string) => string;
  readonly bad: (s: string) => string;
}

const id = (s: string) => s;
export const PLAIN_EXPLAIN: ExplainStyle = { title: id, heading: id, dim: id, good: id, bad: id };

function section(s: ExplainSection, st: ExplainStyle, extra: string[] = []): string {
  const refs = s.kernel.map((k) => `${k.file} ${k.fn}()`).join(", ");
  let out = `  ${st.heading(s.title)}${refs ? `  ${st.dim(`[${refs}]`)}` : ""}\n`;
  for (const l of [...s.lines, ...extra]) out += `    ${l}\n`;
  return out;
}

export function formatExplanation(e: Explanation, st: ExplainStyle = PLAIN_EXPLAIN): string {
  let out = `${st.title(`Packet ${e.packet}${e.origin ? ` (${e.origin})` : ""}: ${e.brief}`)}\n`;
  out += `  ${e.line}\n`;
  out += `  Outcome: ${e.outcome}\n\n`;
  const sys = e.conntrack.sysctls.map((s) => `sysctl ${s.name} = ${s.value}: ${s.note}`);
  out += section(e.conntrack, st, sys);
  for (const n of e.notes) out += `    ${n}\n`;
  out += section(e.nat, st);
  out += section(e.rules, st);
  out += section(e.route, st);
  out += section(e.fate, st);
  out += `  ${st.heading("What would change the outcome")}  ${st.dim("(each change tried in the emulator on the same packets)")}\n`;
  if (e.fixes.length === 0) out += "    No candidate change applies to this packet.\n";
  e.fixes.forEach((f, i) => {
    out += `    ${i + 1}. ${f.change}\n`;
    out += `       ${st.dim(`why: ${f.why}`)}\n`;
    if (f.changesOutcome) {
      out += `       ${st.good("tried: changes the outcome")}: ${f.after}\n`;
      for (const x of f.effects) out += `         - ${x}\n`;
    } else out += `       ${st.bad("tried: no effect on this packet")} (${f.after})\n`;
  });
  return out;
}
