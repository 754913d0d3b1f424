/**
 * `ctsim test` for experiments: the system-under-test kind that claims check files with `experiment: FILE` (a
 * `ctsim run` experiment file, src/sim/net/experiment.ts; today the tuple-space table of seed 003). The
 * experiment runs once per check file (it is deterministic: seeded); each expectation selects cells of its table
 * by `mode:` (column: none = LVS only, nat = LVS + NAT-mode proxy, tproxy = LVS + pure TPROXY) and `clients:`
 * (rows; default every row), and checks them with `failures:` (a rate within a tolerance, bounds, or below/above
 * another column in the same row) and `trend:` (increasing / decreasing / constant with clients). Every unmet
 * condition is one diff naming the column and row (`failures.max (nat, 1000 clients)`) at the key's
 * file:line:column. Format: ./schema.ts.
 *
 * Not a kernel file: ctsim's own test runner over a tuple-level model (the kernel facts live in
 * src/sim/net/devices/tuple_space.ts). A top-level `seed:` replaces the experiment's seed.
 * Leaves out on purpose: per-case experiment parameters (a case runs the file's experiment as written), the
 * model's failure reasons and attempt counts (only the table's rates can be checked).
 */
import type { Diagnostic } from "../errors";
import { InputError } from "../errors";
import { parseExperiment, runExperiment } from "../sim/net/experiment";
import type { Experiment, ExperimentResult } from "../sim/net/experiment";
import type { TupleSpaceRow } from "../sim/net/devices/tuple_space";
import type { CheckFile, ExperimentMode, Expectation, FailuresWant, Loc, Trend } from "./schema";
import { EXPERIMENT_EXPECT_KEYS } from "./schema";
import type { FieldDiff } from "./expect";
import type { CheckEnv, PreparedSubject, SubjectKind } from "./run";
import { readAt } from "./run";

/** The allowed difference for `failures: RATE` without a tolerance: half the table's last digit (0.1%). */
export const DEFAULT_TOLERANCE = 0.0005;

/** Column titles of the table (src/sim/net/devices/tuple_space.ts formatTupleSpaceTable). */
export const MODE_TITLES: Readonly<Record<ExperimentMode, string>> = {
  none: "LVS only",
  nat: "LVS + NAT-mode proxy",
  tproxy: "LVS + pure TPROXY",
};

function located(loc: Loc, code: string, message: string): InputError {
  return new InputError({ ...loc, code, message });
}

/** A rate as a percentage with at most two decimals (0.05143 -> "5.14%"). */
function pct(x: number): string {
  return `${Number((x * 100).toFixed(2))}%`;
}

function cell(row: TupleSpaceRow, mode: ExperimentMode): number {
  return row[mode];
}

/** Compares one expectation with the experiment's rows. */
export function compareExperiment(rows: readonly TupleSpaceRow[], x: Expectation): FieldDiff[] {
  const out: FieldDiff[] = [];
  const emit = (loc: Loc, field: string, want: string, got: string) =>
    out.push({ packet: 0, field, want, got, loc });
  const mode = x.mode!.value;
  let selected: TupleSpaceRow[];
  if (x.clients) {
    selected = [];
    for (const n of x.clients.value) {
      const row = rows.find((r) => r.clients === n);
      if (row) selected.push(row);
      else
        emit(
          x.clients.loc,
          "clients",
          `a row for ${n} clients`,
          `the experiment has rows for ${rows.map((r) => r.clients).join(", ")} clients`,
        );
    }
  } else selected = [...rows];
  selected.sort((a, b) => a.clients - b.clients);
  for (const f of x.fields) {
    if (f.key === "failures") {
      const w = f.want as FailuresWant;
      const at = (k: "value" | "min" | "max" | "below" | "above") => w.locs?.[k] ?? f.loc;
      for (const r of selected) {
        const got = cell(r, mode);
        const where = `(${mode}, ${r.clients} clients)`;
        if (w.value !== undefined) {
          const tol = w.tolerance ?? DEFAULT_TOLERANCE;
          if (Math.abs(got - w.value) > tol + 1e-12)
            emit(at("value"), `failures ${where}`, `${pct(w.value)} ± ${pct(tol)}`, pct(got));
        }
        if (w.min !== undefined && got < w.min - 1e-12)
          emit(at("min"), `failures.min ${where}`, `>= ${pct(w.min)}`, pct(got));
        if (w.max !== undefined && got > w.max + 1e-12)
          emit(at("max"), `failures.max ${where}`, `<= ${pct(w.max)}`, pct(got));
        if (w.below !== undefined && !(got < cell(r, w.below)))
          emit(
            at("below"),
            `failures.below ${where}`,
            `below ${w.below} (${pct(cell(r, w.below))})`,
            pct(got),
          );
        if (w.above !== undefined && !(got > cell(r, w.above)))
          emit(
            at("above"),
            `failures.above ${where}`,
            `above ${w.above} (${pct(cell(r, w.above))})`,
            pct(got),
          );
      }
    } else if (f.key === "trend") {
      const trend = f.want as Trend;
      const values = selected.map((r) => cell(r, mode));
      let bad = -1;
      for (let i = 1; i < values.length && bad < 0; i++) {
        const [a, b] = [values[i - 1], values[i]];
        const ok = trend === "increasing" ? b > a : trend === "decreasing" ? b < a : b === a;
        if (!ok) bad = i;
      }
      if (selected.length < 2)
        emit(f.loc, `trend (${mode})`, `${trend} over 2 rows or more`, `${selected.length} row(s)`);
      else if (bad >= 0) {
        const series = selected.map((r) => `${r.clients}: ${pct(cell(r, mode))}`).join(", ");
        emit(
          f.loc,
          `trend (${mode})`,
          `${trend} with clients`,
          `${series} (not ${trend} from ${selected[bad - 1].clients} to ${selected[bad].clients} clients)`,
        );
      }
    }
  }
  return out;
}

