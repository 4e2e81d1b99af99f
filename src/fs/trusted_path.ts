/**
 * Whether a path can be changed by nobody but root and the daemon's own
 * user: what a daemon running as root writes, reads back and acts on must not
 * sit where another user could plant a link or a forged file
 * (docs/ARCHITECTURE.md, "Files").
 *
 * @module
 */

/** A path another user could change: the daemon refuses to use it. */
export class UntrustedPathError extends Error {
  /** Creates the error; `message` names the path, what is wrong and the fix. */
  constructor(message: string) {
    super(message);
    this.name = "UntrustedPathError";
  }
}

/** Symbolic links followed at most while walking a path, as the kernel does. */
const MAX_LINKS = 40;

/** Whether `uid` may own what the daemon trusts: root, or the daemon's user. */
export function isTrustedOwner(uid: number | null): boolean {
  return uid === 0 || uid === Deno.uid();
}

/**
 * Why a file or folder that exists is not trusted: owned by another user, or
 * writable by its group or every user (`sticky` allows that to a folder with
 * the sticky bit, such as /tmp, where others cannot rename or remove what is
 * not theirs); undefined when it is trusted.
 */
export function untrustedMode(
  path: string,
  info: Deno.FileInfo,
  sticky = false,
): string | undefined {
  if (!isTrustedOwner(info.uid)) {
    return `${path} is owned by uid ${info.uid}, not by root or sleepingd's user (uid ${Deno.uid()})`;
  }
  const mode = info.mode ?? 0;
  if ((mode & 0o022) !== 0 && !(sticky && (mode & 0o1000) !== 0)) {
    const who = mode & 0o002 ? "every user" : "its group";
    return `${path} is writable by ${who} (mode ${(mode & 0o7777).toString(8)})`;
  }
  return undefined;
}

/**
 * Why `path` is not trusted, or undefined when it is: every folder on the way
 * to it must be owned by root or the daemon's user and writable by no one
 * else (sticky folders such as /tmp excepted), and so must `path` itself,
 * without exception. A symbolic link on the way (such as /var/run) must be
 * owned by root or the daemon's user, and where it leads is checked the same
 * way. A part that does not exist yet ends the walk: the daemon creates it,
 * in a folder it trusts (so does one it may not look at: it cannot use it either).
 */
export function untrustedReason(path: string): string | undefined {
  const absolute = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  let pending = parts(absolute);
  let current = "/";
  let links = 0;
  const root = untrustedMode("/", Deno.statSync("/"), true);
  if (root) return root;
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === ".") continue;
    if (name === "..") {
      current = current.slice(0, current.lastIndexOf("/")) || "/";
      continue;
    }
    const next = current === "/" ? `/${name}` : `${current}/${name}`;
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(next);
    } catch {
      return undefined; // Not there yet, or not to be seen: creating or opening it will say.
    }
    if (info.isSymlink) {
      if (!isTrustedOwner(info.uid)) {
        return `${next} is a symbolic link owned by uid ${info.uid}, not by root or ` +
          `sleepingd's user (uid ${Deno.uid()})`;
      }
      if (++links > MAX_LINKS) return `${next}: too many symbolic links`;
      const target = Deno.readLinkSync(next);
      if (target.startsWith("/")) current = "/";
      pending = [...parts(target), ...pending];
      continue;
    }
    const last = pending.length === 0;
    const problem = untrustedMode(next, info, !last);
    if (problem) return problem;
    current = next;
  }
  return undefined;
}

/**
 * Refuses a folder the daemon would keep its files in (`key` names it in the
 * configuration) when another user could change it.
 *
 * @throws {UntrustedPathError} naming the folder, what is wrong and the fix
 */
export function requireTrustedFolder(path: string, key: string): void {
  const problem = untrustedReason(path);
  if (problem === undefined) return;
  throw new UntrustedPathError(
    `Cannot use ${key} "${path}": ${problem}, so another user could replace or plant the ` +
      `files sleepingd keeps there: set ${key} to a folder only root and sleepingd's user can ` +
      "change, or make each folder on its way theirs and writable by them alone (chown, " +
      "chmod go-w)",
  );
}

function parts(path: string): string[] {
  return path.split("/").filter((part) => part !== "");
}
