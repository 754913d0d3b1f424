/**
 * The proxy socket kind (`sockets: [{kind: proxy, ...}]` on a Linux host of a topology): a TCP relay that
 * accepts connections and opens one upstream connection per accepted one, the way a transparent proxy behind
 * TPROXY does it (seed 003: a TPROXY login proxy behind a NAT-mode LVS).
 *
 * The socket calls it makes are those of a user-space proxy on Linux 6.18:
 *   - listen: `setsockopt(IP_TRANSPARENT)` (optional), `bind(listen)`, `listen()`. With the TPROXY target
 *     (net/netfilter/xt_TPROXY.c `tproxy_tg4`) assigning the listener to the packet (skb->sk) and a local
 *     policy route, the accepted socket's local address is the packet's original destination
 *     (net/ipv4/tcp_ipv4.c `tcp_v4_rcv` / `skb_steal_sock`, see ./tcp_endpoint.ts);
 *   - upstream `source: client` (the transparent proxy): `setsockopt(IP_TRANSPARENT)`, `bind(client addr:port)`
 *     without SO_REUSEADDR, `connect(original destination)`. net/ipv4/af_inet.c `inet_bind` accepts the
 *     non-local address because of IP_TRANSPARENT; net/ipv4/inet_connection_sock.c `inet_csk_get_port` fails
 *     with EADDRINUSE when another socket of this host holds that address and port, which is how two clients
 *     that a cone device (SNAT) mapped to one address:port towards two servers collide here;
 *   - upstream `source: own`: `connect()` without bind, an ephemeral port of the host's address
 *     (net/ipv4/inet_hashtables.c `__inet_hash_connect`, 4-tuple unique);
 *   - relaying: bytes read from one side are written to the other; a FIN is relayed as shutdown(SHUT_WR) by
 *     close(); an error on one side (ECONNREFUSED, ECONNRESET, ETIMEDOUT, or the upstream bind/connect failing)
 *     aborts the other side (close with SO_LINGER 0: RST), as proxies do when they give up a connection.
 *
 * Not a kernel file: this is the application. Leaves out on purpose: UDP, connection limits and accept queues,
 * SO_REUSEADDR / IP_BIND_ADDRESS_NO_PORT variants of the upstream bind, retries of a failed upstream connect,
 * the proxy's own protocol (login parsing): bytes are counted, not carried.
 */
import { formatIpv4, parseIpv4 } from "../../wire/addr";
import type { KeyPath, SocketKind } from "./registry";
import type { TcpApp, TcpSock, TcpStack } from "./tcp_endpoint";

export interface ProxyConfig {
  /** Listening address (0 = 0.0.0.0) and port. */
  readonly address: number;
  readonly port: number;
  /** IP_TRANSPARENT on the listener (the TPROXY target only assigns transparent sockets). */
  readonly transparent: boolean;
  /** Where the upstream connection goes: the accepted socket's local address and port, or a fixed server. */
  readonly upstream: "original" | { readonly address: number; readonly port: number };
  /** Upstream source: the client's address and port (IP_TRANSPARENT + bind) or the host's own (ephemeral). */
  readonly source: "client" | "own";
  /** ip_local_port_range for `source: own`. */
  readonly ports: readonly [number, number];
  /** Name for output. */
  readonly label: string;
}

/** One accepted connection and the upstream connection opened for it. */
export interface ProxyPair {
  readonly client: TcpSock;
  readonly upstream: TcpSock;
  /** Why the pair was given up (the upstream's error, or the client's), if it was. */
  error?: string;
}

/** A proxy installed on a stack: its configuration and every pair so far. */
export interface Proxy {
  readonly config: ProxyConfig;
  readonly pairs: ProxyPair[];
}

type Fail = (path: KeyPath, code: string, message: string) => never;

function endpoint(v: unknown, path: KeyPath, fail: Fail): { address: number; port: number } {
  const text = typeof v === "number" ? `:${v}` : typeof v === "string" ? v : "";
  const m = /^([^:]*):(\d+)$/.exec(text.trim());
  const address = m ? (m[1] === "" ? 0 : parseIpv4(m[1])) : undefined;
  const port = m ? Number(m[2]) : NaN;
  if (address === undefined || !(port >= 1 && port <= 65535))
    fail(path, "TOPO_BAD_PROXY", `expected ADDR:PORT (or :PORT), got ${JSON.stringify(v)}`);
  return { address: address!, port };
}

