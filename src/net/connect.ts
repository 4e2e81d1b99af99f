/**
 * Connecting to a backend: once (the awake fast path) or until it accepts
 * (the readiness wait after a start).
 *
 * @module
 */

import { formatTarget, type Target } from "./address.ts";

/** Milliseconds one connection attempt may take before it counts as failed. */
const ATTEMPT_TIMEOUT_MS = 5_000;
/** First pause between attempts; it grows ×1.5 up to {@linkcode MAX_BACKOFF_MS}. */
const FIRST_BACKOFF_MS = 20;
/** Longest pause between attempts. */
const MAX_BACKOFF_MS = 500;

/**
 * Opens one TCP connection to `target`, giving up after a few seconds.
 *
 * @throws the connect error (e.g. `Deno.errors.ConnectionRefused`) or a
 * `Deno.errors.TimedOut` when the backend does not answer
 */
export async function connectOnce(target: Target, signal?: AbortSignal): Promise<Deno.TcpConn> {
  signal?.throwIfAborted();
  // A timer cleared on success rather than AbortSignal.timeout(), which would stay pending
  // for the whole timeout after every connection: this runs once per proxied connection.
  const attempt = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    attempt.abort();
  }, ATTEMPT_TIMEOUT_MS);
  const onAbort = () => attempt.abort(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const conn = await Deno.connect({ ...target, signal: attempt.signal });
    tuneConnection(conn);
    return conn;
  } catch (error) {
    if (timedOut) {
      throw new Deno.errors.TimedOut(
        `Connection to ${formatTarget(target)} timed out after ${ATTEMPT_TIMEOUT_MS / 1000}s`,
      );
    }
    throw error;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * Connects to `target`, retrying with a short backoff until it accepts or
 * `deadline` (epoch milliseconds) passes.
 *
 * @returns the first connection that succeeded: the caller's own, not a probe
 * @throws the last connect error once the deadline has passed, or the abort reason
 */
export async function connectWhenReady(
  target: Target,
  deadline: number,
  signal?: AbortSignal,
): Promise<Deno.TcpConn> {
  let backoff = FIRST_BACKOFF_MS;
  while (true) {
    signal?.throwIfAborted();
    try {
      return await connectOnce(target, signal);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      const left = deadline - Date.now();
      if (left <= 0) throw error;
      await sleep(Math.min(backoff, left), signal);
      backoff = Math.min(backoff * 1.5, MAX_BACKOFF_MS);
    }
  }
}

/**
 * Sets what every proxied connection needs: no Nagle delay (sleepingd passes
 * bytes on as they come), and TCP keepalive so that a peer that vanished
 * without a FIN does not hold a connection, and the service, awake forever.
 */
export function tuneConnection(conn: Deno.TcpConn) {
  conn.setNoDelay(true);
  conn.setKeepAlive(true);
}

/** Waits `ms` milliseconds, or rejects with the abort reason. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
