/**
 * `ctsim test` for networks: the system-under-test kind that claims check files with `topology:` (a `ctsim run`
 * topology, src/sim/net/topology.ts) instead of `host:`/`rules:`. Each case builds the network afresh, injects its
 * packets at `node:` (packet N at (N-1) x `interval` seconds) and/or runs the topology's own traffic, runs the
 * event engine (src/sim/net/engine.ts) until idle or `until:`, then checks every expectation against the run:
 *
 * - selection (./schema.ts): `match:` also sees the inner packet of a node that decapsulates (the GWLB
 *   appliance's GENEVE payload); `packet: N` limits the scope to what injected packet N caused (the engine records,
 *   per event, the event whose output sent its packet), `match:` picks the first arriving packet with given
 *   fields (at `node:`), `node:` the node, `flow:` a connect flow;
 * - the single-host keys (ctstate, conntrack, fate, rule, matched, nat, leaves) are about one node handling one
 *   packet: a Linux node's PacketReport (src/sim/host.ts, through ./subject.ts `observeReport`), a device
 *   model's hop record (fate from its words, NAT from the header rewrite, no conntrack);
 * - the network keys: `path` (nodes in causal order), `loop` (the engine's loop reports), `received`/`sent`
 *   (packets at a node), `socket` (a TCP socket's final state, error, history and retransmissions at the end).
 *
 * Not a kernel file: ctsim's own test runner. Kernel behaviour lives in the nodes (Linux 6.18 by default).
 * Leaves out on purpose: timing assertions (when a packet arrived), UDP sockets, expectations about device
 * flow tables (only Linux nodes have a conntrack entry to check).
 */
import type { Diagnostic } from "../errors";
import { InputError } from "../errors";
import type { Packet } from "../wire/packet";
import { IPPROTO_TCP } from "../wire/packet";
import { parseIpv4 } from "../wire/addr";
import type { PacketReport } from "../trace/events";
import { buildEngine, loadTopology } from "../sim/net/topology";
import type { Topology } from "../sim/net/topology";
import type { HopEvent, LoopReport, RunResult } from "../sim/net/engine";
import { packetIdentity } from "../sim/net/engine";
import type { TcpSock } from "../sim/net/tcp_endpoint";
import type { CheckCase, CheckFile, Expectation, FieldExpectation, Loc } from "./schema";
import { EXPECT_KEYS, experimentKeyIn } from "./schema";
import type { FieldDiff } from "./expect";
import { compareExpectation, compareFields, comparePacketList, fieldDiff, packetHas, show } from "./expect";
import type { FateWord, LeftPacket, Observation } from "./subject";
import { leftPacket, observeReport } from "./subject";
import type { CheckEnv, PreparedSubject, SubjectKind } from "./run";
import { readAt, resolveFrom } from "./run";

/** What one case's run produced, indexed for the checks. */
export interface NetRun {
  readonly topology: Topology;
  readonly result: RunResult;
  /** Events by seq. */
  readonly events: readonly HopEvent[];
  /**
   * A Linux node's observation of each of its packet events, taken when the event ran (the conntrack entry as it
   * was then, not at the end of the run), by event seq.
   */
  readonly observed: ReadonlyMap<number, Observation>;
  /** The packet a node's Linux datapath saw when it differs from the arriving one (a GENEVE appliance's inner). */
  readonly inner: ReadonlyMap<number, LeftPacket>;
  /** Events caused by each event. */
  readonly children: ReadonlyMap<number, readonly number[]>;
  /** The injection event of packet N (index N-1). */
  readonly injected: readonly (number | undefined)[];
}

const NODE_KEYS = new Set<string>(EXPECT_KEYS);

function located(loc: Loc, code: string, message: string): InputError {
  return new InputError({ ...loc, code, message });
}

