/**
 * The daemon's state file, `VARRUN_PATH/state.json`: each service's state,
 * target and running START_CMD, saved at every change, so that a daemon
 * started after one that was killed knows what it left behind.
 *
 * @module
 */

import type { ServiceSnapshot } from "../service/service.ts";
import type { RunDir } from "./run_dir.ts";

/** What the state file holds. */
export interface SavedState {
  /** The pid of the daemon that wrote it. */
  pid: number;
  /** Each service as it was at the last change. */
  services: ServiceSnapshot[];
}

/** The state file's path in a run folder. */
function stateFile(dir: RunDir): string {
  return `${dir.path}/state.json`;
}

/** Reads the state a previous daemon saved; undefined when there is none or it cannot be read. */
export function readSavedState(dir: RunDir): SavedState | undefined {
  try {
    const saved = JSON.parse(Deno.readTextFileSync(stateFile(dir)));
    return Array.isArray(saved?.services) ? saved as SavedState : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Saves the services' state, replacing the file at once (written aside, then
 * renamed), so that a daemon killed while it writes leaves the last state whole.
 *
 * @throws {Error} when the folder cannot be written
 */
export function saveState(dir: RunDir, services: ServiceSnapshot[]): void {
  const file = stateFile(dir);
  const aside = `${file}.${Deno.pid}`;
  Deno.writeTextFileSync(aside, JSON.stringify({ pid: Deno.pid, services } satisfies SavedState));
  Deno.renameSync(aside, file);
}

/** Removes the state file: a daemon that shut down cleanly leaves nothing behind. */
export function removeSavedState(dir: RunDir): void {
  try {
    Deno.removeSync(stateFile(dir));
  } catch {
    // Already gone.
  }
}
