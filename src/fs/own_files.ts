/**
 * The daemon's own files, opened without following symbolic links and
 * replaced through aside files no one can predict: a link planted at a name
 * the daemon uses never makes it write, append to or read someone else's
 * file (docs/ARCHITECTURE.md, "Files"). Deno has no `O_NOFOLLOW`: a file is
 * looked at before it is opened (no link there), and what was opened is
 * compared with what the name holds (the same regular file, of a trusted
 * owner, with no other hard link).
 *
 * @module
 */

import { untrustedMode, UntrustedPathError } from "./trusted_path.ts";

/**
 * Opens `path` as `options` say, refusing a symbolic link, anything but a
 * regular file, a file with other hard links, and one that another user
 * owns or may write.
 *
 * @throws {UntrustedPathError} naming the file and what is wrong with it
 * @throws the errors of `Deno.openSync` (NotFound...)
 */
export function openOwnFile(path: string, options: Deno.OpenOptions): Deno.FsFile {
  refuseLinkOrSpecial(path);
  const file = Deno.openSync(path, options);
  try {
    const opened = file.statSync();
    const named = Deno.lstatSync(path);
    if (named.isSymlink || named.dev !== opened.dev || named.ino !== opened.ino) {
      throw new UntrustedPathError(`${path} was replaced while it was opened`);
    }
    if (!opened.isFile) throw new UntrustedPathError(`${path} is not a regular file`);
    if (opened.nlink !== null && opened.nlink > 1) {
      throw new UntrustedPathError(`${path} has ${opened.nlink - 1} other hard link(s)`);
    }
    const problem = untrustedMode(path, opened);
    if (problem) throw new UntrustedPathError(problem);
    return file;
  } catch (error) {
    file.close();
    throw error;
  }
}

/** The text of a file of the daemon's own, read as {@linkcode openOwnFile} opens it. */
export function readOwnFile(path: string): string {
  using file = openOwnFile(path, { read: true });
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * 1024);
  let total = 0;
  for (let n = file.readSync(buffer); n !== null; n = file.readSync(buffer)) {
    chunks.push(buffer.slice(0, n));
    total += n;
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return new TextDecoder().decode(all);
}

/**
 * Replaces `path` with `text` at once: written to an aside file of a name no
 * one can predict, created new (so that nothing planted there is followed),
 * with `mode`, then renamed over `path` (a rename replaces a link, never
 * what it points to).
 */
export function replaceOwnFile(path: string, text: string, mode: number): void {
  const suffix = Array.from(crypto.getRandomValues(new Uint8Array(8)), hex).join("");
  const aside = `${path}.${suffix}`;
  Deno.writeTextFileSync(aside, text, { createNew: true, mode });
  try {
    Deno.renameSync(aside, path);
  } catch (error) {
    Deno.removeSync(aside);
    throw error;
  }
}

/**
 * @throws {UntrustedPathError} when `path` is a symbolic link, or something
 * other than a regular file (a FIFO would block the open itself)
 */
function refuseLinkOrSpecial(path: string): void {
  let named: Deno.FileInfo;
  try {
    named = Deno.lstatSync(path);
  } catch {
    return; // Nothing there yet, or nothing to see: the open says what it finds.
  }
  if (named.isSymlink) {
    throw new UntrustedPathError(`${path} is a symbolic link: sleepingd never follows one`);
  }
  if (!named.isFile) throw new UntrustedPathError(`${path} is not a regular file`);
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}