/** Runs one case of a topology check file. */
export function runNetCase(
  topology: Topology,
  c: CheckCase,
  packets: readonly Packet[],
  defaultUntil?: number,
): NetRun {
  const withTraffic = c.traffic ?? packets.length === 0;
  const topo: Topology = withTraffic ? topology : { ...topology, traffic: [] };
  const engine = buildEngine(topo);
  if (packets.length > 0) {
    if (!c.node)
      throw located(c.loc, "CHECK_MISSING_KEY", `case "${c.name}": node: where are the packets injected?`);
    const node = topo.nodes.find((n) => n.name === c.node!.value);
    if (!node)
      throw located(
        c.node.loc,
        "CHECK_UNKNOWN_NODE",
        `node: no node "${c.node.value}" (nodes: ${topo.nodes.map((n) => n.name).join(", ")})`,
      );
    const interval = c.interval ?? 1;
    packets.forEach((p, i) => {
      const iface = p.iface ?? c.in;
      if (!iface || !node.interfaces.includes(iface))
        throw located(
          c.node!.loc,
          "CHECK_BAD_IFACE",
          `packet ${i + 1}: ${iface ? `node "${node.name}" has no interface "${iface}"` : "which interface? (write it on the line or give in:)"} (has: ${node.interfaces.join(", ")})`,
        );
      engine.inject(i * interval, node.name, iface, { ...p, iface }, `packet ${i + 1}`);
    });
  }
  const observed = new Map<number, Observation>();
  const inner = new Map<number, LeftPacket>();
  const byName = new Map(topo.nodes.map((n) => [n.name, n as { lastReceived?: PacketReport }]));
  const until = c.until ?? defaultUntil;
  const result = engine.run({
    ...(until !== undefined ? { until } : {}),
    onEvent: (e) => {
      if (e.kind !== "packet") return;
      // Linux nodes and devices wrapping a Linux datapath (GWLB appliance) leave the report of the packet.
      const n = byName.get(e.node);
      const r = n?.lastReceived;
      if (!n || !r) return;
      n.lastReceived = undefined;
      observed.set(e.seq, observeReport(e.node, r));
      const input = r.packets[0]?.input;
      if (input && e.packet && input.ip.dst !== e.packet.ip.dst)
        inner.set(e.seq, leftPacket(input.iface ?? "", input));
    },
  });
  const children = new Map<number, number[]>();
  const injected: (number | undefined)[] = packets.map(() => undefined);
  for (const e of result.events) {
    if (e.cause !== undefined) {
      const list = children.get(e.cause);
      if (list) list.push(e.seq);
      else children.set(e.cause, [e.seq]);
    }
    const m = e.kind === "packet" && e.cause === undefined ? /^packet (\d+)$/.exec(e.label ?? "") : null;
    if (m) injected[Number(m[1]) - 1] = e.seq;
  }
  return { topology: topo, result, events: result.events, observed, inner, children, injected };
}

/** `seq` and every event it caused, in seq order. */
export function descendants(run: NetRun, seq: number): number[] {
  const out = new Set<number>([seq]);
  const todo = [seq];
  while (todo.length > 0) {
    for (const c of run.children.get(todo.pop()!) ?? [])
      if (!out.has(c)) {
        out.add(c);
        todo.push(c);
      }
  }
  return [...out].sort((a, b) => a - b);
}

function deviceFate(e: HopEvent): FateWord {
  const f = e.hops[0]?.fate ?? "";
  if (/^(left|handed)/.test(f)) return "forwarded";
  if (/^dropped/.test(f)) return e.sent.length > 0 ? "rejected" : "dropped";
  if (/^delivered/.test(f)) return "local";
  return "ignored";
}

/** What one node did with the packet of one event, in check-file vocabulary. */
export function observeEvent(run: NetRun, e: HopEvent): Observation {
  const o = run.observed.get(e.seq);
  if (o) return o;
  const input = e.packet ? leftPacket(e.iface ?? "", e.packet) : undefined;
  const out = e.sent.length === 1 ? leftPacket(e.sent[0].iface, e.sent[0].packet) : undefined;
  const tuple = (p: LeftPacket) => ({
    src: p.src,
    dst: p.dst,
    ...(p.sport !== undefined ? { sport: p.sport, dport: p.dport } : {}),
  });
  const changed =
    input &&
    out &&
    out.proto === input.proto &&
    (out.src !== input.src ||
      out.dst !== input.dst ||
      out.sport !== input.sport ||
      out.dport !== input.dport);
  return {
    node: e.node,
    conntrack: null,
    fate: deviceFate(e),
    fateText: e.hops.map((h) => h.fate).join("; ") || "nothing",
    matched: [],
    nat: changed
      ? { kind: "rewrite", ...tuple(out) }
      : { kind: "none", ...(input ? tuple(input) : { src: "", dst: "" }) },
    leaves: e.sent.map((s) => leftPacket(s.iface, s.packet)),
    summary: e.hops.map((h) => `${h.summary}: ${h.fate}`),
  };
}

function eventShow(e: HopEvent): string {
  return e.packet ? `${e.node} ${leftPacket(e.iface ?? "", e.packet).line}` : `${e.node} ${e.kind}`;
}

