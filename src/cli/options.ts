/**
 * The options shared by every command, as `main` parsed them.
 *
 * @module
 */

import type { Verbosity } from "../log.ts";

/** Options given before or after the command word. */
export interface CliOptions {
  /** Files named with `-f/--config-file`, in order; empty means the default search list. */
  configFiles: string[];
  /** Log level: `info` by default, `debug` with `-v`, `trace` with `--debug`. */
  verbosity: Verbosity;
  /** The command's own flags, e.g. `{ json: true }` for `status --json`. */
  flags: Record<string, string | boolean | undefined>;
  /** The words after the command's name, as its {@linkcode Command.args} name them. */
  args: string[];
}

/** What `main` needs to know of a command: its help, its own flags and how to run it. */
export interface Command {
  /** One line for the command list in `sleepingd --help`. */
  summary: string;
  /** Full help text, printed by `sleepingd COMMAND --help`. */
  help: string;
  /** The words it takes after its name, all required, e.g. `["NAME", "DURATION"]`. */
  args?: string[];
  /** Flags the command takes besides the global ones, in `node:util` `parseArgs` form. */
  flags?: Record<string, { type: "boolean" | "string"; short?: string }>;
  /** Runs the command and returns the process exit code. */
  run(options: CliOptions): number | Promise<number>;
}

/** A mistake in how sleepingd was called: printed with a hint, exit code 2. */
export class UsageError extends Error {
  /** Creates a usage error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
