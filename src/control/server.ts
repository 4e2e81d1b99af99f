/**
 * The daemon's side of the control socket: owner-only, one request per
 * connection, and every answer written whole before the socket closes.
 *
 * @module
 */

import { log } from "../log.ts";
import { acceptConnections } from "../net/accept.ts";
import type { Budget } from "../net/budget.ts";
import { closeQuietly, writeAll } from "../net/conn.ts";
import { parseAction } from "./actions.ts";
import { type ControlRequest, type ControlResponse, readLine } from "./protocol.ts";

/** Answers one control request. */
export type ControlHandler = (request: ControlRequest) => Promise<ControlResponse>;

/** Longest a client may take to send its request. */
const REQUEST_TIMEOUT_MS = 5_000;

/**
 * Longest a client may take to read its answer: one that stops reading is cut
 * off then, so that it holds neither the connection nor the daemon's shutdown.
 */
const ANSWER_TIMEOUT_MS = 30_000;

/**
 * Listens on the Unix socket at `path` (replacing a stale socket file) with
 * owner-only permissions and answers each request with `handler`. The socket
 * is made in a folder of its own (mode 700) and moved into place once it is
 * mode 600, so that it is never open to others, even for a moment. Each
 * client counts in `budget` until it is answered; past its share, a client
 * is closed at once and said.
 *
 * @returns a function that closes the socket, then waits until every answer
 *   under way is written (or its client was cut off for not reading it), so
 *   that a daemon that stops still answers `sleepingd stop` in full
 */
export function serveControl(
  path: string,
  budget: Budget,
  handler: ControlHandler,
): () => Promise<void> {
  const folder = Deno.makeTempDirSync({ dir: path.slice(0, path.lastIndexOf("/")) || "/" });
  let listener: Deno.UnixListener;
  try {
    listener = Deno.listen({ transport: "unix", path: `${folder}/sock` });
    Deno.chmodSync(`${folder}/sock`, 0o600);
    Deno.renameSync(`${folder}/sock`, path); // replaces a stale socket file
  } finally {
    Deno.removeSync(folder, { recursive: true });
  }
  const logger = log("control");
  const answering = new Set<Promise<void>>();
  acceptConnections(listener, "control", (conn) => {
    if (!budget.acquire("control")) {
      closeQuietly(conn);
      logger.warn("refused a control client: {reason}", { reason: budget.full("control") });
      return;
    }
    const done = answer(conn, handler).catch((error) => {
      logger.warn("control request failed: {error}", { error: (error as Error).message });
    }).then(() => {
      budget.release("control");
      answering.delete(done);
    });
    answering.add(done);
  });
  return async () => {
    closeQuietly(listener);
    await Promise.all(answering);
  };
}

async function answer(conn: Deno.Conn, handler: ControlHandler) {
  try {
    const signal = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    const { text: line } = await readLine(conn, signal, "the client sent no request in time");
    let response: ControlResponse;
    try {
      const request = JSON.parse(line) as ControlRequest;
      if (!["status", "reload", "stop", "action"].includes(request?.command)) {
        throw new Error(`Unknown control command ${JSON.stringify(request?.command)}`);
      }
      if (request.command === "action") parseAction(request.action);
      response = await handler(request);
    } catch (error) {
      response = { ok: false, error: (error as Error).message };
    }
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      closeQuietly(conn);
    }, ANSWER_TIMEOUT_MS);
    try {
      await writeAll(conn, new TextEncoder().encode(JSON.stringify(response) + "\n"));
    } catch (error) {
      if (!late) throw error;
      throw new Error(`the client did not read its answer within ${ANSWER_TIMEOUT_MS / 1000}s`);
    } finally {
      clearTimeout(timer);
    }
  } finally {
    closeQuietly(conn);
  }
}
