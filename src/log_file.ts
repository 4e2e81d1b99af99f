/**
 * The daemon's log file: appended line by line, rotated once it passes a
 * size, reopened on demand (SIGUSR1, after logrotate moved it), and never
 * opened through a link or into a file another user controls.
 *
 * @module
 */

import { openOwnFile } from "./fs/own_files.ts";

/** When the log file is rotated. */
export interface Rotation {
  /** Bytes past which the file is rotated (`LOG_MAX_SIZE`); 0 means never. */
  maxBytes: number;
  /** Files kept, the one written included (`LOG_MAX_FILES`), 1 or more. */
  maxFiles: number;
}

/** Permission bits of a log file sleepingd creates: its own user only. */
const NEW_FILE_MODE = 0o600;
/** Permission bits of a log folder sleepingd creates. */
const NEW_FOLDER_MODE = 0o750;

/** A log file being appended to. */
export class LogFile {
  /** Where the log goes, as configured. */
  readonly path: string;
  readonly #rotation: Rotation;
  /** What to do when a rotation fails: the file is written on, and rotation tried again later. */
  readonly #onRotationError: (error: Error) => void;
  #file: Deno.FsFile;
  /** Bytes in the file, as far as this process knows. */
  #size: number;
  /** The size at which the next rotation is tried; beyond `maxBytes` after one failed. */
  #rotateAt: number;

  /**
   * Opens `path` for appending, creating it (and its folder) when missing.
   *
   * @throws {Error} naming the file when it cannot be opened, or is not a
   *   regular file of this user's (a link, a folder, another user's file)
   */
  constructor(path: string, rotation: Rotation, onRotationError: (error: Error) => void) {
    this.path = path;
    this.#rotation = rotation;
    this.#onRotationError = onRotationError;
    this.#file = openLogFile(path);
    this.#size = this.#file.statSync().size;
    this.#rotateAt = rotation.maxBytes;
  }

  /**
   * Appends `line`, rotating first when it would take the file past
   * `maxBytes` (a line is never split: a longer one gets a file of its own).
   *
   * @throws {Error} when the line cannot be written (a full disk): the caller counts it
   */
  write(line: Uint8Array): void {
    const { maxBytes } = this.#rotation;
    if (maxBytes > 0 && this.#size > 0 && this.#size + line.length > this.#rotateAt) {
      this.#rotate(line.length);
    }
    let written = 0;
    while (written < line.length) written += this.#file.writeSync(line.subarray(written));
    this.#size += written;
  }

  /**
   * Opens the path again: after the file was moved away (logrotate), the log
   * goes on in a new file there.
   *
   * @throws {Error} when the path cannot be opened: the log goes on in the file it had
   */
  reopen(): void {
    this.#replace(openLogFile(this.path));
  }

  /** Closes the file. */
  close(): void {
    this.#file.close();
  }

  /**
   * Rotates: FILE.1 becomes FILE.2 (and so on, dropping those past
   * `maxFiles`), FILE becomes FILE.1, and a new FILE begins. When the path no
   * longer names this file (moved away without a SIGUSR1), the file there is
   * left alone and the log goes on in a new one. A failure leaves the log in
   * the file it had, and is tried again once `maxBytes` more are written.
   */
  #rotate(coming: number): void {
    try {
      // Someone else's rotation (copytruncate) may have shrunk the file since.
      this.#size = this.#file.statSync().size;
      if (this.#size === 0 || this.#size + coming <= this.#rotateAt) return;
      if (this.#isStillAtPath()) this.#shift();
      this.#replace(openLogFile(this.path));
    } catch (error) {
      this.#rotateAt = this.#size + this.#rotation.maxBytes;
      this.#onRotationError(error as Error);
    }
  }

  /** Renames FILE.N-1 to FILE.N, ..., FILE to FILE.1; removes what `maxFiles` leaves out. */
  #shift(): void {
    const { maxFiles } = this.#rotation;
    removeOldFiles(this.path, maxFiles);
    if (maxFiles === 1) {
      Deno.removeSync(this.path);
      return;
    }
    for (let n = maxFiles - 1; n >= 1; n--) {
      const from = n === 1 ? this.path : `${this.path}.${n - 1}`;
      try {
        Deno.renameSync(from, `${this.path}.${n}`); // renames a link itself, never its target
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound) || n === 1) throw error;
      }
    }
  }

  /** Whether the path still names the file being written. */
  #isStillAtPath(): boolean {
    try {
      const atPath = Deno.lstatSync(this.path);
      const open = this.#file.statSync();
      return atPath.dev === open.dev && atPath.ino === open.ino;
    } catch {
      return false;
    }
  }

  /** Writes to `file` from now on, and closes the one before. */
  #replace(file: Deno.FsFile): void {
    const old = this.#file;
    this.#file = file;
    this.#size = file.statSync().size;
    this.#rotateAt = this.#rotation.maxBytes;
    old.close();
  }
}

/**
 * Opens `path` for appending without following a link: a new file is made
 * with `createNew` (O_EXCL, which never follows one), mode 600; an existing
 * one is opened as the daemon's own files are (`fs/own_files.ts`: no link, a
 * regular file with one name, of a trusted owner, writable by no one else).
 */
function openLogFile(path: string): Deno.FsFile {
  const folder = path.slice(0, path.lastIndexOf("/"));
  try {
    if (folder && !exists(folder)) {
      Deno.mkdirSync(folder, { recursive: true, mode: NEW_FOLDER_MODE });
    }
    try {
      return Deno.openSync(path, { append: true, createNew: true, mode: NEW_FILE_MODE });
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    return openOwnFile(path, { append: true });
  } catch (error) {
    throw new Error(`Cannot open log file "${path}": ${(error as Error).message}`);
  }
}

/** Removes FILE.N for every N of `maxFiles` or more: a lower LOG_MAX_FILES keeps its bound. */
function removeOldFiles(path: string, maxFiles: number): void {
  const slash = path.lastIndexOf("/");
  const folder = slash < 0 ? "." : path.slice(0, slash) || "/";
  const base = path.slice(slash + 1);
  for (const entry of Deno.readDirSync(folder)) {
    const match = entry.name.startsWith(`${base}.`) &&
      /^\d+$/.exec(entry.name.slice(base.length + 1));
    if (match && Number(match[0]) >= maxFiles) Deno.removeSync(`${folder}/${entry.name}`);
  }
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
