import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DEVICE_KINDS, defaultDeviceRegistry } from "../../../../src/sim/net/registry";

describe("device registry", () => {
  it("lists every device model file's kinds once", () => {
    const files = readdirSync(new URL("../../../../src/sim/net/devices/", import.meta.url))
      .filter((f) => f.endsWith(".ts") && f !== "common.ts" && f !== "tuple_space.ts")
      .map((f) => f.replace(/\.ts$/, ""));
    const want: Record<string, readonly string[]> = {
      route_table: ["route-table"],
      nat_gateway: ["aws-nat-gateway"],
      nlb: ["aws-nlb-node"],
      gwlb: ["aws-gwlb-endpoint", "aws-gwlb", "gwlb-appliance"],
    };
    expect(files.sort(), "a new device file needs its kinds registered and listed here").toEqual(
      Object.keys(want).sort(),
    );
    const names = defaultDeviceRegistry().names();
    for (const kinds of Object.values(want))
      for (const k of kinds) expect(names, `kind ${k} not registered`).toContain(k);
    expect(names.length).toBe(DEVICE_KINDS.length);
  });
});
