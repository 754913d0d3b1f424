/** ctsim library API. Nothing under src/ except src/cli does I/O. */
export * from "./errors";
export * from "./wire/packet";
export * from "./wire/addr";
export * from "./host/hostfile";
export * from "./conntrack/proto_tcp";
export * from "./wire/text";
export * from "./wire/tcpdump_format";
export * from "./wire/checksum";
export * from "./wire/ipv4";
export * from "./wire/pcap";
export * from "./wire/pcapng";
export * from "./wire/capture";
export * from "./wire/pcapng_writer";
