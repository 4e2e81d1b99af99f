/**
 * The event log: every change of state and every start, reload and stop of
 * the daemon, kept in memory and appended to `STATE_PATH/events.jsonl` so
 * that it outlives a restart (docs/ARCHITECTURE.md, "History").
 *
 * @module
 */

import { openOwnFile, readOwnFile } from "../fs/own_files.ts";
import { log } from "../log.ts";
import type { State } from "../service/lifecycle.ts";
import { type DaemonEvent, type HistoryEvent, parseEvent } from "./event.ts";

/** Past this many bytes, `events.jsonl` becomes `events.jsonl.1` and a new one begins. */
export const FILE_LIMIT = 4 * 1024 * 1024;

/** The log file's name in STATE_PATH; the older one has `.1` added. */
export const LOG_FILE = "events.jsonl";

/** Where and how the log is written. */
export interface EventLogOptions {
  /** The folder (STATE_PATH); undefined keeps the log in memory only. */
  folder?: string;
  /** Where the folder is set, `FILE:LINE`, to begin a warning about it with. */
  folderSource?: string;
  /** Bytes a file may hold before the next one begins; {@linkcode FILE_LIMIT} by default. */
  fileLimit?: number;
  /** Every watched service's state now, written at the head of each new file. */
  states: () => Record<string, State>;
}

/**
 * Events oldest first, in memory and on disk. On disk it is bounded: two
 * files of at most `fileLimit` bytes (plus one line); in memory it holds what
 * the files hold. Nothing here throws once it is open: a file that cannot be
 * written is said once in the log, and the events are still kept in memory.
 */
export class EventLog {
  #events: HistoryEvent[] = [];
  /** How many of {@linkcode #events} came from the older file, to drop at the next rotation. */
  #inOlderFile = 0;
  #file?: Deno.FsFile;
  #size = 0;
  /** The file ended in the middle of a line (a daemon killed while writing): start a new one. */
  #brokenLine = false;
  #failing = false;
  readonly #listeners = new Set<(event: HistoryEvent) => void>();
  readonly #options: EventLogOptions;
  readonly #limit: number;
  readonly #log = log("history");

