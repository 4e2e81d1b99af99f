/**
 * The daemon's state file, `VARRUN_PATH/state.json`: each service's state,
 * target and running START_CMD, saved at every change, so that a daemon
 * started after one that was killed knows what it left behind.
 *
 * @module
 */

import { readOwnFile, replaceOwnFile } from "../fs/own_files.ts";
import { UntrustedPathError } from "../fs/trusted_path.ts";
import { log } from "../log.ts";
import type { ServiceSnapshot } from "../service/command_runs.ts";
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

/**
 * Reads the state a previous daemon saved; undefined when there is none or it
 * cannot be read. A state file that is a link, or that another user owns or
 * may write, is not trusted: it is ignored with a warning, as what it says
 * would make the daemon end a process and adopt a backend.
 */
export function readSavedState(dir: RunDir): SavedState | undefined {
  try {
    const saved = JSON.parse(readOwnFile(stateFile(dir)));
    return Array.isArray(saved?.services) ? saved as SavedState : undefined;
  } catch (error) {
    if (error instanceof UntrustedPathError) {
      log("recovery").warn("ignoring what the last daemon saved: {problem}", {
        problem: error.message,
      });
    }
    return undefined;
  }
}

/**
 * Saves the services' state, replacing the file at once (written aside, then
 * renamed), so that a daemon killed while it writes leaves the last state
 * whole; readable by the daemon's user only.
 *
 * @throws {Error} when the folder cannot be written
 */
export function saveState(dir: RunDir, services: ServiceSnapshot[]): void {
  const state: SavedState = { pid: Deno.pid, services };
  replaceOwnFile(stateFile(dir), JSON.stringify(state), 0o600);
}

/** Removes the state file: a daemon that shut down cleanly leaves nothing behind. */
export function removeSavedState(dir: RunDir): void {
  try {
    Deno.removeSync(stateFile(dir));
  } catch {
    // Already gone.
  }
}
