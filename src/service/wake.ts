/**
 * One wake of a backend, on its own: CHECK_CMD, START_CMD, READY_CMD, then
 * the first connection the target accepts. It changes no state: the caller
 * (routing) owns the life cycle and decides what a failure means.
 *
 * @module
 */

import type { ServiceConfig } from "../config/types.ts";
import { log } from "../log.ts";
import { formatTarget, parseTarget, type Target } from "../net/address.ts";
import { connectWhenReady } from "../net/connect.ts";
import { describeResult, firstLine } from "../process/run_shell.ts";
import { sleep } from "../timers.ts";
import { type Action, CommandError, requireSuccess, type RunCommand } from "./commands.ts";
import type { WakeObserver } from "./wake_progress.ts";

/**
 * Exit codes with which the shell says a command cannot run at all (126: not
 * executable, 127: not found): running it again until READY_TIMEOUT is futile.
 */
const CANNOT_RUN = [126, 127];
/** First pause between READY_CMD runs; it doubles up to one second. */
const FIRST_READY_BACKOFF_MS = 50;

/** What a wake needs to know. */
export interface WakeRequest {
  /** The service's configuration. */
  config: ServiceConfig;
  /** Runs the service's commands (and records them). */
  run: RunCommand;
  /** Aborting ends the wake: commands are killed, the wait for readiness ends. */
  signal: AbortSignal;
  /** The client whose connection asked for the wake, for the commands' environment. */
  client?: Deno.NetAddr;
  /** The target of an earlier wake: used when CHECK_CMD says up without naming one. */
  knownTarget?: Target;
  /**
   * Told the target as soon as CHECK_CMD or START_CMD named it, before the
   * readiness wait: so that it can be saved for a daemon that starts after
   * this one died mid-wake.
   */
  onTarget?: (target: Target) => void;
  /** Told of each step as it begins, and of each failed try, to say what the wake waits for. */
  observer?: WakeObserver;
}

/** A backend that is up, and the connection that proved it (none for PROTOCOL=udp). */
export interface Woken {
  /** Where the backend listens. */
  target: Target;
  /** The connection that proved readiness: it belongs to a client, it is no probe. */
  conn?: Deno.TcpConn;
}

/** A connection to the backend for one client. */
export interface Backend {
  /** Where it goes. */
  target: Target;
  /** The connection. */
  conn: Deno.TcpConn;
}

/** A wake that did not end with a connection; its message says why. */
export class WakeError extends Error {
  /** Whether START_CMD ran (even if it failed or timed out): then STOP_CMD must clean up. */
  readonly startRan: boolean;
  /** The target START_CMD or CHECK_CMD named, when the failure came after it. */
  readonly target?: Target;

  /** Creates the error with the reason as message. */
  constructor(message: string, options: ErrorOptions & { startRan?: boolean; target?: Target }) {
    super(message, options);
    this.name = "WakeError";
    this.startRan = options.startRan ?? false;
    this.target = options.target;
  }
}

/**
 * Wakes the backend: runs CHECK_CMD (when set), then START_CMD unless the
 * check said the backend is up; then READY_CMD (when set) until it exits 0;
 * then, when PORT is TCP, connects to the target until it accepts. READY_CMD
 * and the connection share the READY_TIMEOUT deadline, which no connection
 * attempt outlasts. A UDP backend is ready once READY_CMD (or START_CMD)
 * exited 0: nothing else can tell.
 *
 * @returns the target and the connection that proved it ready (none for UDP)
 * @throws {WakeError} saying why, and whether START_CMD ran
 */
export async function wake(request: WakeRequest): Promise<Woken> {
  const progress: { startRan: boolean; target?: Target } = { startRan: false };
  try {
    progress.target = await bringUp(request, progress);
    request.onTarget?.(progress.target);
    return { target: progress.target, conn: await waitReady(request, progress.target) };
  } catch (error) {
    const reason = request.signal.aborted ? request.signal.reason : error;
    throw new WakeError(reason instanceof Error ? reason.message : String(reason), {
      cause: error,
      ...progress,
    });
  }
}

/**
 * Asks CHECK_CMD whether the backend is up (exit 0), telling it the target
 * when known.
 *
 * @returns the target it printed (or `known`) when it is up; `null` when it
 * is down, or up at a target it does not name and we do not know; undefined
 * when the service has no CHECK_CMD
 */
export async function checkBackend(
  config: ServiceConfig,
  run: RunCommand,
  signal: AbortSignal,
  known?: Target,
): Promise<Target | null | undefined> {
  if (!config.checkCmd) return undefined;
  const check = await run("check", config.checkCmd, { target: known, signal });
  return check.code === 0 ? targetFrom("check", check.stdout, known) ?? null : null;
}

