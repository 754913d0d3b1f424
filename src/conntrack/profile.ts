/**
 * Kernel profiles: which kernel's behaviour to emulate (`--kernel V`). Version-dependent behaviour is keyed on
 * these ids with `kernelAtLeast`, so each difference is written once where the behaviour lives, with the
 * version that introduced it.
 *
 * The default is the newest kernel the project ports and checks against recordings of a real kernel.
 * Per-packet code should not compare versions: trackers resolve a profile's switches once (tcp_window.ts
 * `tcpProfile` is memoised per id) and read booleans.
 */

export interface KernelProfile {
  readonly id: string;
  readonly description: string;
}

export const KERNEL_PROFILES: readonly KernelProfile[] = [
  { id: "6.18", description: "Linux 6.18 (mainline source read at 6.17; recordings from 6.18.44)" },
  { id: "6.1", description: "Linux 6.1 LTS with 2025 stable backports" },
  { id: "5.10", description: "Linux 5.10 LTS" },
  { id: "4.19", description: "Linux 4.19 LTS" },
  { id: "3.10", description: "Linux 3.10 (RHEL 7 era)" },
  { id: "3.6", description: "Linux 3.6 and older (pre-netns sysctls)" },
];

export const DEFAULT_KERNEL = "6.18";

/** Parsed version strings ("5.10" -> [5, 10]); a profile id is parsed once. */
const PARTS = new Map<string, readonly number[]>();

function parts(v: string): readonly number[] {
  let p = PARTS.get(v);
  if (p === undefined) PARTS.set(v, (p = v.split(".").map((x) => Number(x))));
  return p;
}

/** True when profile `kernel` is version `min` or newer ("5.10" >= "4.19"). No allocation once both are known. */
export function kernelAtLeast(kernel: string, min: string): boolean {
  const a = parts(kernel);
  const b = parts(min);
  const n = a.length > b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

export function findKernelProfile(id: string): KernelProfile | undefined {
  return KERNEL_PROFILES.find((p) => p.id === id);
}
