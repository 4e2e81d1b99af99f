/**
 * Running a command as another user (`USER`): the account from the password
 * database, and `setpriv` (or `runuser`) to switch to it.
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

/**
 * Prefixes `argv` so that it runs as `user` (unchanged if we already are that
 * user), and gives the HOME, USER and LOGNAME a login as that user would set.
 *
 * @throws {Error} when the user does not exist, sleepingd is not root, or
 * neither setpriv nor runuser is installed
 */
export async function asUser(
  user: string,
  argv: string[],
): Promise<{ argv: string[]; env: Record<string, string> }> {
  const account = await lookUpUser(user);
  if (!account) throw new Error(`Cannot run command as user "${user}": no such user`);
  const { name, uid, gid, home } = account;
  const env = { HOME: home, USER: name, LOGNAME: name };
  const self = Deno.uid();
  if (uid === self) return { argv, env };
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
    };
  }
  const runuser = findExecutable("runuser");
  if (runuser) return { argv: [runuser, "-u", name, "--", ...argv], env };
  throw new Error(`Cannot run command as user "${user}": neither setpriv nor runuser is on PATH`);
}
