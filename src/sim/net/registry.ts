/**
 * The registry of node kinds a topology file can name with `kind:` (device models: NAT gateway, NLB, GWLB,
 * route-table router, ... in ./devices/) and of socket kinds a Linux host can carry besides `listen` and
 * `connect` (the proxy of seed 003). One list per registry, one line per kind; a duplicate name is a bug and
 * throws at start-up (gVisor's matcher registry does the same).
 *
 * Not a kernel concept: this is ctsim's own plumbing between ./topology.ts (which parses the YAML and reports
 * errors at file:line:column) and the models. A factory receives its node's keys as plain values plus a context
 * whose `fail` points an error at any key path inside the node's YAML mapping.
 *
 * Leaves out on purpose: plugin loading from outside src/ (every kind is compiled in).
 */
import type { SourceLocation } from "../../errors";
import type { HostInterface } from "../../host/types";
import type { Prng } from "../../util/prng";
import type { HostSim } from "../host";
import type { NetNode } from "./types";
import type { TcpStack } from "./tcp_endpoint";
import { ROUTE_TABLE_KIND } from "./devices/route_table";
import { NAT_GATEWAY_KIND } from "./devices/nat_gateway";
import { NLB_NODE_KIND } from "./devices/nlb";
import { GWLB_APPLIANCE_KIND, GWLB_ENDPOINT_KIND, GWLB_KIND } from "./devices/gwlb";
import { PROXY_SOCKET_KIND } from "./proxy";

/** A path of keys and list indexes inside a node's YAML mapping: `["targets", 0, "address"]`. */
export type KeyPath = readonly (string | number)[];

export interface DeviceSpec {
  /** Node name (the key under `nodes:`). */
  readonly name: string;
  readonly kind: string;
  /** The node's interfaces (`interfaces:` as in a host file: name, mac, addresses). */
  readonly interfaces: readonly HostInterface[];
  /** Every other key of the node's mapping, as plain JSON-like values. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly loc?: SourceLocation;
}

export interface DeviceContext {
  /** Throws an InputError located at `path` inside this node's mapping (its key, else the node itself). */
  fail(path: KeyPath, code: string, message: string): never;
  /** The run's seeded generator for this node (derived from the topology seed and the node name). */
  readonly prng: Prng;
  /**
   * A HostSim built from the sub-mapping at `path`, which takes the same keys as a Linux host in the topology
   * (`host:` file or inline `interfaces`/`routes`/`rules`/`sysctl`, and `iptables:` rules file or inline text),
   * for models that wrap a Linux datapath (the GWLB appliance).
   */
  hostSim(path: KeyPath): HostSim;
  /**
   * State shared by the devices of one topology under one key (e.g. the nodes of one NLB, `load_balancer:`):
   * the first call with a key runs `init`, later calls (from any node of the same topology) get the same
   * object. Optional: contexts built outside a topology may leave it out (each device then keeps its own).
   */
  shared?<T>(key: string, init: () => T): T;
}

export interface DeviceKind {
  readonly kind: string;
  /** One line for `ctsim run --help`. */
  readonly summary: string;
  /** Keys the node accepts besides `kind` and `interfaces` (others are rejected with a location). */
  readonly keys: readonly string[];
  create(spec: DeviceSpec, ctx: DeviceContext): NetNode;
}

/** A socket kind on a Linux host (`sockets: [{kind: proxy, ...}]`), installed on the host's TCP stack. */
export interface SocketKindContext {
  fail(path: KeyPath, code: string, message: string): never;
  readonly stack: TcpStack;
  readonly prng: Prng;
}

export interface SocketKind {
  readonly kind: string;
  readonly summary: string;
  readonly keys: readonly string[];
  install(config: Readonly<Record<string, unknown>>, ctx: SocketKindContext): void;
}

export class KindRegistry<T extends { readonly kind: string }> {
  private readonly byName = new Map<string, T>();
  constructor(kinds: readonly T[] = []) {
    for (const k of kinds) this.register(k);
  }
  register(k: T): void {
    if (this.byName.has(k.kind)) throw new Error(`kind "${k.kind}" registered twice`);
    this.byName.set(k.kind, k);
  }
  get(kind: string): T | undefined {
    return this.byName.get(kind);
  }
  names(): string[] {
    return [...this.byName.keys()].sort();
  }
}

// Device models: one line per kind (./devices/*.ts).
export const DEVICE_KINDS: readonly DeviceKind[] = [
  ROUTE_TABLE_KIND,
  NAT_GATEWAY_KIND,
  NLB_NODE_KIND,
  GWLB_ENDPOINT_KIND,
  GWLB_KIND,
  GWLB_APPLIANCE_KIND,
];

// Socket kinds besides listen/connect: one line per kind.
export const SOCKET_KINDS: readonly SocketKind[] = [PROXY_SOCKET_KIND];

export function defaultDeviceRegistry(): KindRegistry<DeviceKind> {
  return new KindRegistry(DEVICE_KINDS);
}

export function defaultSocketRegistry(): KindRegistry<SocketKind> {
  return new KindRegistry(SOCKET_KINDS);
}
