/** Command registry: each command module exports `register(program, io)`. Add one line per command. */
import type { Command } from "commander";
import type { CliIo } from "../main";
import { register as table } from "./table";
import { register as read } from "./read";
import { register as rules } from "./rules";
import { register as conntrack } from "./conntrack";
import { register as trace } from "./trace";
import { register as test } from "./test";
import { register as explain } from "./explain";
import { register as lint } from "./lint";
import { register as run } from "./run";

export type RegisterCommand = (program: Command, io: CliIo) => void;

export const commands: RegisterCommand[] = [table, read, rules, conntrack, trace, test, explain, lint, run];
