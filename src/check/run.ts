/**
 * The `ctsim test` runner: loads a check file's system under test, sends each case's packets into a fresh one,
 * compares every expectation (./expect.ts) and collects per-case results with timings.
 *
 * Pluggable system under test: a SubjectKind claims a check file by its top-level keys and builds one
 * SystemUnderTest per case (./subject.ts). The single-host kind (`host:` + `rules:`) is built in; a network of
 * hosts (`topology:`, ./topology.ts) and an experiment table (`experiment:`, ./experiment.ts) are kinds too.
 *
 * No I/O: files are read through the injected `readFile`, time comes from the injected `now`. Exit status
 * (for the CLI): 2 when a file or case has an input error, else 1 when an expectation failed, else 0.
 * Leaves out on purpose: running cases in parallel, retries, filtering cases by name.
 */
import { posix } from "node:path";
import type { Diagnostic } from "../errors";
import { InputError } from "../errors";
import type { Packet } from "../wire/packet";
import { parseTcpdumpText } from "../wire/text";
import { parseHostFile } from "../host/hostfile";
import type { Host } from "../host/types";
import type { CheckCase, CheckFile, Loc, Located } from "./schema";
import { parseCheckFile } from "./schema";
import type { FieldDiff } from "./expect";
import { compareExpectation } from "./expect";
import type { HostScenario, Observation, SystemUnderTest } from "./subject";
import { HostSubject, loadScenarioRules } from "./subject";
import { NET_EXPECT_KEYS, experimentKeyIn } from "./schema";
import { TOPOLOGY_SUBJECT } from "./topology";
import { EXPERIMENT_SUBJECT } from "./experiment";

export interface CheckEnv {
  /** Reads a file by the path as resolved against the check file; throws on failure. */
  readFile(path: string): string;
  /** A millisecond clock for timings (default: none, all times 0). */
  now?(): number;
  /** Extra system-under-test kinds, tried before the built-in single host. */
  subjectKinds?: readonly SubjectKind[];
}

/** Builds systems under test for the cases of one check file. */
export interface PreparedSubject {
  /** A fresh system for one case (state is never shared between cases). */
  forCase(c: CheckCase): SystemUnderTest;
  /** Warnings to show (rule-set warnings, unmodelled sysctls). */
  readonly warnings: readonly Diagnostic[];
  /**
   * Kinds whose expectations are not per packet and node (networks: paths, loops, sockets) run a whole case
   * here instead of through forCase: the diffs, and per input packet the observations to report.
   */
  evaluate?(c: CheckCase, packets: readonly Packet[]): { diffs: FieldDiff[]; observations: Observation[][] };
}

export interface SubjectKind {
  readonly name: string;
  /** Top-level keys of the check file this kind reads (besides `cases`). */
  readonly keys: readonly string[];
  /** True when the check file is for this kind (e.g. it has `topology:`). */
  claims(check: CheckFile): boolean;
  /** Loads what the files name; throws InputError on bad input. */
  prepare(check: CheckFile, env: CheckEnv): PreparedSubject;
}

export type CaseStatus = "passed" | "failed" | "error";

export interface CaseResult {
  readonly name: string;
  readonly loc: Loc;
  readonly status: CaseStatus;
  readonly diffs: readonly FieldDiff[];
  /** The input error that stopped the case. */
  readonly error?: Diagnostic;
  readonly timeMs: number;
  /** Per input packet, the observations of every node. */
  readonly observations: readonly (readonly Observation[])[];
  /** Where each packet came from in the check file (line). */
  readonly packetLines: readonly number[];
}

export interface FileResult {
  readonly file: string;
  /** Errors that kept the file from running (parse errors, unreadable host or rules). */
  readonly errors: readonly Diagnostic[];
  readonly warnings: readonly Diagnostic[];
  readonly cases: readonly CaseResult[];
  readonly timeMs: number;
}

