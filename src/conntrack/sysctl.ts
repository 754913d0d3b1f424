/**
 * The net.netfilter.nf_conntrack_* sysctls: defaults per kernel profile, and setting one by its kernel name with
 * the kernel's own range checks.
 *
 * Mirrors net/netfilter/nf_conntrack_standalone.c (nf_ct_sysctl_table: names, proc handlers and their
 * extra1/extra2 bounds) and the per-protocol defaults in nf_conntrack_proto_{tcp,udp,icmp}.c and
 * nf_conntrack_core.c (nf_conntrack_init_start, generic timeout), Linux 6.17 (Kingxukai/linux @ 9b44fff6);
 * version differences from the trees listed in KERNEL_FACTS.md section 0.
 * Defaults checked against a fresh network namespace on Linux 6.18.44 (`sysctl net.netfilter`).
 * Leaves out on purpose: SCTP/GRE/DCCP/ICMPv6/frag6 timeouts (those protocols are not tracked), helper and
 * expectation knobs, nf_conntrack_count (read-only: use Conntrack.count). nf_conntrack_max and
 * nf_conntrack_buckets depend on the machine's RAM in the kernel; the default here is the recorded 6.18 value
 * (262144) for every profile.
 */
import { InputError } from "../errors";
import { kernelAtLeast } from "./profile";
import type { ConntrackSysctls } from "./types";

/** ConntrackSysctls plus the knobs only the core and the output read. */
export interface NfConntrackSysctls extends ConntrackSysctls {
  /** Per-connection packet/byte counters shown by `conntrack -L` (nf_conntrack_acct). */
  nf_conntrack_acct: number;
  /** 0 = no events, 1 = events on, 2 = on when a listener exists (6.x default). */
  nf_conntrack_events: number;
  /** Protocol number whose INVALID packets are logged; 255 = all. */
  nf_conntrack_log_invalid: number;
  nf_conntrack_timestamp: number;
  /** Hash size; read-only except in init_net. Shown for completeness, not used (the table is a Map). */
  nf_conntrack_buckets: number;
  nf_conntrack_expect_max: number;
}

export type SysctlName = keyof NfConntrackSysctls;

interface SysctlSpec {
  readonly min: number;
  readonly max: number;
  /** First kernel profile that has the knob (undefined: all profiles). */
  readonly since?: string;
  /** proc_dointvec_jiffies: a timeout in seconds (must fit in an int of jiffies). */
  readonly jiffies?: boolean;
}

const INT_MAX = 2147483647;
/**
 * proc_dointvec_jiffies refuses values above INT_MAX / HZ (HZ taken as 1000). It would take negative values; they
 * make no sense as timeouts and are refused here (min 0).
 */
const JIFFIES_MAX = Math.floor(INT_MAX / 1000);
const BOOL: SysctlSpec = { min: 0, max: 1 };
const U8: SysctlSpec = { min: 0, max: 255 };
const TIMEOUT: SysctlSpec = { min: 0, max: JIFFIES_MAX, jiffies: true };

/** nf_ct_sysctl_table entries, with the bounds of their proc handlers (6.17). */
const SPECS: Readonly<Record<SysctlName, SysctlSpec>> = {
  nf_conntrack_max: { min: 0, max: INT_MAX },
  nf_conntrack_checksum: BOOL,
  nf_conntrack_log_invalid: U8,
  nf_conntrack_acct: BOOL,
  nf_conntrack_events: { min: 0, max: 2 },
  nf_conntrack_timestamp: BOOL,
  nf_conntrack_buckets: { min: 1, max: INT_MAX },
  nf_conntrack_expect_max: { min: 1, max: INT_MAX },
  nf_conntrack_generic_timeout: TIMEOUT,
  nf_conntrack_tcp_timeout_syn_sent: TIMEOUT,
  nf_conntrack_tcp_timeout_syn_recv: TIMEOUT,
  nf_conntrack_tcp_timeout_established: TIMEOUT,
  nf_conntrack_tcp_timeout_fin_wait: TIMEOUT,
  nf_conntrack_tcp_timeout_close_wait: TIMEOUT,
  nf_conntrack_tcp_timeout_last_ack: TIMEOUT,
  nf_conntrack_tcp_timeout_time_wait: TIMEOUT,
  nf_conntrack_tcp_timeout_close: TIMEOUT,
  nf_conntrack_tcp_timeout_max_retrans: TIMEOUT,
  nf_conntrack_tcp_timeout_unacknowledged: TIMEOUT,
  nf_conntrack_tcp_loose: BOOL,
  nf_conntrack_tcp_be_liberal: BOOL,
  nf_conntrack_tcp_ignore_invalid_rst: { ...BOOL, since: "6.1" },
  nf_conntrack_tcp_max_retrans: U8,
  nf_conntrack_udp_timeout: TIMEOUT,
  nf_conntrack_udp_timeout_stream: TIMEOUT,
  nf_conntrack_icmp_timeout: TIMEOUT,
};

export const SYSCTL_PREFIX = "net.netfilter.";

