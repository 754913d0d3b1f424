/**
 * Live check of the oracle: re-records one fast scenario in network namespaces and compares it with the
 * committed golden. Needs root, netns, iptables-legacy, conntrack, tcpdump and tcpreplay; skipped (with the
 * missing prerequisite printed) otherwise. On a different kernel than the golden's, differences are reported,
 * not failed.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { maskConntrackTimer } from "./compare";
import { missingPrerequisite } from "./netns";
import { recordScenario } from "./record";
import { SCENARIO_ROOT, loadRecording, loadScenario, type Recording } from "./scenario";

const SCENARIO = "02-fin-first";
const missing = missingPrerequisite();
if (missing) console.log(`oracle live test skipped: ${missing}`);

/** The parts of a recording that must not change between runs on the same kernel. */
function essence(rec: Recording) {
  return rec.packets.map((p) => ({
    input: p.input.hex,
    trace: p.trace.map((l) => l.trimEnd()),
    egress: p.egress.map((e) => `${e.iface} ${e.text} ${e.hex}`).sort(),
    conntrack: p.conntrack.map(maskConntrackTimer).sort(),
  }));
}

describe.skipIf(missing !== undefined)(`oracle live: re-record ${SCENARIO}`, () => {
  it("matches the committed golden", { timeout: 30_000 }, async () => {
    const golden = loadRecording(SCENARIO);
    const sc = loadScenario(join(SCENARIO_ROOT, SCENARIO));
    const fresh = await recordScenario(sc, `lt${process.pid % 1000}`, "vitest test/oracle/live.test.ts");
    const got = essence(fresh);
    const want = essence(golden);
    if (fresh.provenance.kernel !== golden.provenance.kernel) {
      const same = JSON.stringify(got) === JSON.stringify(want);
      console.warn(
        `oracle live: kernel ${fresh.provenance.kernel} differs from the golden's ${golden.provenance.kernel}; ` +
          (same
            ? "output is identical"
            : `output differs:\n got ${JSON.stringify(got)}\nwant ${JSON.stringify(want)}`),
      );
      return;
    }
    expect(got).toEqual(want);
  });
});
