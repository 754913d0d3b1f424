/**
 * Experiments in a topology file: `experiment:` instead of `nodes:` runs a model that is not a packet-level
 * network, today the tuple-space model of seed 003 (./devices/tuple_space.ts: a cone device in front of a NAT-mode
 * or pure TPROXY proxy), and prints its table. `ctsim run FILE` runs it like a topology, so every field report
 * example runs with one command:
 *
 *     description: seed 003 - tuple-space collapse behind a TPROXY login proxy
 *     experiment:
 *       kind: tuple-space
 *       clients: [100, 500, 1000]          # rows of the table
 *       per_client_rate: 0.1               # connection attempts per client per second
 *       duration: 120                      # seconds of traffic
 *       servers: 4                         # real servers behind the proxy
 *       seed: 3
 *       hold: 1                            # optional: seconds a connection lasts
 *       time_wait: 60                      # optional: TCP_TIMEWAIT_LEN
 *       lvs_ports: [1024, 65535]           # optional
 *       proxy_ports: [32768, 60999]        # optional (ip_local_port_range)
 *
 * ctsim's own format; the kernel facts live in the model's header. Errors are InputErrors at file:line:column
 * (code TOPO_*). Leaves out on purpose: other experiment kinds, sweeping parameters other than the client count.
 */
import { LineCounter, isMap, isScalar, isSeq, parseDocument } from "yaml";
import type { Node as YamlNode } from "yaml";
import { InputError } from "../../errors";
import { formatTupleSpaceTable, tupleSpaceTable } from "./devices/tuple_space";
import type { TupleSpaceParams, TupleSpaceRow } from "./devices/tuple_space";

export interface TupleSpaceExperiment {
  readonly kind: "tuple-space";
  readonly file?: string;
  readonly description?: string;
  readonly clients: readonly number[];
  readonly params: Omit<TupleSpaceParams, "mode" | "rate"> & { readonly perClientRate: number };
}

export type Experiment = TupleSpaceExperiment;

export interface ExperimentResult {
  readonly rows: readonly TupleSpaceRow[];
  /** The table as text (the golden format of examples/seed003-tproxy/table.txt). */
  readonly table: string;
}

const KEYS = [
  "kind",
  "clients",
  "per_client_rate",
  "duration",
  "servers",
  "seed",
  "hold",
  "time_wait",
  "lvs_ports",
  "proxy_ports",
];

/** The experiment of a topology file, or undefined when the file has no `experiment:` key. */
export function parseExperiment(text: string, file?: string): Experiment | undefined {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0 || !isMap(doc.contents)) return undefined; // loadTopology reports it
  const root = doc.contents;
  const exp = root.items.find((p) => isScalar(p.key) && p.key.value === "experiment");
  if (!exp) return undefined;
  const fail = (node: unknown, code: string, message: string): never => {
    const off = (node as { range?: [number, number, number] } | null)?.range?.[0] ?? 0;
    const { line, col } = lc.linePos(off);
    throw new InputError({ file, line, column: col, code, message });
  };
  for (const p of root.items) {
    const k = isScalar(p.key) ? String(p.key.value) : "";
    if (k !== "experiment" && k !== "description")
      fail(p.key, "TOPO_UNKNOWN_KEY", `"${k}" cannot be given with experiment: (only description)`);
  }
  const m = exp.value;
  if (!isMap(m)) return fail(exp.key, "TOPO_BAD_TYPE", "experiment must be a mapping");
  const get = new Map<string, YamlNode>();
  for (const p of m.items) {
    const k = isScalar(p.key) ? String(p.key.value) : "";
    if (!KEYS.includes(k))
      fail(
        p.key,
        "TOPO_UNKNOWN_KEY",
        `unknown key "${k}" in experiment (expected one of: ${KEYS.join(", ")})`,
      );
    get.set(k, p.value as YamlNode);
  }
  const num = (k: string, min: number, max: number, def?: number): number => {
    const n = get.get(k);
    if (n === undefined) {
      if (def === undefined) return fail(m, "TOPO_MISSING_KEY", `experiment needs "${k}"`);
      return def;
    }
    const v = isScalar(n) ? n.value : undefined;
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max)
      return fail(n, "TOPO_BAD_NUMBER", `${k} must be a number ${min}..${max}`);
    return v;
  };
  const range = (k: string): readonly [number, number] | undefined => {
    const n = get.get(k);
    if (n === undefined) return undefined;
    const v = isSeq(n) ? n.items.map((i) => (isScalar(i) ? i.value : undefined)) : [];
    const [a, b] = v;
    if (v.length !== 2 || typeof a !== "number" || typeof b !== "number" || a < 1 || b > 65535 || a > b)
      return fail(n, "TOPO_BAD_VALUE", `${k} must be [FIRST, LAST] ports`);
    return [a, b];
  };
  const kindN = get.get("kind");
  const kind = kindN && isScalar(kindN) ? String(kindN.value) : undefined;
  if (kind !== "tuple-space")
    fail(kindN ?? m, "TOPO_UNKNOWN_KIND", `experiment kind must be tuple-space, got "${kind ?? ""}"`);
  const clientsN = get.get("clients");
  if (!clientsN || !isSeq(clientsN) || clientsN.items.length === 0)
    return fail(clientsN ?? m, "TOPO_BAD_VALUE", "clients must be a list of client counts");
  const clients = clientsN.items.map((i) => {
    const v = isScalar(i) ? i.value : undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1)
      return fail(i, "TOPO_BAD_NUMBER", "a client count is a whole number >= 1");
    return v;
  });
  const seedN = get.get("seed");
  const seed = seedN && isScalar(seedN) ? (seedN.value as number | string) : undefined;
  const lvs = range("lvs_ports");
  const proxy = range("proxy_ports");
  const descN = root.items.find((p) => isScalar(p.key) && p.key.value === "description")?.value;
  return {
    kind: "tuple-space",
    ...(file !== undefined ? { file } : {}),
    ...(descN && isScalar(descN) ? { description: String(descN.value) } : {}),
    clients,
    params: {
      perClientRate: num("per_client_rate", 0, 1e6),
      duration: num("duration", 0, 1e7),
      servers: num("servers", 1, 1e6),
      ...(get.has("hold") ? { hold: num("hold", 0, 1e6) } : {}),
      ...(get.has("time_wait") ? { timeWait: num("time_wait", 0, 1e6) } : {}),
      ...(lvs ? { lvsPorts: lvs } : {}),
      ...(proxy ? { proxyPorts: proxy } : {}),
      ...(seed !== undefined && seed !== null ? { seed } : {}),
    },
  };
}

export function runExperiment(e: Experiment): ExperimentResult {
  const rows = tupleSpaceTable(e.clients, e.params);
  return { rows, table: formatTupleSpaceTable(rows) };
}