function parseEndpoint(v: unknown): { addr?: number; port?: number } | undefined {
  if (v === undefined || v === null) return {};
  const m = /^(\d+\.\d+\.\d+\.\d+)?(?::(\d+))?$/.exec(String(v).trim());
  if (!m) return undefined;
  const addr = m[1] !== undefined ? parseIpv4(m[1]) : undefined;
  if (m[1] !== undefined && addr === undefined) return undefined;
  return { ...(addr !== undefined ? { addr } : {}), ...(m[2] !== undefined ? { port: Number(m[2]) } : {}) };
}

/** Segments a socket sent again (same flags, sequence number and length as an earlier one). */
function retransmissions(run: NetRun, node: string, sk: TcpSock): number {
  const seen = new Set<string>();
  let n = 0;
  for (const e of run.events) {
    if (e.node !== node) continue;
    for (const s of e.sent) {
      const p = s.packet;
      if (p.ip.protocol !== IPPROTO_TCP || p.l4.kind !== "tcp") continue;
      if (
        p.ip.src !== sk.laddr ||
        p.l4.srcPort !== sk.lport ||
        p.ip.dst !== sk.raddr ||
        p.l4.dstPort !== sk.rport
      )
        continue;
      const k = `${p.l4.flags}/${p.l4.seq}/${p.payloadLength}`;
      if (seen.has(k)) n++;
      else seen.add(k);
    }
  }
  return n;
}

function loopNodes(l: LoopReport): string[] {
  return [...new Set(l.hops.flatMap((h) => [h.from, h.to]))].sort();
}

function loopShow(l: LoopReport): string {
  const ttls = l.hops.map((h) => h.ttl);
  return `${l.packet}: ${l.reason}, ${l.count} crossings between ${loopNodes(l).join(", ")}, ttl down to ${Math.min(...ttls)}`;
}