/** Whether the kernel profile has this knob. */
export function sysctlExists(name: string, kernel: string): name is SysctlName {
  const spec = (SPECS as Record<string, SysctlSpec | undefined>)[name];
  if (!spec) return false;
  return spec.since === undefined || kernelAtLeast(kernel, spec.since);
}

/** The names the profile has, in table order. */
export function sysctlNames(kernel: string): SysctlName[] {
  return (Object.keys(SPECS) as SysctlName[]).filter((n) => sysctlExists(n, kernel));
}

/**
 * Defaults for a profile. UDP: 30 s unreplied everywhere; the stream timeout became 120 s (from 180 s) with the
 * 2022 "only extend timeout to stream mode after 2s" work, present in the 6.1 profile and not in 5.10.13.
 * `nf_conntrack_events`: 2 ("on when someone listens") is the recorded 6.18 value; 1 for 5.10 and older is
 * [UNVERIFIED] (the 2 mode came with a 2022 change whose release was not re-read).
 */
export function defaultSysctls(kernel: string): NfConntrackSysctls {
  const modern = kernelAtLeast(kernel, "6.1");
  return {
    nf_conntrack_max: 262144,
    nf_conntrack_checksum: 1,
    nf_conntrack_log_invalid: 0,
    nf_conntrack_acct: 0,
    nf_conntrack_events: modern ? 2 : 1,
    nf_conntrack_timestamp: 0,
    nf_conntrack_buckets: 262144,
    nf_conntrack_expect_max: 4096,
    nf_conntrack_generic_timeout: 600,
    nf_conntrack_tcp_timeout_syn_sent: 120,
    nf_conntrack_tcp_timeout_syn_recv: 60,
    nf_conntrack_tcp_timeout_established: 432000,
    nf_conntrack_tcp_timeout_fin_wait: 120,
    nf_conntrack_tcp_timeout_close_wait: 60,
    nf_conntrack_tcp_timeout_last_ack: 30,
    nf_conntrack_tcp_timeout_time_wait: 120,
    nf_conntrack_tcp_timeout_close: 10,
    nf_conntrack_tcp_timeout_max_retrans: 300,
    nf_conntrack_tcp_timeout_unacknowledged: 300,
    nf_conntrack_tcp_loose: 1,
    nf_conntrack_tcp_be_liberal: 0,
    nf_conntrack_tcp_ignore_invalid_rst: 0,
    nf_conntrack_tcp_max_retrans: 3,
    nf_conntrack_udp_timeout: 30,
    nf_conntrack_udp_timeout_stream: modern ? 120 : 180,
    nf_conntrack_icmp_timeout: 30,
  };
}

/** Strips `net.netfilter.` (also accepts the /proc path form with slashes). */
export function normaliseSysctlName(name: string): string {
  let n = name.trim().replace(/\//g, ".");
  if (n.startsWith("proc.sys.")) n = n.slice("proc.sys.".length);
  if (n.startsWith(".proc.sys.")) n = n.slice(".proc.sys.".length);
  if (n.startsWith(SYSCTL_PREFIX)) n = n.slice(SYSCTL_PREFIX.length);
  return n;
}

/**
 * Parses a value as the proc handler would: a decimal integer (leading +/- allowed by proc_dointvec) inside the
 * knob's bounds. Returns the number or throws InputError (SYSCTL_UNKNOWN, SYSCTL_VALUE, SYSCTL_RANGE).
 */
export function parseSysctlValue(
  name: string,
  text: string,
  kernel: string,
  where: SysctlWhere = {},
): number {
  const n = normaliseSysctlName(name);
  if (!sysctlExists(n, kernel)) {
    throw new InputError({
      ...where,
      code: "SYSCTL_UNKNOWN",
      message: `unknown sysctl ${SYSCTL_PREFIX}${n} for kernel ${kernel}`,
    });
  }
  const spec = SPECS[n];
  const t = text.trim();
  if (!/^[+-]?\d+$/.test(t)) {
    throw new InputError({
      ...where,
      code: "SYSCTL_VALUE",
      message: `${SYSCTL_PREFIX}${n}: expected an integer, got "${text}"`,
    });
  }
  const v = Number(t);
  if (v < spec.min || v > spec.max) {
    throw new InputError({
      ...where,
      code: "SYSCTL_RANGE",
      message: `${SYSCTL_PREFIX}${n}: ${v} is out of range ${spec.min}..${spec.max} (the kernel answers EINVAL)`,
    });
  }
  return v;
}

export interface SysctlWhere {
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
}

/** Sets one knob by kernel name (with or without the net.netfilter. prefix), validating the value. */
export function setSysctl(
  s: NfConntrackSysctls,
  name: string,
  value: string | number,
  kernel: string,
  where: SysctlWhere = {},
): void {
  const n = normaliseSysctlName(name) as SysctlName;
  s[n] = parseSysctlValue(n, String(value), kernel, where);
}

/** `sysctl net.netfilter` style listing: `net.netfilter.name = value`, in table order. */
export function formatSysctls(s: NfConntrackSysctls, kernel: string): string[] {
  return sysctlNames(kernel).map((n) => `${SYSCTL_PREFIX}${n} = ${s[n]}`);
}
