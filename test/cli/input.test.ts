import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readPacketInput } from "../../src/cli/input";
import { packetsOf, readCaptureBytes } from "../../src/wire/capture";
import { encodeIpv4 } from "../../src/wire/ipv4";
import type { Packet } from "../../src/wire/packet";
import { concatBytes, epb, ethernet, idb, shb, tcpPacket, udpPacket } from "../wire/capture_builders";

const dir = mkdtempSync(join(tmpdir(), "ctsim-input-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("readPacketInput", () => {
  it("streams a capture of many read chunks like reading it whole (records cut at chunk boundaries)", async () => {
    const frames: Uint8Array[] = [shb(true), idb(true, 1, { name: "eth0", tsresol: 9 })];
    for (let i = 0; i < 3000; i++) {
      const ip = encodeIpv4(
        i % 3 === 0
          ? udpPacket(new Uint8Array(i % 97))
          : tcpPacket({ payload: new Uint8Array(i % 211).fill(i) }),
      );
      const eth = ethernet(ip);
      eth[11] = i % 256; // source MACs of 256 clients
      frames.push(epb(true, 0, 1_700_000_000_000_000_000n + BigInt(i) * 1000n, eth, { flags: 1 + (i % 2) }));
    }
    const bytes = concatBytes(frames);
    expect(bytes.length, "file spans several 64 KiB stream chunks").toBeGreaterThan(4 * 65536);
    const file = join(dir, "many.pcapng");
    writeFileSync(file, bytes);
    const got: Packet[] = [];
    const summary = await readPacketInput({ file }, { packet: (p) => got.push(p) });
    expect(summary.format).toBe("pcapng");
    const want = packetsOf(readCaptureBytes(bytes, { file }));
    expect(got.length).toBe(3000);
    expect(got).toEqual(want);
  });
});