/** Compares one expectation with a run. */
export function compareNet(run: NetRun, x: Expectation): FieldDiff[] {
  const out: FieldDiff[] = [];
  const emit = (f: FieldExpectation | { loc: Loc }, field: string, want: string, got: string) =>
    out.push(fieldDiff(x, field, want, got, f.loc));
  const byKey = (k: string) => x.fields.filter((f) => f.key === k);
  const nodes = run.topology.nodes.map((n) => n.name);
  if (x.node !== undefined && !nodes.includes(x.node)) {
    emit(x, "node", x.node, `no such node (nodes: ${nodes.join(", ")})`);
    return out;
  }
  // scope
  let scope: number[];
  if (x.packet > 0) {
    const inj = run.injected[x.packet - 1];
    if (inj === undefined) {
      emit(x, "packet", `packet ${x.packet}`, "it was not injected before the run stopped");
      return out;
    }
    scope = descendants(run, inj);
  } else scope = run.events.map((e) => e.seq);
  if (x.after !== undefined) scope = scope.filter((q) => run.events[q].time >= x.after!);
  const ev = (seq: number) => run.events[seq];
  let root: HopEvent | undefined;
  if (x.match) {
    const want = x.match;
    root = scope
      .map(ev)
      .find(
        (e) =>
          e.kind === "packet" &&
          e.packet !== undefined &&
          (x.node === undefined || e.node === x.node) &&
          (packetHas(want, leftPacket(e.iface ?? "", e.packet)) ||
            (run.inner.has(e.seq) && packetHas(want, run.inner.get(e.seq)!))),
      );
    if (!root) {
      const arrived = scope.map(ev).filter((e) => e.packet && (x.node === undefined || e.node === x.node));
      emit(
        x,
        "match",
        show(want),
        `no packet arriving${x.node ? ` at ${x.node}` : ""} has these fields (${arrived.length} arrived${arrived.length ? `, e.g. ${arrived.slice(0, 3).map(eventShow).join(" | ")}` : ""})`,
      );
      return out;
    }
    const s = new Set(scope);
    scope = descendants(run, root.seq).filter((q) => s.has(q));
  } else if (x.node !== undefined) {
    root = scope.map(ev).find((e) => e.kind === "packet" && e.node === x.node);
  } else if (x.packet > 0) root = ev(scope[0]);

  // node keys: one node handling one packet
  const nodeFields = x.fields.filter((f) => NODE_KEYS.has(f.key));
  if (nodeFields.length > 0) {
    if (!root) {
      const where = x.node ?? "(no node: give node:, packet: or match:)";
      emit(nodeFields[0], "node", where, x.node ? "no packet reached it" : "nothing selected");
    } else out.push(...compareExpectation({ ...x, fields: nodeFields }, observeEvent(run, root)));
  }
  const scoped = scope.map(ev);
  const atNode = x.node === undefined ? scoped : scoped.filter((e) => e.node === x.node);
  // A map (`every`) claims at least one packet: "every packet it sent was a SYN" must not pass on silence.
  const packetList = (f: FieldExpectation, name: string, got: LeftPacket[]) => {
    if (!Array.isArray(f.want) && got.length === 0)
      emit(f, name, show((f.want as { every: unknown }).every), "nothing");
    else comparePacketList(f.want, got, name, (field, w, g) => emit(f, field, w, g));
  };
  for (const f of byKey("received")) {
    if (x.node === undefined) emit(f, "received", "a node", "received: needs node:");
    else
      packetList(
        f,
        "received",
        atNode
          .filter((e) => e.kind === "packet" && e.packet)
          .map((e) => leftPacket(e.iface ?? "", e.packet!)),
      );
  }
  for (const f of byKey("sent")) {
    if (x.node === undefined) emit(f, "sent", "a node", "sent: needs node:");
    else
      packetList(
        f,
        "sent",
        atNode.flatMap((e) => e.sent.map((s) => leftPacket(s.iface, s.packet))),
      );
  }
  for (const f of byKey("path")) {
    const path: string[] = [];
    for (const e of scoped) if (e.kind === "packet" && path[path.length - 1] !== e.node) path.push(e.node);
    const want = (f.want as (string | undefined)[]).filter((s): s is string => s !== undefined);
    const ok = want.every((n, i) => path[i] === n);
    if (!ok) {
      const shown =
        path.length > 24 ? `${path.slice(0, 24).join(" > ")} > ... (${path.length} nodes)` : path.join(" > ");
      emit(f, "path", want.join(" > "), shown || "(no hops)");
    }
  }
  for (const f of byKey("loop")) {
    let loops = run.result.loops;
    if (scope.length !== run.events.length) {
      const ids = new Set(scoped.filter((e) => e.packet).map((e) => packetIdentity(e.packet!)));
      for (const e of scoped) for (const s of e.sent) ids.add(packetIdentity(s.packet));
      loops = loops.filter((l) => l.hops.length === 0 || ids.has(l.id));
    }
    if (f.want === "none") {
      if (loops.length > 0) emit(f, "loop", "none", loops.map(loopShow).join(" | "));
      continue;
    }
    const want = f.want as Record<string, unknown>;
    if (loops.length === 0) {
      emit(f, "loop", show(want), "no forwarding loop");
      continue;
    }
    const l = loops[0];
    const got: Record<string, unknown> = {
      nodes: loopNodes(l),
      reason: l.reason,
      crossings: l.count,
      min_ttl: Math.min(...l.hops.map((h) => h.ttl)),
    };
    if (Array.isArray(want.nodes)) {
      const w = [...want.nodes].map(String).sort();
      if (w.join(",") !== (got.nodes as string[]).join(","))
        emit(f, "loop.nodes", show(w), `${show(got.nodes)} (${loopShow(l)})`);
    }
    const { nodes: _n, ...rest } = want;
    compareFields(rest, got, "loop", (field, w, g) => emit(f, field, w, `${g} (${loopShow(l)})`));
  }
  for (const f of byKey("socket")) compareSocket(run, x, f, (field, w, g) => emit(f, field, w, g));
  return out;
}