/**
 * CHECK_CMD, then START_CMD unless the check named (or we know) the target.
 * START_CMD counts as run once its process exists: a wake aborted before
 * that leaves nothing for STOP_CMD to clean up.
 */
async function bringUp(
  { config, run, signal, client, knownTarget, observer }: WakeRequest,
  progress: { startRan: boolean },
): Promise<Target> {
  const { checkCmd, startCmd } = config;
  if (checkCmd) {
    observer?.step({ step: "check", since: Date.now() });
    const check = await run("check", checkCmd, { client, signal });
    signal.throwIfAborted();
    const target = check.code === 0 ? targetFrom("check", check.stdout, knownTarget) : undefined;
    if (target) return target;
    if (!startCmd) {
      if (CANNOT_RUN.includes(check.code)) {
        throw new CommandError(`CHECK_CMD cannot run: ${describeResult(check)}`, check);
      }
      if (check.code !== 0) {
        throw new CommandError(
          `CHECK_CMD says the backend is down (${describeResult(check)}) and there is no START_CMD`,
          check,
        );
      }
      throw new CommandError("CHECK_CMD exited with 0 but printed no target (IP PORT)");
    }
  }
  observer?.step({ step: "start", since: Date.now() });
  const onSpawn = () => progress.startRan = true;
  const start = requireSuccess("start", await run("start", startCmd!, { client, signal, onSpawn }));
  const target = targetFrom("start", start.stdout, knownTarget);
  if (!target) throw new CommandError("START_CMD exited with 0 but printed no target (IP PORT)");
  return target;
}

/** Reads the target from a command's first output line; falls back to the known target. */
function targetFrom(action: Action, stdout: string, known?: Target): Target | undefined {
  const line = firstLine(stdout);
  if (line === "") return known;
  try {
    return parseTarget(line);
  } catch (error) {
    const key = action === "check" ? "CHECK_CMD" : "START_CMD";
    throw new CommandError(`${key} printed no target: ${(error as Error).message}`);
  }
}

/**
 * Waits until the backend is ready: READY_CMD exits 0 (when set), then the
 * target accepts a connection (TCP only), both within READY_TIMEOUT.
 */
async function waitReady(
  { config, run, signal, observer }: WakeRequest,
  target: Target,
): Promise<Deno.TcpConn | undefined> {
  const { readyCmd, readyTimeout, connectTimeout } = config;
  const since = Date.now();
  const deadline = since + readyTimeout * 1000;
  if (readyCmd) {
    observer?.step({ step: "ready", since, target });
    let backoff = FIRST_READY_BACKOFF_MS;
    while (true) {
      const left = (deadline - Date.now()) / 1000;
      const ready = await run("ready", readyCmd, {
        target,
        signal,
        maxSeconds: Math.max(left, 0.001),
      });
      signal.throwIfAborted();
      if (ready.code === 0) break;
      if (CANNOT_RUN.includes(ready.code)) {
        throw new CommandError(`READY_CMD cannot run: ${describeResult(ready)}`, ready);
      }
      observer?.attemptFailed(`READY_CMD ${describeResult(ready)}`);
      if (Date.now() + backoff >= deadline) {
        throw new CommandError(
          `READY_CMD did not exit 0 within READY_TIMEOUT (${readyTimeout}s): last run ${
            describeResult(ready)
          }`,
          ready,
        );
      }
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, 1000);
    }
  }
  if (config.protocol === "udp") return undefined;
  const logger = log("connect");
  const address = formatTarget(target);
  observer?.step({ step: "connect", since, target });
  try {
    return await connectWhenReady(target, deadline, {
      signal,
      timeoutMs: connectTimeout * 1000,
      onAttempt: (attempt, failure) => {
        if (failure) observer?.attemptFailed((failure.error as Error).message);
        logger.trace("[{service}] connect attempt {attempt} to {target}: {outcome}", () => ({
          service: config.name,
          attempt,
          target: address,
          outcome: failure === undefined
            ? "accepted"
            : `${(failure.error as Error).message}; ${
              failure.retryInMs === undefined
                ? "READY_TIMEOUT is over"
                : `next in ${failure.retryInMs}ms`
            }`,
        }));
      },
    });
  } catch (error) {
    signal.throwIfAborted();
    throw new Error(
      `${address} did not accept a connection within READY_TIMEOUT (${readyTimeout}s): ${
        (error as Error).message
      }`,
    );
  }
}