export interface RunSummary {
  readonly files: readonly FileResult[];
  readonly passed: number;
  readonly failed: number;
  readonly errors: number;
  readonly exitCode: 0 | 1 | 2;
}

/** A path written in a check file, relative to the check file. */
export function resolveFrom(checkFile: string, p: string): string {
  return posix.isAbsolute(p) ? p : posix.join(posix.dirname(checkFile), p);
}

function diagOf(err: unknown, fallback: Loc): Diagnostic {
  if (err instanceof InputError) return err.diagnostic;
  // Not the check file's fault: an emulator bug. Still reported per case so the other cases run.
  return {
    ...fallback,
    code: "CHECK_INTERNAL",
    message: `internal error: ${(err as Error)?.message ?? String(err)}`,
  };
}

/** Reads the file a check-file key names (`host:`, `topology:`, `experiment:`), relative to the check file. */
export function readAt(
  env: CheckEnv,
  check: CheckFile,
  what: Located<unknown>,
  key: string,
): { path: string; text: string } {
  if (typeof what.value !== "string" || what.value === "")
    throw new InputError({ ...what.loc, code: "CHECK_BAD_VALUE", message: `${key}: expected a file path` });
  const path = resolveFrom(check.file, what.value);
  try {
    return { path, text: env.readFile(path) };
  } catch (err) {
    throw new InputError({
      ...what.loc,
      code: "CHECK_READ",
      message: `${key}: cannot read ${path}: ${(err as Error)?.message ?? String(err)}`,
    });
  }
}

function sysctlOf(v: unknown): Record<string, string> {
  return v && typeof v === "object" ? (v as Record<string, string>) : {};
}

/** The built-in kind: one emulated host (`host:` + `rules:`). */
export const HOST_SUBJECT: SubjectKind = {
  name: "host",
  keys: ["host", "rules", "kernel", "sysctl", "backend", "seed", "allow-unknown"],
  claims: (check) => check.subject.keys.has("host"),
  prepare(check, env) {
    const keys = check.subject.keys;
    const hostKey = keys.get("host")!;
    const rulesKey = keys.get("rules");
    if (!rulesKey)
      throw new InputError({
        file: check.file,
        line: hostKey.loc.line,
        column: 1,
        code: "CHECK_MISSING_KEY",
        message: "missing rules (the rule set file)",
      });
    rejectNetworkKeys(check);
    const hostFile = readAt(env, check, hostKey, "host");
    const host: Host = parseHostFile(hostFile.text, hostFile.path);
    const backend = keys.get("backend");
    if (backend && backend.value !== "legacy" && backend.value !== "nft")
      throw new InputError({ ...backend.loc, code: "CHECK_BAD_VALUE", message: "backend: legacy or nft" });
    const seed = keys.get("seed")?.value;
    const base: HostScenario = {
      host,
      rulesText: "",
      ...(keys.get("kernel") ? { kernel: String(keys.get("kernel")!.value) } : {}),
      ...(backend ? { backend: backend.value as "legacy" | "nft" } : {}),
      sysctl: sysctlOf(keys.get("sysctl")?.value),
      ...(typeof seed === "number" || typeof seed === "string" ? { seed } : {}),
      allowUnknown: keys.get("allow-unknown")?.value === true,
    };
    const warnings: Diagnostic[] = [];
    const rulesCache = new Map<string, HostScenario>();
    const scenarioFor = (loc: Located<unknown>): HostScenario => {
      const key = String(loc.value);
      let s = rulesCache.get(key);
      if (s) return s;
      const r = readAt(env, check, loc, "rules");
      s = { ...base, rulesText: r.text, rulesFile: r.path };
      const loaded = loadScenarioRules(s);
      if (loaded.errors.length > 0) throw new InputError(loaded.errors[0]);
      warnings.push(...loaded.warnings);
      rulesCache.set(key, s);
      return s;
    };
    scenarioFor(rulesKey);
    return {
      warnings,
      forCase(c) {
        const s = scenarioFor(c.rules ?? rulesKey);
        const scenario: HostScenario = {
          ...s,
          ...(c.kernel ? { kernel: c.kernel } : {}),
          sysctl: { ...s.sysctl, ...(c.sysctl ?? {}) },
        };
        return new HostSubject(scenario);
      },
    };
  },
};

