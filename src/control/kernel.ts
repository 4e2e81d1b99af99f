/**
 * The daemon's side of the kernel path: its table made ready at start (what a
 * killed daemon left is removed before anything listens), and the checks a
 * start and each reload make (docs/ARCHITECTURE.md, "Kernel path").
 *
 * @module
 */

import { ConfigError, InvalidConfigError } from "../config/config_error.ts";
import type { Config } from "../config/types.ts";
import { kernelPathErrors, kernelPathWarnings, kernelServices } from "../kernel/checks.ts";
import { KernelForwarder } from "../kernel/forwarder.ts";
import { missingForKernelPath } from "../kernel/host.ts";
import { tableName } from "../kernel/rules.ts";
import { log } from "../log.ts";
import { VERSION } from "../version.ts";

/**
 * Refuses a configuration whose FORWARD=kernel cannot work on this host, and
 * logs what may keep it from working.
 *
 * @throws {InvalidConfigError} naming each FORWARD line and what is missing
 */
export async function checkKernelPath(config: Config): Promise<void> {
  const errors = kernelPathErrors(config);
  if (errors.length > 0) {
    throw new InvalidConfigError(errors.map((issue) => new ConfigError(issue)));
  }
  for (const warning of await kernelPathWarnings(config, tableName(config.global.varrunPath))) {
    log("daemon").warn("{file}:{line}: {message}", {
      file: warning.location.file,
      line: warning.location.line,
      message: warning.message,
    });
  }
}

/**
 * The daemon's table, emptied of whatever a daemon before this one left; none
 * where the kernel path cannot run (and no service asks for it).
 *
 * @throws {Error} when services ask for the kernel path and the table cannot be removed
 */
export async function openKernelTable(config: Config): Promise<KernelForwarder | undefined> {
  await checkKernelPath(config);
  if (missingForKernelPath().length > 0) return undefined;
  const { varrunPath } = config.global;
  const forwarder = new KernelForwarder(
    tableName(varrunPath),
    `sleepingd ${VERSION}, VARRUN_PATH ${varrunPath}: removed when it stops`,
  );
  try {
    await forwarder.reset();
  } catch (error) {
    const message = `Cannot remove the nftables table ${forwarder.table}: ${
      (error as Error).message
    }`;
    if (kernelServices(config).length > 0) throw new Error(message);
    log("daemon").warn("{message}", { message });
  }
  // Before any service listens: conntrack then sees every connection from its first packet.
  if (kernelServices(config).length > 0) {
    await forwarder.prepare().catch((error) => {
      throw new Error(`Cannot make the nftables table ${forwarder.table}: ${error.message}`);
    });
  }
  return forwarder;
}
