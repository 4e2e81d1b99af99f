/**
 * The folders the daemon writes to (VARRUN_PATH, STATE_PATH): whether this
 * user can write them, and the folders of its own that a user other than
 * root gets when the defaults cannot be written and the configuration does
 * not choose.
 *
 * @module
 */

import type { GlobalConfig, Location } from "./types.ts";

/** Where this user's daemon keeps its files when VARRUN_PATH and STATE_PATH are left to it. */
export interface UserFolders {
  /** `$XDG_RUNTIME_DIR/sleepingd`, else `STATE/run`. */
  varrunPath: string;
  /** `${XDG_STATE_HOME:-~/.local/state}/sleepingd`. */
  statePath: string;
}

/** The folders of this user's own, or undefined without a home to put them in. */
export function userFolders(): UserFolders | undefined {
  const home = Deno.env.get("HOME");
  const stateHome = absolute(Deno.env.get("XDG_STATE_HOME")) ??
    (home ? `${home.replace(/\/+$/, "")}/.local/state` : undefined);
  if (stateHome === undefined) return undefined;
  const statePath = `${stateHome}/sleepingd`;
  const runtime = absolute(Deno.env.get("XDG_RUNTIME_DIR"));
  return { varrunPath: runtime ? `${runtime}/sleepingd` : `${statePath}/run`, statePath };
}

/** `path` when it is absolute, as the XDG variables must be; otherwise undefined. */
function absolute(path: string | undefined): string | undefined {
  return path?.startsWith("/") ? path.replace(/\/+$/, "") : undefined;
}

/**
 * The folders to use instead of the defaults of VARRUN_PATH and STATE_PATH
 * when the configuration leaves them blank: for a user other than root,
 * each default this user cannot write is replaced by a folder of its own;
 * root keeps the defaults.
 */
export function folderDefaults(
  defaults: { varrunPath: string; statePath: string },
): Partial<UserFolders> {
  if (Deno.uid() === 0) return {};
  const own = userFolders();
  if (own === undefined) return {};
  const chosen: Partial<UserFolders> = {};
  if (whyNotWritable(defaults.varrunPath)) chosen.varrunPath = own.varrunPath;
  if (whyNotWritable(defaults.statePath)) chosen.statePath = own.statePath;
  return chosen;
}

/** This process's user as messages name it: `uid 1000 (alice)`, its name from /etc/passwd. */
export function userName(): string {
  const uid = Deno.uid();
  let name: string | undefined;
  try {
    name = Deno.readTextFileSync("/etc/passwd").split("\n").map((line) => line.split(":"))
      .find((fields) => fields[2] === String(uid))?.[0];
  } catch {
    // No /etc/passwd: the number alone.
  }
  return name ? `uid ${uid} (${name})` : `uid ${uid}`;
}

/**
 * Why this user cannot create the folder `path` (when it does not exist)
 * and files in it, from the permissions of the folder or of the nearest one
 * above it that exists; undefined when it can. Root can write any folder.
 *
 * @returns e.g. `/var/run is root's, mode 755`, `/etc/hostname is not a folder`
 */
export function whyNotWritable(path: string): string | undefined {
  let folder = path.replace(/\/+$/, "") || "/";
  while (true) {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(folder);
    } catch (error) {
      // Missing, under a file, or under a folder this user cannot search: the folder above says.
      const passable = [
        Deno.errors.NotFound,
        Deno.errors.NotADirectory,
        Deno.errors.PermissionDenied,
      ];
      if (!passable.some((kind) => error instanceof kind)) {
        return `${folder} cannot be read: ${(error as Error).message}`;
      }
      if (folder === "/") return "/ does not exist";
      folder = folder.slice(0, folder.lastIndexOf("/")) || "/";
      continue;
    }
    if (!info.isDirectory) return `${folder} is not a folder`;
    const uid = Deno.uid();
    if (uid === 0) return undefined;
    const mode = info.mode ?? 0;
    const bits = info.uid === uid
      ? mode >> 6
      : groups().includes(info.gid ?? -1)
      ? mode >> 3
      : mode;
    if ((bits & 0o3) === 0o3) return undefined; // write and search
    const owner = info.uid === 0 ? "root's" : `uid ${info.uid}'s`;
    return `${folder} is ${owner}, mode ${(mode & 0o777).toString(8)}`;
  }
}

/** This process's group and supplementary groups, from /proc/self/status. */
function groups(): number[] {
  const own = [Deno.gid() ?? -1];
  try {
    const line = Deno.readTextFileSync("/proc/self/status").match(/^Groups:(.*)$/m)?.[1] ?? "";
    return [...own, ...line.trim().split(/\s+/).filter(Boolean).map(Number)];
  } catch {
    return own;
  }
}

/** A folder of the configuration that this user cannot write, and what that costs. */
export interface FolderWarning {
  /** Where the key is set; undefined when the folder is the default. */
  location?: Location;
  /** `VARRUN_PATH` or `STATE_PATH`. */
  key: string;
  /** What is wrong, what it costs and what to do, in one line. */
  message: string;
}

/** What each folder the daemon writes to costs when this user cannot write it. */
const COSTS = {
  VARRUN_PATH: '"sleepingd start" would fail, and "sleepingd run" would go without status, ' +
    "reload and stop",
  STATE_PATH: "the history would last only until sleepingd stops",
};

/** A warning for VARRUN_PATH and for STATE_PATH when this user cannot write it. */
export function folderWarnings(global: GlobalConfig): FolderWarning[] {
  const own = Deno.uid() === 0 ? undefined : userFolders();
  const folders = [
    {
      key: "VARRUN_PATH",
      path: global.varrunPath,
      at: global.varrunPathSource,
      own: own?.varrunPath,
    },
    { key: "STATE_PATH", path: global.statePath, at: global.statePathSource, own: own?.statePath },
  ] as const;
  return folders.flatMap(({ key, path, at, own }) => {
    const why = whyNotWritable(path);
    if (why === undefined) return [];
    const example = own !== undefined && own !== path ? `, e.g. ${own}` : "";
    return [{
      ...(at ? { location: at } : {}),
      key,
      message: `${key} "${path}" cannot be written by ${userName()}: ${why}; ${COSTS[key]}; ` +
        `set ${key} to a folder ${userName()} can write${example}`,
    }];
  });
}
