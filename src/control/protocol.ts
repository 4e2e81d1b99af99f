/**
 * The control protocol between the CLI and the daemon: one JSON request line
 * on the Unix socket, one JSON response line back.
 *
 * @module
 */

import { closeQuietly, writeAll } from "../net/conn.ts";
import type { DaemonStatus } from "./status.ts";

/** What the CLI can ask the daemon. */
export type ControlRequest = { command: "status" | "reload" | "stop" };

/** The daemon's answer. */
export type ControlResponse =
  | { ok: true; status: DaemonStatus; message?: string }
  | { ok: false; error: string };

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
    const answer = await readLine(conn, AbortSignal.timeout(ANSWER_TIMEOUT_MS));
    return JSON.parse(answer) as ControlResponse;
  } finally {
    closeQuietly(conn);
  }
}

/** Reads up to the first newline (or the end), bounded in size and time. */
export async function readLine(conn: Deno.Conn, signal?: AbortSignal): Promise<string> {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(64 * 1024);
  let text = "";
  const onAbort = () => closeQuietly(conn);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    while (!text.includes("\n")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += decoder.decode(buffer.subarray(0, n), { stream: true });
      if (text.length > 16 * 1024 * 1024) throw new Error("Control message is too long");
    }
  } catch (error) {
    if (signal?.aborted) throw new Error("sleepingd did not answer in time");
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  return text.split("\n", 1)[0];
}
