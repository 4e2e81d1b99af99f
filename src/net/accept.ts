/**
 * The accept loop: accept, hand off, repeat — whatever goes wrong with one
 * connection or for a while (out of file descriptors), the listener keeps
 * accepting until it is closed.
 *
 * @module
 */

import { log } from "../log.ts";
import { sleep } from "../timers.ts";
import { formatAddr } from "./address.ts";
import { closeQuietly } from "./conn.ts";

/** First pause after an accept that failed for a reason of ours, e.g. EMFILE; it doubles. */
const FIRST_BACKOFF_MS = 10;
/** Longest pause between accepts while they keep failing. */
const MAX_BACKOFF_MS = 1_000;
/**
 * An episode of failing accepts ends once accepts have gone this long without a failure:
 * longer than a backoff, so that the loop's own pauses never count as quiet.
 */
const QUIET_MS = 2 * MAX_BACKOFF_MS;

/** Whether an accept error only says that the client went away before it was accepted. */
function isClientGone(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.NotConnected;
}

/** Whether an accept error says that the listener itself was closed. */
function isListenerClosed(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted;
}

/**
 * Accepts connections on `listener` until it is closed, handing each to
 * `onConnection`, which owns it from then on.
 *
 * - A client that went away before it was accepted concerns that client alone.
 * - An error of ours (EMFILE, ENFILE, ENOBUFS...) would fail again at once:
 *   the loop backs off (10 ms doubling up to 1 s). It logs the episode once
 *   when it begins, and once when accepts have gone two seconds without a
 *   failure, with the count of failures.
 * - `onConnection` throwing closes that connection and is logged; the loop
 *   goes on.
 *
 * @param name the service (or `control`), for the log
 * @returns once the listener is closed
 */
export async function acceptConnections<C extends Deno.Conn>(
  listener: Deno.Listener<C>,
  name: string,
  onConnection: (conn: C) => void,
): Promise<void> {
  const logger = log("accept");
  const address = formatAddr(listener.addr);
  let episode: { since: number; failures: number; lastFailure: number } | undefined;
  let backoff = FIRST_BACKOFF_MS;
  let ending: ReturnType<typeof setTimeout> | undefined;
  const endEpisodeWhenQuiet = () => {
    ending = undefined;
    if (!episode) return;
    const quiet = Date.now() - episode.lastFailure;
    if (quiet < QUIET_MS) {
      ending = setTimeout(endEpisodeWhenQuiet, QUIET_MS - quiet);
      return;
    }
    logger.warn(
      "[{service}] accepting on {address} again after {failures} failed accepts in {seconds}s",
      {
        service: name,
        address,
        failures: episode.failures,
        seconds: ((episode.lastFailure - episode.since) / 1000).toFixed(1),
      },
    );
    episode = undefined;
    backoff = FIRST_BACKOFF_MS;
  };
  try {
    while (true) {
      let conn: C;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (isListenerClosed(error)) return;
        if (isClientGone(error)) {
          logger.debug("[{service}] a client left before it was accepted: {error}", {
            service: name,
            error,
          });
          continue;
        }
        const now = Date.now();
        if (!episode) {
          episode = { since: now, failures: 0, lastFailure: now };
          logger.warn("[{service}] cannot accept on {address}: {error}; retrying until it works", {
            service: name,
            address,
            error,
          });
        }
        episode.failures++;
        episode.lastFailure = now;
        await sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        continue;
      }
      if (episode && ending === undefined) ending = setTimeout(endEpisodeWhenQuiet, QUIET_MS);
      try {
        onConnection(conn);
      } catch (error) {
        closeQuietly(conn);
        logger.error("[{service}] cannot take the connection from {peer}: {error}", {
          service: name,
          peer: formatAddr(conn.remoteAddr),
          error,
        });
      }
    }
  } finally {
    clearTimeout(ending);
  }
}
