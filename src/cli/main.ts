/**
 * The CLI: the only code that touches the file system, the process and the console. Commands are thin
 * wrappers over the library; `main(argv, io)` returns the exit code so tests call it directly.
 */
import { Command, CommanderError } from "commander";
import { InputError, formatDiagnostic } from "../errors";
import { commands } from "./commands/index";

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const defaultIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

export function buildProgram(io: CliIo): Command {
  const program = new Command();
  program
    .name("ctsim")
    .description(
      "Emulate the Linux netfilter datapath (conntrack, NAT, iptables) on recorded packets, without root.",
    )
    .version("0.1.0")
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride();
  for (const register of commands) register(program, io);
  return program;
}

/**
 * A reader that went away (`ctsim ... | head`) ends the run quietly, as SIGPIPE ends a C program (Node ignores
 * the signal, and the write error would otherwise surface as an unhandled 'error' event with a stack trace).
 */
function exitQuietlyOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") process.exit(141);
      throw err;
    });
  }
}

let pipesWatched = false;

export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  if (io === defaultIo && !pipesWatched) {
    pipesWatched = true;
    exitQuietlyOnClosedPipe();
  }
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof InputError) {
      io.stderr(`ctsim: ${formatDiagnostic(err.diagnostic)}\n`);
      return 2;
    }
    if (err instanceof CliExit) return err.code;
    io.stderr(`ctsim: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    return 70;
  }
}

/** Thrown by commands to end with a given exit code after printing their own message. */
export class CliExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}
