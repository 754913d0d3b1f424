/** Shared by the CLI tests: main() run in-process with captured output, and seed 001's input files. */
import { main } from "../../src/cli/main";

export async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

/** A file of examples/seed001. */
export const seed001 = (name: string): string =>
  new URL(`../../examples/seed001/${name}`, import.meta.url).pathname;

/** `--host --rules --packets` of seed 001. */
export const SEED001_ARGS: readonly string[] = [
  "--host",
  seed001("host.yaml"),
  "--rules",
  seed001("rules.v4"),
  "--packets",
  seed001("packets.txt"),
];
