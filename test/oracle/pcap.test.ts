import { describe, expect, it } from "vitest";
import { completeChecksum, fromHex, readPcap, toHex, writePcap } from "./pcap";
import { loadRecording } from "./scenario";

describe("recorder pcap helpers", () => {
  const frame = fromHex(loadRecording("02-fin-first").packets[0].input.hex);

  it("writePcap/readPcap round-trip", () => {
    const back = readPcap(writePcap([{ tsSec: 5, tsUsec: 7, data: frame }]));
    expect(back.length).toBe(1);
    expect(back[0].tsSec * 1e6 + back[0].tsUsec).toBe(5_000_007);
    expect(toHex(back[0].data)).toBe(toHex(frame));
  });

  it("completes a CHECKSUM_PARTIAL TCP checksum and leaves complete or wrong ones alone", () => {
    expect(completeChecksum(frame).completed, "got a correct frame completed").toBe(false);
    const csum = 14 + 20 + 16;
    // The pseudo-header sum the kernel leaves for the NIC: src 198.51.100.2, dst 192.0.2.80, proto 6, len 20.
    let s = 0xc633 + 0x6402 + 0xc000 + 0x0250 + 6 + 20;
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    const partial = frame.slice();
    partial[csum] = s >> 8;
    partial[csum + 1] = s & 0xff;
    const fixed = completeChecksum(partial);
    expect(fixed.completed).toBe(true);
    expect(toHex(fixed.frame)).toBe(toHex(frame));
    const wrong = frame.slice();
    wrong[csum] ^= 0x55;
    expect(completeChecksum(wrong).completed, "got a corrupt checksum 'completed'").toBe(false);
  });
});
