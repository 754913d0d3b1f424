/**
 * Packet input for CLI commands: opens a file and streams its packets, never reading it whole.
 *
 * The format is told from the first bytes (pcap/pcapng magic, see src/wire/capture.ts); anything else is read as
 * tcpdump text (src/wire/text.ts). Bad input throws InputError with `file:line:column` (text) or
 * `file: byte offset N` (captures), which main() prints and turns into exit code 2; with `lenient`, bad text
 * lines are skipped and counted instead.
 */
import { createReadStream } from "node:fs";
import { InputError } from "../errors";
import { CaptureReader, detectCaptureFormat } from "../wire/capture";
import type { Frame, FrameSink } from "../wire/capture";
import type { Packet } from "../wire/packet";
import { formatTimestamp } from "../wire/tcpdump_format";
import { TextReader } from "../wire/text";
import type { TextRecord } from "../wire/text";

export interface PacketInputOptions {
  readonly file: string;
  /** Interface for packets whose input names none (`--in`). */
  readonly defaultIface?: string;
  /** Skip (and count) text lines that are not packets instead of failing. */
  readonly lenient?: boolean;
}

export interface PacketSink {
  /** Called once the file is open, before any packet. */
  opened?(): void;
  packet(p: Packet): void;
  /**
   * A record the reader skipped on purpose (a non-IPv4 line or frame), as a comment line:
   * `# file:12: skipped (IP6)` for text, `HH:MM:SS.ffffff # file#3: skipped (...)` for captures.
   */
  skipped?(note: string): void;
}

export interface PacketInputSummary {
  readonly format: "text" | "pcap" | "pcapng";
  /** Bad text lines skipped in lenient mode. */
  readonly skippedLines: number;
}

/** Streams the packets of `opts.file` into `sink`. */
export async function readPacketInput(
  opts: PacketInputOptions,
  sink: PacketSink,
): Promise<PacketInputSummary> {
  const { file } = opts;
  const iface = opts.defaultIface ? { defaultIface: opts.defaultIface } : {};
  let mode: "text" | "capture" | undefined;
  let text: TextReader | undefined;
  let capture: CaptureReader | undefined;
  const decoder = new TextDecoder("utf-8");
  let skippedLines = 0;

  const onText = (records: TextRecord[]) => {
    for (const r of records) {
      if (r.kind === "packet") sink.packet(r.packet);
      else if (r.kind === "error") throw new InputError(r.diagnostic);
      else if (r.diagnostic) skippedLines++;
      else sink.skipped?.(`# ${file}:${r.line}: skipped (${r.reason})`);
    }
  };
  // Each frame is handled as soon as it is decoded (CaptureReader.pushTo): no chunk's worth of decoded packets
  // waits in a list, so packets die young whatever the read size.
  const frameSink: FrameSink = {
    push(f: Frame) {
      if (f.kind === "packet") sink.packet(f.packet);
      else
        sink.skipped?.(`${formatTimestamp(f.tsSec, f.tsNsec, "abs")} # ${f.origin}: skipped (${f.reason})`);
    },
    packet(p: Packet) {
      sink.packet(p);
    },
  };
  const newText = () => new TextReader({ file, lenient: opts.lenient === true, ...iface });

  // 1 MiB reads: ~200 reads of bench/trace.ts's 200 MB capture instead of ~3,000 with the default 64 KiB (on a
  // single core the main thread waited ~0.15 s for those).
  const stream = createReadStream(file, { highWaterMark: 1 << 20 });
  try {
    await new Promise<void>((resolve, reject) => {
      stream.once("open", () => resolve());
      stream.once("error", reject);
    });
  } catch (err) {
    throw new InputError({ code: "READ_OPEN", file, message: `cannot open: ${(err as Error).message}` });
  }
  try {
    sink.opened?.();
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
          capture = new CaptureReader({ file, ...iface });
          capture.pushTo(joined, true, frameSink);
        } else {
          mode = "text";
          text = newText();
          onText(text.push(decoder.decode(joined, { stream: true })));
        }
        continue;
      }
      // A read stream hands out a fresh buffer per read and never touches it again: the reader may keep it.
      if (capture) capture.pushTo(bytes, true, frameSink);
      else onText(text!.push(decoder.decode(bytes, { stream: true })));
    }
    if (mode === undefined) {
      text = newText();
      onText(text.push(decoder.decode(head)));
    }
    if (capture) for (const f of capture.end()) frameSink.push(f);
    if (text) {
      onText(text.push(decoder.decode()));
      onText(text.end());
    }
  } finally {
    stream.destroy();
  }
  return { format: capture ? (capture.format ?? "pcap") : "text", skippedLines };
}
