/**
 * The control protocol between the CLI and the daemon: one JSON request line
 * on the Unix socket, one JSON response line back.
 *
 * @module
 */

import { closeQuietly, writeAll } from "../net/conn.ts";
import type { ServiceAction } from "./actions.ts";
import type { DaemonStatus } from "./status.ts";
import type { ReloadSummary } from "../service/reload_plan.ts";

/** What the CLI can ask the daemon: of itself, or an action on a service. */
export type ControlRequest =
  | { command: "status" | "reload" | "stop" }
  | { command: "action"; action: ServiceAction };

/**
 * The daemon's answer. `message` is for people (a reload's lists summarised);
 * a reload's answer also has every name in `reload`, and `warnings`: each
 * warning it gave, one line each, `FILE:LINE: message` where there is a place
 * (an unknown key, a key that takes effect at restart), or those found beside
 * its errors.
 */
export type ControlResponse =
  | {
    ok: true;
    status: DaemonStatus;
    message?: string;
    reload?: ReloadSummary;
    warnings?: string[];
  }
  | { ok: false; error: string; warnings?: string[] };

/** The daemon did not answer on its control socket. */
export class NotRunningError extends Error {
  /** Creates the error with the reason the socket could not be used. */
  constructor(socket: string, reason: string) {
    super(`sleepingd is not running (no answer on ${socket}: ${reason})`);
    this.name = "NotRunningError";
  }
}

/** Longest the CLI waits for an answer; a reload or stop may run commands. */
const ANSWER_TIMEOUT_MS = 120_000;

/**
 * Sends one request to the daemon at `socket` and returns its answer.
 *
 * @throws {NotRunningError} when nothing listens on the socket
 */
export async function sendRequest(
  socket: string,
  request: ControlRequest,
): Promise<ControlResponse> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path: socket });
  } catch (error) {
    throw new NotRunningError(socket, (error as Error).message);
  }
  try {
    await writeAll(conn, new TextEncoder().encode(JSON.stringify(request) + "\n"));
    const signal = AbortSignal.timeout(ANSWER_TIMEOUT_MS);
    const answer = await readLine(conn, signal, "sleepingd did not answer in time");
    if (!answer.complete) {
      throw new Error(
        `sleepingd's answer was cut short after ${new TextEncoder().encode(answer.text).length} ` +
          "bytes, before its end of line: the daemon closed the connection while it answered",
      );
    }
    return JSON.parse(answer.text) as ControlResponse;
  } finally {
    closeQuietly(conn);
  }
}

/** The longest line either side of the control socket reads, in bytes. */
const LINE_LIMIT_BYTES = 16 * 1024 * 1024;

/** A line read by {@linkcode readLine}. */
export interface Line {
  /** The line, without its newline. */
  text: string;
  /** Whether it ended with a newline, rather than with the end of the stream. */
  complete: boolean;
}

/**
 * Reads up to the first newline (or the end), bounded in size and time.
 *
 * @param late the error's message when `signal` aborts the read first
 * @throws {Error} when the line is longer than 16 MiB, or too late
 */
export async function readLine(
  conn: Deno.Conn,
  signal: AbortSignal,
  late: string,
): Promise<Line> {
  const buffer = new Uint8Array(64 * 1024);
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  let complete = false;
  const onAbort = () => closeQuietly(conn);
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      const chunk = buffer.slice(0, n);
      const end = chunk.indexOf(0x0a); // only the new bytes are searched
      chunks.push(end < 0 ? chunk : chunk.subarray(0, end));
      bytes += n;
      complete = end >= 0;
      if (complete) break;
      if (bytes > LINE_LIMIT_BYTES) throw new Error("Control message is too long");
    }
  } catch (error) {
    if (signal.aborted) throw new Error(late);
    throw error;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  const line = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  chunks.reduce((at, chunk) => (line.set(chunk, at), at + chunk.length), 0);
  return { text: new TextDecoder().decode(line), complete };
}