function compareSocket(
  run: NetRun,
  x: Expectation,
  f: FieldExpectation,
  emit: (field: string, w: string, g: string) => void,
): void {
  const want = { ...(f.want as Record<string, unknown>) };
  let sk: TcpSock | undefined;
  let node: string | undefined;
  let flowError: string | undefined;
  if (x.flow !== undefined) {
    const flow = run.topology.flows.get(x.flow);
    if (!flow) {
      emit(
        "flow",
        x.flow,
        `no flow named so (flows: ${[...run.topology.flows.keys()].join(", ") || "none"})`,
      );
      return;
    }
    sk = flow.sock;
    node = flow.node;
    flowError = flow.error;
    if (!sk) {
      emit("socket", show(want), "the flow never started (the run stopped before its connect)");
      return;
    }
  } else {
    if (x.node === undefined) {
      emit("socket", show(want), "which socket? give flow:, or node: with local/remote in the map");
      return;
    }
    node = x.node;
    const linux = run.topology.linux.get(x.node);
    if (!linux) {
      emit("socket", show(want), `node "${x.node}" is a device, it has no sockets`);
      return;
    }
    const local = parseEndpoint(want.local);
    const remote = parseEndpoint(want.remote);
    if (!local || !remote) {
      emit(
        "socket",
        "local/remote as ADDR:PORT (or ADDR, or :PORT)",
        `${show(want.local)} / ${show(want.remote)}`,
      );
      return;
    }
    const fits = (s: TcpSock) =>
      (local.addr === undefined || s.laddr === local.addr) &&
      (local.port === undefined || s.lport === local.port) &&
      (remote.addr === undefined || s.raddr === remote.addr) &&
      (remote.port === undefined || s.rport === remote.port);
    sk = linux.tcp.connections.find(fits);
    if (!sk) {
      const all = linux.tcp.connections.map((s) => s.name);
      emit(
        "socket",
        `a connection ${show(want.local ?? "*")} - ${show(want.remote ?? "*")}`,
        all.length ? `connections: ${all.join(", ")}` : "no connections",
      );
      return;
    }
  }
  delete want.local;
  delete want.remote;
  const error = sk.error ?? flowError ?? "none";
  const label = `${sk.name}: ${sk.history.join(" > ")}${error !== "none" ? ` (${error})` : ""}`;
  if (want.state !== undefined && String(want.state).toUpperCase() !== sk.state)
    emit("socket.state", String(want.state), `${sk.state} (${label})`);
  if (want.error !== undefined && String(want.error) !== error)
    emit("socket.error", String(want.error), `${error} (${label})`);
  if (want.established !== undefined) {
    const was = sk.history.includes("ESTABLISHED");
    if (String(want.established) !== String(was))
      emit("socket.established", String(want.established), `${was} (${label})`);
  }
  if (Array.isArray(want.history)) {
    let i = 0;
    for (const s of sk.history)
      if (i < want.history.length && String(want.history[i]).toUpperCase() === s) i++;
    if (i < want.history.length) emit("socket.history", want.history.join(" > "), sk.history.join(" > "));
  }
  if (want.retransmissions !== undefined) {
    const n = retransmissions(run, node, sk);
    if (String(want.retransmissions) !== String(n))
      emit("socket.retransmissions", String(want.retransmissions), `${n} (${label})`);
  }
}

/** Per injected packet, the first handling at every node it (or what it caused) reached. */
function observationsOf(run: NetRun): Observation[][] {
  return run.injected.map((inj) => {
    if (inj === undefined) return [];
    const seen = new Set<string>();
    const obs: Observation[] = [];
    for (const seq of descendants(run, inj)) {
      const e = run.events[seq];
      if (e.kind !== "packet" || seen.has(e.node)) continue;
      seen.add(e.node);
      obs.push(observeEvent(run, e));
    }
    return obs;
  });
}

/** The network kind: `topology: FILE` (plus optional `until:` and `seed:` for every case). */
export const TOPOLOGY_SUBJECT: SubjectKind = {
  name: "topology",
  keys: ["topology", "until"],
  claims: (check) => check.subject.keys.has("topology"),
  prepare(check: CheckFile, env: CheckEnv): PreparedSubject {
    const keys = check.subject.keys;
    const key = keys.get("topology")!;
    for (const k of ["host", "rules", "kernel", "sysctl", "backend", "allow-unknown"]) {
      const v = keys.get(k);
      if (v)
        throw located(
          v.loc,
          "CHECK_BAD_KEY",
          `${k}: not with topology: (the topology file describes every node)`,
        );
    }
    const { path, text } = readAt(env, check, key, "topology");
    const seedV = keys.get("seed")?.value;
    const untilK = keys.get("until");
    if (untilK && (typeof untilK.value !== "number" || untilK.value < 0))
      throw located(untilK.loc, "CHECK_BAD_VALUE", "until: expected seconds (a number >= 0)");
    const until = untilK ? (untilK.value as number) : undefined;
    const load = (): Topology =>
      loadTopology(text, {
        file: path,
        readFile: (p) => env.readFile(resolveFrom(path, p)),
        ...(typeof seedV === "number" || typeof seedV === "string" ? { seed: seedV } : {}),
      });
    load(); // bad topology: an error of the file, not of every case
    const exp = experimentKeyIn(check);
    if (exp) throw located(exp.loc, "CHECK_BAD_KEY", `${exp.key}: only with experiment:`);
    for (const c of check.cases) {
      if (c.rules) throw located(c.rules.loc, "CHECK_BAD_KEY", `case "${c.name}": rules: not with topology:`);
      if (c.sysctl || c.kernel)
        throw located(
          c.loc,
          "CHECK_BAD_KEY",
          `case "${c.name}": sysctl/kernel: set them on the topology's nodes`,
        );
    }
    return {
      warnings: [] as Diagnostic[],
      forCase() {
        throw new Error("topology cases are evaluated with evaluate()");
      },
      evaluate(c, packets) {
        const run = runNetCase(load(), c, packets, until);
        const diffs = c.expect.flatMap((x) => compareNet(run, x));
        return { diffs, observations: observationsOf(run) };
      },
    };
  },
};
