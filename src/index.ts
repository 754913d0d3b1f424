/**
 * ctsim library API, by layer (dependencies point down this list). Nothing under src/ except src/cli does I/O:
 * time comes from packet timestamps and random choices from a seeded generator.
 */

// Errors and packets (src/wire): validated Packet values, tcpdump text, pcap/pcapng, the IPv4 codec, GENEVE.
export * from "./errors";
export * from "./wire/packet";
export * from "./wire/addr";
export * from "./wire/checksum";
export * from "./wire/ipv4";
export * from "./wire/text";
export * from "./wire/tcpdump_format";
export * from "./wire/pcap";
export * from "./wire/pcapng";
export * from "./wire/capture";
export * from "./wire/pcapng_writer";
export * from "./wire/geneve";

// Utilities.
export * from "./util/prng";
export * from "./util/jhash";

// Connection tracking (nf_conntrack_*).
export * from "./conntrack/types";
export * from "./conntrack/profile";
export * from "./conntrack/tuple";
export * from "./conntrack/sysctl";
export * from "./conntrack/proto_tcp";
export * from "./conntrack/proto_udp";
export * from "./conntrack/proto_icmp";
export * from "./conntrack/proto_generic";
export * from "./conntrack/core";
export * from "./conntrack/show";

// NAT (nf_nat_core, nf_nat_proto, masquerade, redirect, netmap).
export * from "./nat/types";
export * from "./nat/nf_nat_proto";
export * from "./nat/nf_nat_core";
export * from "./nat/nf_nat_masquerade";
export * from "./nat/nf_nat_redirect";
export * from "./nat/netmap";

// Rules (x_tables): model, parsers, printing, descriptors, traversal; ipsets.
export * from "./netfilter/ruleset";
export * from "./netfilter/registry";
export * from "./netfilter/skb";
export * from "./netfilter/host_services";
export * from "./netfilter/parse_save";
export * from "./netfilter/parse_script";
export * from "./netfilter/save";
export * from "./netfilter/xt/index";
export * from "./netfilter/ip_tables";
export * from "./ipset/ipset";
export * from "./ipset/parse_save";

// One host: host files, routing, the host stack's own packets, the datapath, the oracle adapter.
export * from "./host/hostfile";
export * from "./host/route";
export * from "./net/icmp_send";
export * from "./net/tcp_reset";
export * from "./sim/hooks";
export * from "./sim/host";
export * from "./sim/ctreplay";
export * from "./sim/scenario";

// Reports and their formats (kernel log lines, summaries, JSON, monitor tools, sequence diagrams).
export * from "./trace/events";
export * from "./trace/records";
export * from "./trace/nf_log";
export * from "./trace/summary";
export * from "./trace/json";
export * from "./trace/monitor";
export * from "./trace/sequence";

// Networks of hosts and device models.
export * from "./sim/net/types";
export * from "./sim/net/engine";
export * from "./sim/net/topology";
export * from "./sim/net/linux_node";
export * from "./sim/net/tcp_endpoint";
export * from "./sim/net/proxy";
export * from "./sim/net/registry";
export * from "./sim/net/experiment";
export * from "./sim/net/devices/route_table";
export * from "./sim/net/devices/nat_gateway";
export * from "./sim/net/devices/nlb";
export * from "./sim/net/devices/gwlb";
export * from "./sim/net/devices/tuple_space";

// Tools on top: explain, check files (ctsim test), lint.
export * from "./explain/filter";
export * from "./explain/explain";
export * from "./explain/format";
export * from "./check/subject";
export * from "./check/schema";
export * from "./check/expect";
export * from "./check/run";
export * from "./check/format";
export * from "./check/junit";
export * from "./check/json";
export * from "./check/topology";
export * from "./check/experiment";
export * from "./lint/types";
export * from "./lint/registry";
export * from "./lint/lint";
