/**
 * `tcp_valid_flags[]`: the TCP flag combinations conntrack accepts before any state logic.
 *
 * Mirrors: net/netfilter/nf_conntrack_proto_tcp.c tcp_valid_flags and the check in tcp_error() (6.17.0-rc3,
 * Kingxukai/linux @ 9b44fff655e2c6f4cc53cb499dd2c038e99cb013; identical in 5.10.13 and CAF 3.10).
 * The kernel clears ECE, CWR and PSH ("always valid") and indexes the table with the remaining
 * FIN|SYN|RST|ACK|URG bits. The AE (former NS) bit sits in byte 12 and never reaches the check.
 */

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;
const URG = 0x20;
const ECE = 0x40;
const CWR = 0x80;

/** The nine valid combinations, as the kernel's designated initialisers list them. */
export const TCP_VALID_FLAG_COMBINATIONS: readonly number[] = [
  SYN,
  SYN | URG,
  SYN | ACK,
  RST,
  RST | ACK,
  FIN | ACK,
  FIN | ACK | URG,
  ACK,
  ACK | URG,
];

/** tcp_valid_flags[(FIN|SYN|RST|ACK|URG) + 1]: 1 for a valid combination. */
export const tcp_valid_flags: readonly number[] = Array.from(
  { length: (FIN | SYN | RST | ACK | URG) + 1 },
  (_, i) => (TCP_VALID_FLAG_COMBINATIONS.includes(i) ? 1 : 0),
);

/** The byte tcp_error() looks up: flag byte without ECE, CWR and PSH. */
export function tcpFlagsForValidityCheck(flags: number): number {
  return flags & 0xff & ~(ECE | CWR | PSH);
}

/** True when tcp_error() lets this flag byte through. */
export function tcpFlagsValid(flags: number): boolean {
  return tcp_valid_flags[tcpFlagsForValidityCheck(flags)] === 1;
}
