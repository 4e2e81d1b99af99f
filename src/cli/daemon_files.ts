/**
 * Finding the daemon from the CLI: the configuration says where VARRUN_PATH is.
 *
 * @module
 */

import { loadConfig } from "../config/load.ts";
import type { Config } from "../config/types.ts";
import { KEYS_BY_NAME } from "../config/keys.ts";
import { type RunDir, runDir } from "../control/run_dir.ts";
import { InvalidConfigError } from "../config/config_error.ts";
import type { CliOptions } from "./options.ts";
import { printError } from "./report.ts";

/** The configuration (when it is valid) and the daemon's files it points to. */
export interface DaemonFiles {
  /** The configuration, or undefined when it does not load. */
  config?: Config;
  /** Why the configuration does not load, when it does not. */
  error?: unknown;
  /** Where the daemon's pidfile and socket are. */
  dir: RunDir;
}

/**
 * Loads the configuration to find VARRUN_PATH. A configuration with errors
 * (you may be fixing it) still gives the VARRUN_PATH its files set, as
 * reading goes on past a bad line, else the default one: `reload` then hears
 * the errors from the daemon itself, and `stop` and `status` still reach it.
 * When no daemon answers there, {@linkcode notRunning} reports those errors.
 *
 * @throws {Error} when the files cannot be read at all (a mistyped `-f`):
 * where the daemon is would be a guess, and the daemon at the default
 * VARRUN_PATH may be another one
 */
export async function locateDaemon(options: CliOptions): Promise<DaemonFiles> {
  try {
    const config = await loadConfig(options.configFiles);
    return { config, dir: runDir(config.global.varrunPath) };
  } catch (error) {
    if (!(error instanceof InvalidConfigError)) throw error;
    const varrunPath = error.varrunPath ?? KEYS_BY_NAME.get("VARRUN_PATH")!.default;
    return { error, dir: runDir(varrunPath) };
  }
}

/**
 * What a command that found no daemon says when the configuration has errors:
 * those errors (the daemon may run where a line it cannot read would say),
 * and exit code 1; undefined when the configuration is valid, and "not
 * running" is the whole truth.
 */
export function notRunning(files: DaemonFiles): number | undefined {
  if (files.error === undefined) return undefined;
  printError(files.error);
  console.error(
    `sleepingd: error: no daemon answers at ${files.dir.socket}, and the configuration ` +
      "has the errors above",
  );
  return 1;
}
