/**
 * Checks of the daemon's folders and log (VARRUN_PATH, STATE_PATH,
 * LOG_FORMAT, LOG_FILE, LOG_MAX_SIZE, LOG_MAX_FILES): the log's format is
 * one there is, it keeps a file at least, and a folder left blank is the
 * user's own (docs/ARCHITECTURE.md, "Daemon and logs", "Files").
 *
 * @module
 */

import type { Location } from "../types.ts";
import type { Issues, Settings } from "./settings.ts";

/** LOG_FORMAT (global); records an error naming its line when it is neither text nor json. */
export function logFormat(settings: Settings, issues: Issues): "text" | "json" {
  const format = settings.get("LOG_FORMAT") as string;
  if (format !== "text" && format !== "json") {
    issues.error(
      settings.entry("LOG_FORMAT")!.location,
      "LOG_FORMAT",
      `Cannot read "LOG_FORMAT" as it must be text or json: current value is "${format}"`,
    );
  }
  return format as "text" | "json";
}

/** Records an error for a LOG_MAX_FILES of 0: the file written counts. */
export function checkLogMaxFiles(settings: Settings, issues: Issues): void {
  const entry = settings.entry("LOG_MAX_FILES");
  if (entry === undefined || settings.get("LOG_MAX_FILES") !== 0) return;
  issues.error(
    entry.location,
    "LOG_MAX_FILES",
    'Cannot use "LOG_MAX_FILES" as it must be 1 or more (the file written counts): ' +
      `current value is "${entry.value}"; to stop rotating, set LOG_MAX_SIZE=0`,
  );
}

/**
 * A folder key's value and the line that sets it; when the files leave it
 * blank, `instead` (a folder of the user's own) or else the key's default.
 */
export function folder(
  settings: Settings,
  key: "VARRUN_PATH" | "STATE_PATH",
  instead: string | undefined,
): { path: string; source?: Location } {
  const entry = settings.entry(key);
  if (entry === undefined || entry.value.trim() === "") {
    return { path: instead ?? settings.get(key) as string };
  }
  return { path: settings.get(key) as string, source: entry.location };
}
