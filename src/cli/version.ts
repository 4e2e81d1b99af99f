/**
 * `sleepingd version`: prints the version.
 *
 * @module
 */

import { VERSION } from "../version.ts";
import type { Command } from "./options.ts";

/** `sleepingd version`: prints the version on stdout. */
export const versionCommand: Command = {
  summary: "print the version",
  help: `Usage: sleepingd version

Prints the version of sleepingd (the same as -V/--version).`,
  run() {
    console.log(VERSION);
    return 0;
  },
};
