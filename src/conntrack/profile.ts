/**
 * Kernel profiles: which kernel's behaviour to emulate (`--kernel V`). Version-dependent behaviour is keyed on
 * these ids with `kernelAtLeast`, so each difference is written once where the behaviour lives, with the
 * version that introduced it.
 *
 * The default is the newest kernel the project ports and checks against recordings of a real kernel.
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

function parts(v: string): number[] {
  return v.split(".").map((x) => Number(x));
}

/** True when profile `kernel` is version `min` or newer ("5.10" >= "4.19"). */
export function kernelAtLeast(kernel: string, min: string): boolean {
  const a = parts(kernel);
  const b = parts(min);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

export function findKernelProfile(id: string): KernelProfile | undefined {
  return KERNEL_PROFILES.find((p) => p.id === id);
}
