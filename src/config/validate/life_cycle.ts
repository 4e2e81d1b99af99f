/**
 * Checks of the commands and the life cycle (CHECK_CMD, START_CMD, STOP_CMD,
 * IDLE_CMD and their timeouts, CONNECT_TIMEOUT, IDLE_TIME,
 * IDLE_CHECK_INTERVAL, USER, PASS_ENV): a service can be woken, a
 * connection attempt has a time to take, and an IDLE_TIME does what it says.
 *
 * @module
 */

import type { Built, Issues, Settings } from "./settings.ts";
import { names } from "./settings.ts";

/** An environment variable's name as PASS_ENV lists it. */
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Records an error for a service that has neither START_CMD nor CHECK_CMD: nothing can wake it. */
export function checkWakeable(settings: Settings, issues: Issues): void {
  const { section } = settings;
  if (settings.get("CHECK_CMD") !== undefined || settings.get("START_CMD") !== undefined) return;
  issues.error(
    section.location,
    "START_CMD",
    `Cannot wake ${settings.describe()} as it has neither START_CMD nor CHECK_CMD: ` +
      `set START_CMD in ${settings.describe()}`,
  );
}

/** Records an error for a CONNECT_TIMEOUT of 0: no connection could ever be made. */
export function checkConnectTimeout(settings: Settings, issues: Issues): void {
  const entry = settings.entry("CONNECT_TIMEOUT");
  if (entry === undefined || settings.get("CONNECT_TIMEOUT") !== 0) return;
  issues.error(
    entry.location,
    "CONNECT_TIMEOUT",
    'Cannot use "CONNECT_TIMEOUT" as it must be more than 0 seconds: current value is ' +
      `"${entry.value}"`,
  );
}

/** PASS_ENV's variable names, undefined when blank; records an error for one that is no name. */
export function passEnv(settings: Settings, issues: Issues): string[] | undefined {
  return names(settings, "PASS_ENV", VARIABLE_NAME, "a variable name", issues);
}

/**
 * Warns about a service whose IDLE_TIME cannot do what it says: without
 * IDLE_CHECK_INTERVAL no idle check runs; without STOP_CMD nothing stops the
 * backend, when idle or when sleepingd stops.
 */
export function checkIdleStops(built: Built[], issues: Issues): void {
  for (const { service, description, idleTimeAt } of built) {
    if (!service.idleTime || idleTimeAt === undefined) continue;
    if (!service.idleCheckInterval) {
      issues.warn(
        idleTimeAt,
        `No idle check runs for ${description}: IDLE_TIME is set but IDLE_CHECK_INTERVAL is ` +
          "not, so it is never stopped for being idle; set IDLE_CHECK_INTERVAL, e.g. to 10",
      );
    }
    if (!service.stopCmd) {
      issues.warn(
        idleTimeAt,
        `Nothing stops the backend of ${description}: IDLE_TIME is set but STOP_CMD is not, ` +
          'so an idle stop and "sleepingd stop" leave it running (and the next wake runs ' +
          "START_CMD again); set STOP_CMD",
      );
    }
  }
}
