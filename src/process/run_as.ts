/**
 * Running a command as another user (`USER`): the account from the password
 * database, `setpriv` (or `runuser`) to switch to it, and the environment and
 * folder such a command starts with: its own, not the daemon's.
 *
 * @module
 */

import { findExecutable } from "./which.ts";

/** A user from the password database. */
interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Looks `user` up with `getent passwd` (which sees NSS users too), else in /etc/passwd. */
async function lookUpUser(user: string): Promise<Account | undefined> {
  let lines: string[];
  const getent = findExecutable("getent");
  if (getent) {
    const out = await new Deno.Command(getent, {
      args: ["passwd", user],
      stdin: "null",
      stderr: "null",
    }).output();
    lines = out.success ? new TextDecoder().decode(out.stdout).split("\n") : [];
  } else {
    lines = (await Deno.readTextFile("/etc/passwd")).split("\n");
  }
  for (const line of lines) {
    const [name, , uid, gid, , home] = line.split(":");
    if (line.split(":").length >= 7 && (name === user || uid === user)) {
      return { name, uid: Number(uid), gid: Number(gid), home };
    }
  }
  return undefined;
}

/** The PATH a command run as another user gets when sleepingd has none. */
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** How to run a command as a user: the command line, its whole environment, its folder. */
export interface AsUser {
  /** `argv` prefixed with what switches to the user. */
  argv: string[];
  /**
   * The environment it starts with, in place of sleepingd's: PATH, LANG,
   * the variables `passEnv` names (from sleepingd's environment), and the
   * HOME, USER and LOGNAME a login as that user would set.
   */
  env: Record<string, string>;
  /** Its working folder: the user's home, or `/` when that is no folder. */
  cwd: string;
}

/**
 * Prefixes `argv` so that it runs as `user` (unchanged if we already are that
 * user), with a clean environment of its own and its home as working folder.
 *
 * @param passEnv names of sleepingd's environment variables the command gets too (PASS_ENV)
 * @throws {Error} when the user does not exist, sleepingd is not root, or
 * neither setpriv nor runuser is installed
 */
export async function asUser(
  user: string,
  argv: string[],
  passEnv: readonly string[] = [],
): Promise<AsUser> {
  const account = await lookUpUser(user);
  if (!account) throw new Error(`Cannot run command as user "${user}": no such user`);
  const { name, uid, gid, home } = account;
  const env: Record<string, string> = { PATH: Deno.env.get("PATH") ?? DEFAULT_PATH };
  for (const variable of ["LANG", ...passEnv]) {
    const value = Deno.env.get(variable);
    if (value !== undefined) env[variable] = value;
  }
  Object.assign(env, { HOME: home, USER: name, LOGNAME: name });
  const cwd = isFolder(home) ? home : "/";
  const self = Deno.uid();
  if (uid === self) return { argv, env, cwd };
  if (self !== 0) {
    throw new Error(
      `Cannot run command as user "${user}": sleepingd must run as root to switch users (running as uid ${self})`,
    );
  }
  // setpriv execs the command, which keeps our child's PID; runuser stays as its parent.
  const setpriv = findExecutable("setpriv");
  if (setpriv) {
    return {
      argv: [setpriv, `--reuid=${uid}`, `--regid=${gid}`, "--init-groups", "--", ...argv],
      env,
      cwd,
    };
  }
  const runuser = findExecutable("runuser");
  if (runuser) return { argv: [runuser, "-u", name, "--", ...argv], env, cwd };
  throw new Error(`Cannot run command as user "${user}": neither setpriv nor runuser is on PATH`);
}

function isFolder(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}
