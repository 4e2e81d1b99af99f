/**
 * The daemon's files under VARRUN_PATH: pidfile, control socket, default log.
 *
 * @module
 */

import { userFolders, userName } from "../config/folders.ts";
import { replaceOwnFile } from "../fs/own_files.ts";
import { requireTrustedFolder } from "../fs/trusted_path.ts";
import { isAlive, startedAt } from "../process/proc_stat.ts";

/** Paths of the daemon's files in one VARRUN_PATH. */
export interface RunDir {
  /** The folder itself. */
  path: string;
  /** `sleepingd.pid`: the daemon's pid while it runs. */
  pidfile: string;
  /** `sleepingd.sock`: the control socket (owner only). */
  socket: string;
  /** `sleepingd.log`: where `sleepingd start` sends the log unless LOG_FILE says otherwise. */
  log: string;
}

/** The daemon's file paths under `varrunPath`. */
export function runDir(varrunPath: string): RunDir {
  const path = varrunPath.replace(/\/+$/, "") || "/";
  return {
    path,
    pidfile: `${path}/sleepingd.pid`,
    socket: `${path}/sleepingd.sock`,
    log: `${path}/sleepingd.log`,
  };
}

/** Another daemon already runs with this VARRUN_PATH. */
export class AlreadyRunningError extends Error {
  /** Creates the error for the daemon with `pid`. */
  constructor(readonly pid: number, pidfile: string) {
    super(`sleepingd is already running (pid ${pid}, from ${pidfile})`);
    this.name = "AlreadyRunningError";
  }
}

/**
 * How much later than the process's start its pidfile may be dated and still
 * be its own: the boot time in /proc is to the second, and the daemon writes
 * its pidfile well within this of starting.
 */
const PIDFILE_SLACK_MS = 2_000;

/**
 * The pid in the pidfile when that process is alive and is the daemon that
 * wrote it, else undefined (no file, or stale). The pidfile holds the pid
 * alone, the convention `kill -USR1 $(cat sleepingd.pid)` relies on; the
 * process it names is the daemon that wrote it only if its command line runs
 * sleepingd and it started before the pidfile was written: a pid reused by
 * another process (after the daemon died, or a reboot that kept VARRUN_PATH)
 * started later, and is never signalled.
 */
export function runningPid(pidfile: string): number | undefined {
  let text: string;
  let written: number;
  try {
    text = Deno.readTextFileSync(pidfile);
    written = Deno.statSync(pidfile).mtime?.getTime() ?? Infinity;
  } catch {
    return undefined;
  }
  const pid = Number(text.split("\n")[0].trim());
  if (!Number.isInteger(pid) || pid <= 0 || pid === Deno.pid || !isAlive(pid)) return undefined;
  const started = startedAt(pid);
  if (started === undefined || started > written + PIDFILE_SLACK_MS) return undefined;
  return namesSleepingd(pid) ? pid : undefined;
}

/**
 * Whether the command line of `pid` runs sleepingd: the executable, or deno
 * with its main.ts or the packages' bundle.
 */
function namesSleepingd(pid: number): boolean {
  try {
    const argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
    return argv.some((arg) => /(^|\/)sleepingd(\.js)?$|\/src\/main\.ts$/.test(arg));
  } catch {
    return false;
  }
}

/**
 * Creates the folder if it does not exist yet (mode 700), once it is sure
 * that no other user can change the folders on its way, and that it is the
 * daemon's user's own when it exists.
 *
 * @throws {UntrustedPathError} naming the folder and the fix when another user could change it
 * @throws {Error} naming the folder and the key to change when it cannot be created
 */
export function createRunDir(dir: RunDir): void {
  requireTrustedFolder(dir.path, "VARRUN_PATH");
  try {
    Deno.mkdirSync(dir.path, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new Error(
      `Cannot create VARRUN_PATH "${dir.path}": ${(error as Error).message}: ${advice(dir)}`,
    );
  }
  requireTrustedFolder(dir.path, "VARRUN_PATH");
}

/**
 * Creates the folder and writes this process's pid, replacing the pidfile of
 * a daemon that is gone.
 *
 * @throws {AlreadyRunningError} when a live daemon holds the pidfile
 * @throws {Error} naming the folder when it cannot be created or written
 */
export function claimRunDir(dir: RunDir): void {
  createRunDir(dir);
  const pid = runningPid(dir.pidfile);
  if (pid !== undefined) throw new AlreadyRunningError(pid, dir.pidfile);
  try {
    replaceOwnFile(dir.pidfile, `${Deno.pid}\n`, 0o640);
  } catch (error) {
    throw new Error(
      `Cannot write pidfile "${dir.pidfile}": ${(error as Error).message}: ${advice(dir)}`,
    );
  }
}

/** What to do about a VARRUN_PATH this user cannot write: which folder to choose instead. */
function advice(dir: RunDir): string {
  const own = Deno.uid() === 0 ? undefined : userFolders()?.varrunPath;
  const example = own !== undefined && own !== dir.path ? `, e.g. ${own}` : "";
  return `set VARRUN_PATH to a folder ${userName()} can write${example}`;
}

/** Removes the pidfile and the socket if they are still this process's. */
export function releaseRunDir(dir: RunDir): void {
  try {
    if (Number(Deno.readTextFileSync(dir.pidfile).split("\n")[0]) !== Deno.pid) return;
    Deno.removeSync(dir.pidfile);
    Deno.removeSync(dir.socket);
  } catch {
    // Already gone.
  }
}