/** Network-only keys in a single-host check file are errors at their location. */
function rejectNetworkKeys(check: CheckFile): void {
  const net = NET_EXPECT_KEYS as readonly string[];
  const exp = experimentKeyIn(check);
  if (exp)
    throw new InputError({ ...exp.loc, code: "CHECK_BAD_KEY", message: `${exp.key}: only with experiment:` });
  for (const c of check.cases) {
    if (c.node)
      throw new InputError({ ...c.node.loc, code: "CHECK_BAD_KEY", message: "node: only with topology:" });
    if (c.traffic !== undefined || c.until !== undefined || c.interval !== undefined)
      throw new InputError({
        ...c.loc,
        code: "CHECK_BAD_KEY",
        message: `case "${c.name}": traffic/until/interval: only with topology:`,
      });
    for (const x of c.expect) {
      const f = x.fields.find((y) => net.includes(y.key));
      if (f)
        throw new InputError({ ...f.loc, code: "CHECK_BAD_KEY", message: `${f.key}: only with topology:` });
      if (x.match || x.flow || x.after !== undefined)
        throw new InputError({
          ...x.loc,
          code: "CHECK_BAD_KEY",
          message: "match/flow/after: only with topology:",
        });
    }
  }
}

/** Parses a case's packets; errors point into the check file. */
export function casePackets(check: CheckFile, c: CheckCase): { packets: Packet[]; lines: number[] } {
  const r = parseTcpdumpText(c.packets, {
    file: check.file,
    ...(c.in !== undefined ? { defaultIface: c.in } : {}),
  });
  const shift = (d: Diagnostic): Diagnostic => ({
    ...d,
    file: check.file,
    ...(d.line !== undefined ? { line: d.line + c.packetsLine - 1 } : {}),
    ...(d.column !== undefined ? { column: d.column + c.packetsIndent } : {}),
    ...(d.excerpt !== undefined ? { excerpt: " ".repeat(c.packetsIndent) + d.excerpt } : {}),
  });
  if (r.errors.length > 0) throw new InputError(shift(r.errors[0]));
  const lines = r.records.filter((x) => x.kind === "packet").map((x) => x.line + c.packetsLine - 1);
  if (r.packets.length === 0)
    throw new InputError({
      ...c.loc,
      code: "CHECK_NO_PACKETS",
      message: `case "${c.name}": packets: no packet lines`,
    });
  return { packets: r.packets, lines };
}

