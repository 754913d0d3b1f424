import { describe, expect, it } from "vitest";
import { matchFilter, parseFilter } from "../../src/explain/filter";
import { InputError } from "../../src/errors";
import { parseTcpdumpText } from "../../src/wire/text";

const [syn, udp, icmp] = parseTcpdumpText(
  [
    "eth0 In IP 10.0.0.1.1000 > 2.2.2.2.80: Flags [S], seq 1, win 512, length 0",
    "eth0 In IP 10.0.0.2.53 > 10.0.0.1.5353: UDP, length 10",
    "eth0 In IP 10.0.0.1 > 2.2.2.2: ICMP echo request, id 1, seq 1, length 64",
  ].join("\n"),
).packets;

function m(expr: string): boolean[] {
  const f = parseFilter(expr);
  return [syn, udp, icmp].map((p) => matchFilter(f, p));
}

describe("--match (pcap-filter subset)", () => {
  it("protocols, hosts, ports, directions", () => {
    expect(m("tcp")).toEqual([true, false, false]);
    expect(m("icmp or udp")).toEqual([false, true, true]);
    expect(m("host 10.0.0.1")).toEqual([true, true, true]);
    expect(m("src host 10.0.0.1")).toEqual([true, false, true]);
    expect(m("dst 10.0.0.1")).toEqual([false, true, false]);
    expect(m("port 80")).toEqual([true, false, false]);
    expect(m("src port 53")).toEqual([false, true, false]);
    expect(m("udp port 80")).toEqual([false, false, false]);
    expect(m("tcp and port 80")).toEqual([true, false, false]);
  });

  it("and binds tighter than or; not and parentheses", () => {
    expect(m("udp or tcp and port 443")).toEqual([false, true, false]);
    expect(m("(udp or tcp) and not port 80")).toEqual([false, true, false]);
    expect(m("! tcp && ! udp")).toEqual([false, false, true]);
    expect(m("src or dst host 2.2.2.2")).toEqual([true, false, true]);
  });

  it("anything outside the subset is an error with its column", () => {
    const err = (expr: string) => {
      try {
        parseFilter(expr);
      } catch (e) {
        expect(e).toBeInstanceOf(InputError);
        const d = (e as InputError).diagnostic;
        return `${d.column} ${d.message.split(";")[0]}`;
      }
      return "no error";
    };
    expect(err("tcp and net 10.0.0.0/8")).toBe('9 "net" is not supported');
    expect(err("port 99999")).toBe('6 expected a port number, got "99999"');
    expect(err("(tcp or udp")).toBe('1 "(" is never closed');
    expect(err("host example.com")).toBe(
      '6 expected an IPv4 address, got "example.com" (host names are not resolved)',
    );
    expect(err("tcp udp")).toBe('5 unexpected "udp"');
    expect(err("")).toBe("1 empty expression");
    expect(err("tcp & udp")).toBe('5 "&" is not an operator here (use && or ||)');
  });
});
