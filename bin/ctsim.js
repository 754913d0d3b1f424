#!/usr/bin/env node
// Thin shim: load the TypeScript CLI through tsx's loader. All logic lives in src/cli.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
