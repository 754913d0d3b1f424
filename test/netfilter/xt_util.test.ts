/**
 * The code-unit parsers of src/netfilter/xt/util.ts and src/wire/addr.ts (parseIpv4) against the regular
 * expressions and the split they replace (the loader calls them for every address, port and mark of a rule set).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseIpv4 } from "../../src/wire/addr";
import { parseAddrMask, parseUint } from "../../src/netfilter/xt/util";

/** parseIpv4 as it was written with split and a regular expression. */
function referenceParseIpv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value >>> 0;
}

/** parseUint as it was written with regular expressions. */
function referenceParseUint(text: string, max = 0xffffffff): number | undefined {
  let value: number;
  if (/^0x[0-9a-f]+$/i.test(text)) value = parseInt(text.slice(2), 16);
  else if (/^0[0-7]*$/.test(text)) value = parseInt(text, 8);
  else if (/^[1-9][0-9]*$/.test(text)) value = Number(text);
  else return undefined;
  if (!Number.isSafeInteger(value) || value > max) return undefined;
  return value;
}

/** parseAddrMask as it was written with parseIpv4 and a regular expression. */
function referenceParseAddrMask(
  text: string,
): { addr: number; mask: number; dottedMask: boolean } | undefined {
  const slash = text.indexOf("/");
  const addr = referenceParseIpv4(slash < 0 ? text : text.slice(0, slash));
  if (addr === undefined) return undefined;
  if (slash < 0) return { addr, mask: 0xffffffff, dottedMask: false };
  const m = text.slice(slash + 1);
  let mask: number | undefined;
  let dottedMask = false;
  if (/^\d{1,2}$/.test(m) && Number(m) <= 32) {
    const len = Number(m);
    mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  } else {
    mask = referenceParseIpv4(m);
    dottedMask = true;
  }
  if (mask === undefined) return undefined;
  return { addr: (addr & mask) >>> 0, mask, dottedMask };
}

const numberPiece = fc.constantFrom(
  "0",
  "1",
  "7",
  "8",
  "9",
  "00",
  "08",
  "255",
  "256",
  "999",
  "0x",
  "0X",
  "x",
  "a",
  "F",
  "g",
  "ff",
  "-",
  "+",
  " ",
  "\u0010",
  "\u0019",
  "\u0660",
  "",
  "4294967295",
  "9007199254740993",
);
const addressPiece = fc.constantFrom(
  "0",
  "1",
  "10",
  "255",
  "256",
  "010",
  "0001",
  ".",
  "..",
  "/",
  "8",
  "32",
  "33",
  "08",
  "a",
  " ",
  "-",
  "\u0661",
  "255.255.255.0",
  "10.0.0.0",
);

describe("xt/util code-unit parsers agree with the reference", () => {
  it("parseUint", () => {
    fc.assert(
      fc.property(
        fc.array(numberPiece, { maxLength: 4 }),
        fc.constantFrom(0xff, 0xffff, 0xffffffff),
        (parts, max) => {
          const text = parts.join("");
          expect(parseUint(text, max), JSON.stringify(text)).toBe(referenceParseUint(text, max));
          expect(parseUint(text), JSON.stringify(text)).toBe(referenceParseUint(text));
        },
      ),
      { numRuns: 20000 },
    );
    fc.assert(
      fc.property(fc.string(), (text) => {
        expect(parseUint(text)).toBe(referenceParseUint(text));
      }),
      { numRuns: 5000 },
    );
  });

  it("parseIpv4 and parseAddrMask agree with the split/regex versions", () => {
    fc.assert(
      fc.property(fc.array(addressPiece, { maxLength: 9 }), (parts) => {
        const text = parts.join("");
        expect(parseIpv4(text), JSON.stringify(text)).toBe(referenceParseIpv4(text));
        expect(parseAddrMask(text), JSON.stringify(text)).toEqual(referenceParseAddrMask(text));
      }),
      { numRuns: 20000 },
    );
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 0, max: 40 }), (ip, len) => {
        expect(parseIpv4(ip)).toBe(referenceParseIpv4(ip));
        expect(parseAddrMask(`${ip}/${len}`)).toEqual(referenceParseAddrMask(`${ip}/${len}`));
      }),
    );
  });
});