  /**
   * Opens the log in `options.folder` (creating it), reading back the events
   * that its files hold; corrupt or truncated lines are skipped with a warning.
   * Without a folder, or when it cannot be written, the log is kept in memory
   * only, with a warning naming the folder and why; so too when a file of the
   * log is a link, has other hard links or is another user's (never followed).
   */
  constructor(options: EventLogOptions) {
    this.#options = options;
    this.#limit = options.fileLimit ?? FILE_LIMIT;
    if (options.folder === undefined) return;
    try {
      this.#open(options.folder);
    } catch (error) {
      this.#log.warn(
        "{where}cannot keep the history in STATE_PATH {folder}: {error}; it lasts until " +
          "sleepingd stops",
        {
          where: options.folderSource ? `${options.folderSource}: ` : "",
          folder: options.folder,
          error: (error as Error).message,
        },
      );
    }
  }

  /** The events, oldest first. */
  get events(): readonly HistoryEvent[] {
    return this.#events;
  }

  /** The file the events are appended to, while there is one. */
  get path(): string | undefined {
    return this.#file ? `${this.#options.folder}/${LOG_FILE}` : undefined;
  }

  /** Calls `listener` with each event appended from now on; returns how to stop. */
  subscribe(listener: (event: HistoryEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Keeps `event`, writes it to the file and tells the listeners. When the
   * file would pass its limit, the next one begins (in memory too, where the
   * events of the older file are dropped), headed by each service's state.
   */
  append(event: HistoryEvent): void {
    const line = new TextEncoder().encode(JSON.stringify(event) + "\n");
    if (this.#size > 0 && this.#size + line.length > this.#limit) {
      this.#rotate();
      const head: DaemonEvent = {
        time: event.time,
        daemon: "continued",
        pid: Deno.pid,
        states: this.#options.states(),
      };
      this.#keep(head, new TextEncoder().encode(JSON.stringify(head) + "\n"));
    }
    this.#keep(event, line);
    for (const listener of this.#listeners) listener(event);
  }

  /** Closes the file; events appended after are kept in memory only. */
  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }

  #open(folder: string) {
    Deno.mkdirSync(folder, { recursive: true, mode: 0o750 });
    const current = `${folder}/${LOG_FILE}`;
    const older = this.#readFile(`${current}.1`);
    const newer = this.#readFile(current);
    this.#events = [...older.events, ...newer.events];
    this.#inOlderFile = older.events.length;
    this.#file = openOwnFile(current, { append: true, create: true, mode: 0o640 });
    this.#size = newer.bytes;
    this.#brokenLine = newer.bytes > 0 && !newer.endsWithNewline;
  }

  /** The events a file holds, skipping (and warning of) lines that are not events. */
  #readFile(path: string): { events: HistoryEvent[]; bytes: number; endsWithNewline: boolean } {
    let text: string;
    try {
      text = readOwnFile(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        return { events: [], bytes: 0, endsWithNewline: true };
      }
      throw error;
    }
    const events: HistoryEvent[] = [];
    const skipped: number[] = [];
    text.split("\n").forEach((line, index) => {
      if (line.trim() === "") return;
      const event = parseEvent(line);
      if (event) events.push(event);
      else skipped.push(index + 1);
    });
    if (skipped.length > 0) {
      this.#log.warn("{path}:{line}: skipped {count} line(s) that are not events{more}", {
        path,
        line: skipped[0],
        count: skipped.length,
        more: skipped.length > 1 ? ` (lines ${describeLines(skipped)})` : "",
      });
    }
    return {
      events,
      bytes: new TextEncoder().encode(text).length,
      endsWithNewline: text.endsWith("\n"),
    };
  }

  #keep(event: HistoryEvent, line: Uint8Array) {
    this.#events.push(event);
    this.#size += line.length;
    if (!this.#file) return;
    try {
      if (this.#brokenLine) writeAll(this.#file, new TextEncoder().encode("\n"));
      this.#brokenLine = false;
      writeAll(this.#file, line);
      if (this.#failing) this.#log.info("writing the history to {path} again", { path: this.path });
      this.#failing = false;
    } catch (error) {
      if (!this.#failing) {
        this.#log.warn("cannot write the history to {path}: {error}; it is kept in memory", {
          path: this.path,
          error: (error as Error).message,
        });
      }
      this.#failing = true;
    }
  }

  /**
   * Makes the current file the older one, replacing it, and begins a new one;
   * in memory, drops the events of the file replaced.
   */
  #rotate() {
    this.#events.splice(0, this.#inOlderFile);
    this.#inOlderFile = this.#events.length;
    this.#size = 0;
    if (!this.#file) return;
    const current = this.path!;
    this.#file.close();
    this.#file = undefined;
    try {
      Deno.renameSync(current, `${current}.1`);
      this.#file = openOwnFile(current, { append: true, create: true, mode: 0o640 });
    } catch (error) {
      this.#log.warn("cannot begin a new history file {path}: {error}; it is kept in memory", {
        path: current,
        error: (error as Error).message,
      });
    }
  }
}

/** `3, 5-9, 12`, cut after a few ranges. */
function describeLines(lines: number[]): string {
  const ranges: string[] = [];
  let start = lines[0];
  for (let index = 1; index <= lines.length; index++) {
    if (lines[index] === lines[index - 1] + 1) continue;
    const end = lines[index - 1];
    ranges.push(end === start ? `${start}` : `${start}-${end}`);
    start = lines[index];
  }
  return ranges.length > 5 ? `${ranges.slice(0, 5).join(", ")}...` : ranges.join(", ");
}

function writeAll(file: Deno.FsFile, bytes: Uint8Array) {
  let written = 0;
  while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
}
