/**
 * Helpers the commands share for their arguments: repeatable options, input files read whole, `--sysctl`
 * pairs. CLI only (the library never reads files); errors are InputErrors naming the file or option.
 */
import { readFileSync } from "node:fs";
import { InputError } from "../errors";

/** commander's collector for a repeatable option (`--sysctl a=1 --sysctl b=2`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A whole input file as UTF-8 text; READ_OPEN naming the file when it cannot be read. */
export function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new InputError({ code: "READ_OPEN", file, message: `cannot open: ${(err as Error).message}` });
  }
}

/** `--sysctl name=value` options as a record (names and values trimmed). */
export function parseSysctlArgs(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf("=");
    if (eq <= 0)
      throw new InputError({
        code: "CLI_BAD_OPTION",
        file: "--sysctl",
        message: `expected name=value, got "${item}"`,
      });
    out[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  return out;
}
