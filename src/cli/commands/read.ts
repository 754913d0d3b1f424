/**
 * `ctsim read FILE`: read packets from tcpdump text, pcap or pcapng and print one tcpdump-style line each.
 *
 * The format is told from the first bytes (pcap/pcapng magic, see src/wire/capture.ts); anything else is read
 * as tcpdump text (src/wire/text.ts). The file is streamed, never read whole. Bad input ends the command
 * with exit code 2 and `file:line:column` (text) or `file: byte offset N` (captures); with --lenient bad text
 * lines are skipped and counted on stderr. `-w` also writes the packets read to a pcapng file.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import type { Command } from "commander";
import type { CliIo } from "../main";
import { readPacketInput } from "../input";
import type { Packet } from "../../wire/packet";
import { PcapngWriter } from "../../wire/pcapng_writer";
import { formatTcpdump } from "../../wire/tcpdump_format";
import { TEXT_DEFAULTS_HELP } from "../../wire/text";

interface ReadOptions {
  in?: string;
  lenient?: boolean;
  verbose?: boolean;
  write?: string;
}

export function register(program: Command, io: CliIo): void {
  program
    .command("read")
    .description("read packets from tcpdump text, pcap or pcapng and print them tcpdump-style")
    .argument("<file>", "input file (pcap/pcapng detected by magic bytes; anything else is tcpdump text)")
    .option("--in <iface>", "interface for packets whose input names none")
    .option("--lenient", "skip lines that are not packets (and count them) instead of failing")
    .option("-v, --verbose", "print the IP header line too (tcpdump -v)")
    .option("-w, --write <out.pcapng>", "also write the packets to a pcapng file")
    .addHelpText("after", `\nText input:\n${TEXT_DEFAULTS_HELP}\n`)
    .action(async (file: string, opts: ReadOptions) => {
      await readCommand(file, opts, io);
    });
}

async function readCommand(file: string, opts: ReadOptions, io: CliIo): Promise<void> {
  const fmt = { verbose: opts.verbose === true, iface: true, time: "abs" as const };
  let out: number | undefined;
  const writer = opts.write ? new PcapngWriter() : undefined;
  let skippedLines = 0;
  try {
    const summary = await readPacketInput(
      { file, lenient: opts.lenient === true, ...(opts.in ? { defaultIface: opts.in } : {}) },
      {
        opened() {
          if (opts.write) out = openSync(opts.write, "w");
        },
        packet(p: Packet) {
          io.stdout(formatTcpdump(p, fmt) + "\n");
          if (writer && out !== undefined) writeSync(out, writer.write(p));
        },
        skipped(note: string) {
          io.stdout(note + "\n");
        },
      },
    );
    skippedLines = summary.skippedLines;
    if (writer && out !== undefined) writeSync(out, writer.finish());
  } finally {
    if (out !== undefined) closeSync(out);
  }
  if (opts.lenient)
    io.stderr(`ctsim: ${file}: skipped ${skippedLines} line${skippedLines === 1 ? "" : "s"}\n`);
}