/** Keys of a case or expectation that mean nothing for an experiment: errors at their location. */
function rejectOtherKeys(check: CheckFile): void {
  const own = EXPERIMENT_EXPECT_KEYS as readonly string[];
  for (const c of check.cases) {
    if (c.packets.trim() !== "")
      throw located(c.loc, "CHECK_BAD_KEY", `case "${c.name}": packets: not with experiment:`);
    if (c.node) throw located(c.node.loc, "CHECK_BAD_KEY", "node: not with experiment:");
    if (c.rules) throw located(c.rules.loc, "CHECK_BAD_KEY", "rules: not with experiment:");
    const other = (
      [
        ["in", c.in],
        ["sysctl", c.sysctl],
        ["kernel", c.kernel],
        ["traffic", c.traffic],
        ["until", c.until],
        ["interval", c.interval],
      ] as const
    ).find(([, v]) => v !== undefined);
    if (other) throw located(c.loc, "CHECK_BAD_KEY", `case "${c.name}": ${other[0]}: not with experiment:`);
    for (const x of c.expect) {
      const f = x.fields.find((y) => !own.includes(y.key));
      if (f)
        throw located(
          f.loc,
          "CHECK_BAD_KEY",
          `${f.key}: not with experiment: (an experiment expectation checks ${own.join(", ")})`,
        );
      const sel = x.packet > 0 ? "packet" : x.node ? "node" : x.match ? "match" : x.flow ? "flow" : undefined;
      if (sel !== undefined || x.after !== undefined)
        throw located(
          x.loc,
          "CHECK_BAD_KEY",
          `${sel ?? "after"}: not with experiment: (select cells with mode: and clients:)`,
        );
      if (!x.mode)
        throw located(
          x.loc,
          "CHECK_MISSING_KEY",
          "mode: which column? none (LVS only), nat (NAT-mode proxy) or tproxy (pure TPROXY)",
        );
    }
  }
}

/** The experiment kind: `experiment: FILE` (plus an optional `seed:` replacing the experiment's). */
export const EXPERIMENT_SUBJECT: SubjectKind = {
  name: "experiment",
  keys: ["experiment"],
  claims: (check) => check.subject.keys.has("experiment"),
  prepare(check: CheckFile, env: CheckEnv): PreparedSubject {
    const keys = check.subject.keys;
    const key = keys.get("experiment")!;
    for (const k of ["host", "rules", "kernel", "sysctl", "backend", "allow-unknown", "topology", "until"]) {
      const v = keys.get(k);
      if (v) throw located(v.loc, "CHECK_BAD_KEY", `${k}: not with experiment:`);
    }
    if (typeof key.value !== "string" || key.value === "")
      throw located(
        key.loc,
        "CHECK_BAD_VALUE",
        "experiment: expected a file path (a ctsim run experiment file)",
      );
    const { path, text } = readAt(env, check, key, "experiment");
    const parsed = parseExperiment(text, path); // InputError at the experiment file's line
    if (!parsed)
      throw located(
        key.loc,
        "CHECK_BAD_VALUE",
        `experiment: ${path} has no experiment: key (is it a topology?)`,
      );
    const seedK = keys.get("seed");
    let experiment: Experiment = parsed;
    if (seedK) {
      if (typeof seedK.value !== "number" && typeof seedK.value !== "string")
        throw located(seedK.loc, "CHECK_BAD_VALUE", "seed: expected a number or a word");
      experiment = { ...parsed, params: { ...parsed.params, seed: seedK.value } };
    }
    rejectOtherKeys(check);
    let result: ExperimentResult | undefined;
    return {
      warnings: [] as Diagnostic[],
      forCase() {
        throw new Error("experiment cases are evaluated with evaluate()");
      },
      evaluate(c) {
        result ??= runExperiment(experiment);
        const rows = result.rows;
        return { diffs: c.expect.flatMap((x) => compareExperiment(rows, x)), observations: [] };
      },
    };
  },
};
