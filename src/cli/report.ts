/**
 * How the CLI reports problems on stderr: `sleepingd: error: ...` and
 * `sleepingd: warning: ...`, configuration problems with their file:line.
 *
 * @module
 */

import { formatIssue, InvalidConfigError } from "../config/config_error.ts";
import type { ConfigIssue, Location } from "../config/types.ts";

/**
 * Prints a warning as `sleepingd: warning: FILE:LINE: message`, or without
 * the place when it has none (a folder left to its default, a daemon's own).
 */
export function printWarning(
  issue: ConfigIssue | { location?: Location; message: string } | string,
) {
  const text = typeof issue === "string"
    ? issue
    : issue.location
    ? formatIssue(issue as ConfigIssue)
    : issue.message;
  console.error(`sleepingd: warning: ${text}`);
}

/**
 * Prints an error: each problem of an invalid configuration on its own line
 * (after the warnings that may explain it), anything else as one line.
 */
export function printError(error: unknown): void {
  if (error instanceof InvalidConfigError) {
    for (const warning of error.warnings) printWarning(warning);
    for (const { message } of error.errors) console.error(`sleepingd: error: ${message}`);
    return;
  }
  console.error(`sleepingd: error: ${error instanceof Error ? error.message : String(error)}`);
}