/** Checks a `kind: proxy` socket mapping; errors point at the offending key. */
export function parseProxyConfig(c: Readonly<Record<string, unknown>>, fail: Fail): ProxyConfig {
  if (c.listen === undefined) fail([], "TOPO_BAD_PROXY", "a proxy needs listen: ADDR:PORT");
  const l = endpoint(c.listen, ["listen"], fail);
  const transparent = c.transparent ?? false;
  if (typeof transparent !== "boolean")
    fail(["transparent"], "TOPO_BAD_PROXY", `transparent: expected true or false`);
  const upstream =
    c.upstream === undefined || c.upstream === "original"
      ? ("original" as const)
      : endpoint(c.upstream, ["upstream"], fail);
  const source = c.source ?? "own";
  if (source !== "client" && source !== "own")
    fail(["source"], "TOPO_BAD_PROXY", `source: expected client or own, got ${JSON.stringify(source)}`);
  let ports: [number, number] = [32768, 60999];
  if (c.ports !== undefined) {
    const p = c.ports;
    if (
      !Array.isArray(p) ||
      p.length !== 2 ||
      !p.every((x) => Number.isInteger(x) && x >= 1 && x <= 65535) ||
      (p[0] as number) > (p[1] as number)
    )
      fail(["ports"], "TOPO_BAD_PROXY", "ports: expected [LOW, HIGH] within 1-65535");
    ports = [p[0] as number, p[1] as number];
  }
  const label = typeof c.name === "string" ? c.name : "proxy";
  return { address: l.address, port: l.port, transparent, upstream, source, ports, label };
}

/** Installs the proxy: a listener whose accepted connections each get an upstream connection. */
export function installProxy(stack: TcpStack, config: ProxyConfig): Proxy {
  const proxy: Proxy = { config, pairs: [] };
  stack.listen({
    address: config.address,
    port: config.port,
    transparent: config.transparent,
    label: config.label,
    accept: (client, now) => accept(stack, proxy, client, now),
  });
  return proxy;
}

function accept(stack: TcpStack, proxy: Proxy, client: TcpSock, now: number): TcpApp {
  const c = proxy.config;
  const dst = c.upstream === "original" ? { address: client.laddr, port: client.lport } : c.upstream;
  const who = `${c.label} for ${formatIpv4(client.raddr)}:${client.rport}`;
  // The client's half-close waits until the upstream connection can carry it.
  let clientClosed = false;
  const upstreamApp: TcpApp = {
    onEstablished(sk, t) {
      if (clientClosed) stack.close(sk, t);
    },
    onData(_sk, bytes, t) {
      if (isOpen(client)) stack.send(client, bytes, t);
    },
    onPeerClose(_sk, t) {
      if (isOpen(client)) stack.close(client, t);
    },
    onError(_sk, error, t) {
      pair.error ??= error;
      if (isOpen(client)) stack.abort(client, t);
    },
  };
  const upstream =
    c.source === "client"
      ? stack.connect(
          {
            src: client.raddr,
            sport: client.rport,
            bind: true,
            transparent: true,
            dst: dst.address,
            dport: dst.port,
            app: upstreamApp,
            label: `${who} (upstream, IP_TRANSPARENT)`,
          },
          now,
        )
      : stack.connect(
          {
            sport: 0,
            ephemeralPorts: c.ports,
            dst: dst.address,
            dport: dst.port,
            app: upstreamApp,
            label: `${who} (upstream)`,
          },
          now,
        );
  const pair: ProxyPair = { client, upstream };
  proxy.pairs.push(pair);
  if (upstream.error !== undefined) {
    // bind()/connect() failed at once (EADDRINUSE, EADDRNOTAVAIL): the proxy gives the client up.
    pair.error = upstream.error;
    stack.abort(client, now);
    return {};
  }
  return {
    onData(_sk, bytes, t) {
      stack.send(upstream, bytes, t);
    },
    onPeerClose(_sk, t) {
      if (upstream.state === "SYN_SENT") clientClosed = true;
      else if (isOpen(upstream)) stack.close(upstream, t);
    },
    onError(_sk, error, t) {
      pair.error ??= error;
      if (upstream.state !== "CLOSE" && upstream.state !== "TIME_WAIT") stack.abort(upstream, t);
    },
  };
}

/** The socket can still send (close() or send() mean something). */
function isOpen(sk: TcpSock): boolean {
  return sk.state === "ESTABLISHED" || sk.state === "CLOSE_WAIT";
}

export const PROXY_SOCKET_KIND: SocketKind = {
  kind: "proxy",
  summary:
    "TCP relay: accepts on listen (transparent: IP_TRANSPARENT, for TPROXY) and connects upstream (original destination or ADDR:PORT) from the client's address and port (source: client) or its own (source: own)",
  keys: ["listen", "transparent", "upstream", "source", "ports", "name"],
  install(config, ctx) {
    installProxy(ctx.stack, parseProxyConfig(config, ctx.fail));
  },
};
