/**
 * The daemon's side of the control socket: owner-only, one request per
 * connection.
 *
 * @module
 */

import { log } from "../log.ts";
import { closeQuietly, writeAll } from "../net/conn.ts";
import { type ControlRequest, type ControlResponse, readLine } from "./protocol.ts";

/** Answers one control request. */
export type ControlHandler = (request: ControlRequest) => Promise<ControlResponse>;

/** Longest a client may take to send its request. */
const REQUEST_TIMEOUT_MS = 5_000;

/**
 * Listens on the Unix socket at `path` (replacing a stale socket file) with
 * owner-only permissions and answers each request with `handler`.
 *
 * @returns a function that closes the socket
 */
export function serveControl(path: string, handler: ControlHandler): () => void {
  try {
    Deno.removeSync(path);
  } catch {
    // No stale socket.
  }
  const listener = Deno.listen({ transport: "unix", path });
  Deno.chmodSync(path, 0o600);
  const logger = log("control");
  (async () => {
    for await (const conn of listener) {
      answer(conn, handler).catch((error) => {
        logger.warn("control request failed: {error}", { error: (error as Error).message });
      });
    }
  })().catch(() => {});
  return () => closeQuietly(listener);
}

async function answer(conn: Deno.Conn, handler: ControlHandler) {
  try {
    const line = await readLine(conn, AbortSignal.timeout(REQUEST_TIMEOUT_MS));
    let response: ControlResponse;
    try {
      const request = JSON.parse(line) as ControlRequest;
      if (!["status", "reload", "stop"].includes(request?.command)) {
        throw new Error(`Unknown control command ${JSON.stringify(request?.command)}`);
      }
      response = await handler(request);
    } catch (error) {
      response = { ok: false, error: (error as Error).message };
    }
    await writeAll(conn, new TextEncoder().encode(JSON.stringify(response) + "\n"));
  } finally {
    closeQuietly(conn);
  }
}