function runCase(check: CheckFile, subject: PreparedSubject, c: CheckCase, env: CheckEnv): CaseResult {
  const t0 = env.now?.() ?? 0;
  const done = (
    status: CaseStatus,
    diffs: FieldDiff[],
    observations: Observation[][],
    lines: number[],
    error?: Diagnostic,
  ): CaseResult => ({
    name: c.name,
    loc: c.loc,
    status,
    diffs,
    ...(error ? { error } : {}),
    timeMs: (env.now?.() ?? 0) - t0,
    observations,
    packetLines: lines,
  });
  let packets: Packet[];
  let lines: number[];
  try {
    if (subject.evaluate && c.packets.trim() === "") ({ packets, lines } = { packets: [], lines: [] });
    else ({ packets, lines } = casePackets(check, c));
  } catch (err) {
    return done("error", [], [], [], diagOf(err, c.loc));
  }
  if (subject.evaluate) {
    try {
      const r = subject.evaluate(c, packets);
      return done(r.diffs.length ? "failed" : "passed", r.diffs, r.observations, lines);
    } catch (err) {
      return done("error", [], [], lines, diagOf(err, c.loc));
    }
  }
  const observations: Observation[][] = [];
  try {
    const sut = subject.forCase(c);
    for (const p of packets) observations.push(sut.send(p));
    const diffs: FieldDiff[] = [];
    for (const x of c.expect) {
      if (x.packet === 0) {
        diffs.push({
          packet: 0,
          field: "packet",
          want: "a packet number",
          got: `${packets.length} packet(s)`,
          loc: x.loc,
        });
        continue;
      }
      const obs = observations[x.packet - 1];
      if (!obs) {
        diffs.push({
          packet: x.packet,
          field: "packet",
          want: `packet ${x.packet}`,
          got: `${packets.length} packet(s)`,
          loc: x.loc,
        });
        continue;
      }
      const o = x.node !== undefined ? obs.find((n) => n.node === x.node) : obs[0];
      if (!o) {
        diffs.push({
          packet: x.packet,
          node: x.node,
          field: "node",
          want: x.node!,
          got: `the packet did not reach it (nodes: ${obs.map((n) => n.node).join(", ")})`,
          loc: x.loc,
        });
        continue;
      }
      diffs.push(...compareExpectation(x, o));
    }
    return done(diffs.length ? "failed" : "passed", diffs, observations, lines);
  } catch (err) {
    return done("error", [], observations, lines, diagOf(err, c.loc));
  }
}

/** Runs one check file given its text. */
export function runCheckText(text: string, file: string, env: CheckEnv): FileResult {
  const t0 = env.now?.() ?? 0;
  const kinds = [...(env.subjectKinds ?? []), EXPERIMENT_SUBJECT, TOPOLOGY_SUBJECT, HOST_SUBJECT];
  const extra = kinds.flatMap((k) => k.keys);
  const parsed = parseCheckFile(text, file, extra);
  const finish = (
    errors: Diagnostic[],
    warnings: readonly Diagnostic[],
    cases: CaseResult[],
  ): FileResult => ({
    file,
    errors,
    warnings,
    cases,
    timeMs: (env.now?.() ?? 0) - t0,
  });
  if (!parsed.check) return finish([...parsed.errors], [], []);
  const check = parsed.check;
  const kind = kinds.find((k) => k.claims(check));
  if (!kind)
    return finish(
      [
        {
          file,
          line: 1,
          column: 1,
          code: "CHECK_NO_SUBJECT",
          message: `nothing to test: give host: and rules:, topology: or experiment: (${kinds.map((k) => k.name).join(", ")})`,
        },
      ],
      [],
      [],
    );
  let prepared: PreparedSubject;
  try {
    prepared = kind.prepare(check, env);
  } catch (err) {
    return finish([diagOf(err, { file, line: 1, column: 1 })], [], []);
  }
  const cases = check.cases.map((c) => runCase(check, prepared, c, env));
  return finish([], prepared.warnings, cases);
}

/** Runs check files by path (read through env.readFile). */
export function runCheckFiles(files: readonly string[], env: CheckEnv): RunSummary {
  const results: FileResult[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = env.readFile(f);
    } catch (err) {
      results.push({
        file: f,
        errors: [{ file: f, code: "CHECK_READ", message: `cannot read: ${(err as Error)?.message ?? err}` }],
        warnings: [],
        cases: [],
        timeMs: 0,
      });
      continue;
    }
    results.push(runCheckText(text, f, env));
  }
  return summarise(results);
}

export function summarise(files: readonly FileResult[]): RunSummary {
  let passed = 0;
  let failed = 0;
  let errors = 0;
  for (const f of files) {
    errors += f.errors.length;
    for (const c of f.cases) {
      if (c.status === "passed") passed++;
      else if (c.status === "failed") failed++;
      else errors++;
    }
  }
  return { files, passed, failed, errors, exitCode: errors > 0 ? 2 : failed > 0 ? 1 : 0 };
}
