/**
 * Connecting to a backend: once (the awake fast path) or until it accepts
 * (the readiness wait after a start).
 *
 * @module
 */

import { sleep, startTimer } from "../timers.ts";
import { formatTarget, type Target } from "./address.ts";

/** Milliseconds one connection attempt may take, unless told otherwise (CONNECT_TIMEOUT's default). */
const ATTEMPT_TIMEOUT_MS = 5_000;
/** First pause between attempts; it grows ×1.5 up to {@linkcode MAX_BACKOFF_MS}. */
const FIRST_BACKOFF_MS = 20;
/** Longest pause between attempts. */
const MAX_BACKOFF_MS = 500;

/** Options of {@linkcode connectOnce}. */
export interface ConnectOptions {
  /** Aborting ends the attempt with the abort reason. */
  signal?: AbortSignal;
  /**
   * Milliseconds before the attempt counts as timed out.
   * @default 5000
   */
  timeoutMs?: number;
}

/**
 * Opens one TCP connection to `target`, tuned for forwarding.
 *
 * @throws the connect error (e.g. `Deno.errors.ConnectionRefused`), a
 * `Deno.errors.TimedOut` when the backend does not answer within
 * `timeoutMs`, or the abort reason
 */
export async function connectOnce(
  target: Target,
  { signal, timeoutMs = ATTEMPT_TIMEOUT_MS }: ConnectOptions = {},
): Promise<Deno.TcpConn> {
  signal?.throwIfAborted();
  // A timer cleared on success rather than AbortSignal.timeout(), which would stay pending
  // for the whole timeout after every connection: this runs once per proxied connection.
  // startTimer(), as CONNECT_TIMEOUT may be set past what one setTimeout holds.
  const attempt = new AbortController();
  let timedOut = false;
  const cancelTimer = startTimer(timeoutMs, () => {
    timedOut = true;
    attempt.abort();
  });
  const onAbort = () => attempt.abort(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const conn = await Deno.connect({ ...target, signal: attempt.signal });
    tuneConnection(conn);
    return conn;
  } catch (error) {
    if (timedOut) {
      throw new Deno.errors.TimedOut(
        `Connection to ${formatTarget(target)} timed out after ${seconds(timeoutMs)}s`,
      );
    }
    throw error;
  } finally {
    cancelTimer();
    signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * Told of each attempt of {@linkcode connectWhenReady}, e.g. to log it: its
 * number from 1, and for a failed one the error and the pause before the
 * next (none when the deadline has passed).
 */
export type OnAttempt = (attempt: number, failure?: { error: unknown; retryInMs?: number }) => void;

/** Options of {@linkcode connectWhenReady}. */
export interface ConnectWhenReadyOptions extends ConnectOptions {
  /** Told of each attempt. */
  onAttempt?: OnAttempt;
}

/**
 * Connects to `target`, retrying with a short backoff until it accepts or
 * `deadline` (epoch milliseconds) passes. Each attempt may take `timeoutMs`,
 * but none runs past the deadline.
 *
 * @returns the first connection that succeeded: the caller's own, not a probe
 * @throws the last connect error once the deadline has passed, or the abort reason
 */
export async function connectWhenReady(
  target: Target,
  deadline: number,
  { signal, timeoutMs = ATTEMPT_TIMEOUT_MS, onAttempt }: ConnectWhenReadyOptions = {},
): Promise<Deno.TcpConn> {
  let backoff = FIRST_BACKOFF_MS;
  for (let attempt = 1;; attempt++) {
    signal?.throwIfAborted();
    const attemptMs = Math.max(1, Math.min(timeoutMs, deadline - Date.now()));
    try {
      const conn = await connectOnce(target, { signal, timeoutMs: attemptMs });
      onAttempt?.(attempt);
      return conn;
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      const left = deadline - Date.now();
      if (left <= 0) {
        onAttempt?.(attempt, { error });
        throw error;
      }
      const retryInMs = Math.min(backoff, left);
      onAttempt?.(attempt, { error, retryInMs });
      await sleep(retryInMs, signal);
      backoff = Math.min(backoff * 1.5, MAX_BACKOFF_MS);
    }
  }
}

/**
 * Sets what every proxied connection needs: no Nagle delay (sleepingd passes
 * bytes on as they come), and TCP keepalive so that a peer that vanished
 * without a FIN does not hold a connection, and the service, awake forever.
 */
export function tuneConnection(conn: Deno.TcpConn): void {
  conn.setNoDelay(true);
  conn.setKeepAlive(true);
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(ms < 1000 ? 2 : 1).replace(/\.?0+$/, "");
}
