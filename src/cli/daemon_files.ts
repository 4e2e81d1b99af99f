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
 */
export async function locateDaemon(options: CliOptions): Promise<DaemonFiles> {
  try {
    const config = await loadConfig(options.configFiles);
    return { config, dir: runDir(config.global.varrunPath) };
  } catch (error) {
    const varrunPath = error instanceof InvalidConfigError ? error.varrunPath : undefined;
    return { error, dir: runDir(varrunPath ?? KEYS_BY_NAME.get("VARRUN_PATH")!.default) };
  }
}
