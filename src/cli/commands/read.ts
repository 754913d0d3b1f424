/**
 * `ctsim read FILE`: read packets from tcpdump text, pcap or pcapng and print one tcpdump-style line each.
 *
 * The format is told from the first bytes (pcap/pcapng magic, see src/wire/capture.ts); anything else is read
 * as tcpdump text (src/wire/text.ts). The file is streamed, never read whole. Bad input ends the command
 * with exit code 2 and `file:line:column` (text) or `file: byte offset N` (captures); with --lenient bad text
 * lines are skipped and counted on stderr. `-w` also writes the packets read to a pcapng file.
 */
import { createReadStream, closeSync, openSync, writeSync } from "node:fs";
import type { Command } from "commander";
import type { CliIo } from "../main";
import { InputError } from "../../errors";
import { CaptureReader, detectCaptureFormat } from "../../wire/capture";
import type { Frame } from "../../wire/capture";
import type { Packet } from "../../wire/packet";
import { PcapngWriter } from "../../wire/pcapng_writer";
import { formatTcpdump } from "../../wire/tcpdump_format";
import { TEXT_DEFAULTS_HELP, TextReader } from "../../wire/text";
import type { TextRecord } from "../../wire/text";
import { formatTimestamp } from "../../wire/tcpdump_format";

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
  const emit = (p: Packet) => {
    io.stdout(formatTcpdump(p, fmt) + "\n");
    if (writer && out !== undefined) writeSync(out, writer.write(p));
  };
  let mode: "text" | "capture" | undefined;
  let text: TextReader | undefined;
  let capture: CaptureReader | undefined;
  const decoder = new TextDecoder("utf-8");
  let skippedLines = 0;

  const onText = (records: TextRecord[]) => {
    for (const r of records) {
      if (r.kind === "packet") emit(r.packet);
      else if (r.kind === "error") throw new InputError(r.diagnostic);
      else if (r.diagnostic) skippedLines++;
      else io.stdout(`# ${file}:${r.line}: skipped (${r.reason})\n`);
    }
  };
  const onFrames = (frames: Frame[]) => {
    for (const f of frames) {
      if (f.kind === "packet") emit(f.packet);
      else io.stdout(`${formatTimestamp(f.tsSec, f.tsNsec, "abs")} # ${f.origin}: skipped (${f.reason})\n`);
    }
  };

  const stream = createReadStream(file);
  try {
    await new Promise<void>((resolve, reject) => {
      stream.once("open", () => resolve());
      stream.once("error", reject);
    });
  } catch (err) {
    throw new InputError({ code: "READ_OPEN", file, message: `cannot open: ${(err as Error).message}` });
  }
  try {
    if (opts.write) out = openSync(opts.write, "w");
    let head = new Uint8Array(0);
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (mode === undefined) {
        const joined = new Uint8Array(head.length + bytes.length);
        joined.set(head);
        joined.set(bytes, head.length);
        if (joined.length < 4) {
          head = joined;
          continue;
        }
        if (detectCaptureFormat(joined)) {
          mode = "capture";
          capture = new CaptureReader({ file, ...(opts.in ? { defaultIface: opts.in } : {}) });
          onFrames(capture.push(joined));
        } else {
          mode = "text";
          text = new TextReader({
            file,
            lenient: opts.lenient === true,
            ...(opts.in ? { defaultIface: opts.in } : {}),
          });
          onText(text.push(decoder.decode(joined, { stream: true })));
        }
        continue;
      }
      if (capture) onFrames(capture.push(bytes));
      else onText(text!.push(decoder.decode(bytes, { stream: true })));
    }
    if (mode === undefined) {
      text = new TextReader({
        file,
        lenient: opts.lenient === true,
        ...(opts.in ? { defaultIface: opts.in } : {}),
      });
      onText(text.push(decoder.decode(head)));
    }
    if (capture) onFrames(capture.end());
    if (text) {
      onText(text.push(decoder.decode()));
      onText(text.end());
    }
    if (writer && out !== undefined) writeSync(out, writer.finish());
  } finally {
    stream.destroy();
    if (out !== undefined) closeSync(out);
  }
  if (opts.lenient)
    io.stderr(`ctsim: ${file}: skipped ${skippedLines} line${skippedLines === 1 ? "" : "s"}\n`);
}
