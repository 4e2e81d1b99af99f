/**
 * The idle monitor: while a service is awake, one loop checks every
 * IDLE_CHECK_INTERVAL whether it should sleep, and stops it after IDLE_TIME
 * idle in a row.
 *
 * @module
 */

import type { ServiceConfig } from "../config/types.ts";
import { log } from "../log.ts";
import { describeResult, type ShellResult } from "../process/run_shell.ts";
import { sleep } from "../timers.ts";
import { type AwakeReasons, busyReason } from "./why_awake.ts";

/** One idle check's answer. */
export interface IdleVerdict {
  /**
   * - `busy`: a connection is open, it is kept awake or not yet awake for
   *   MIN_AWAKE_TIME, or IDLE_CMD says the backend is in use
   * - `idle`: idle, but not yet for IDLE_TIME
   * - `sleep`: idle for IDLE_TIME: stop the backend now
   */
  outcome: "busy" | "idle" | "sleep";
  /** Why, in words: `2 open connections`, `IDLE_CMD exit 1 ...`, `idle for 3.0s`. */
  reason: string;
}

/** What the monitor reads of its service, and how it stops it. */
export interface IdleInputs {
  /** The service's configuration now (a reload may change it). */
  config(): ServiceConfig;
  /** Why the service is awake at `now` (epoch milliseconds): the question `status` asks too. */
  whyAwake(now: number): AwakeReasons;
  /** Epoch milliseconds of the last connection or byte forwarded. */
  lastActivity(): number;
  /** Epoch milliseconds since which the service is awake. */
  awakeSince(): number;
  /** Why another sleepingd instance keeps the service from being idle, or undefined. */
  othersBusy(): Promise<string | undefined>;
  /** Runs IDLE_CMD; aborting `signal` kills it. */
  runIdleCmd(signal: AbortSignal): Promise<ShellResult>;
  /** Stops the service because it is idle. */
  stop(verdict: IdleVerdict): Promise<void>;
  /**
   * The last word before an idle stop (the kernel path withdraws its rules and
   * counts again): why the service stays awake after all, or undefined.
   */
  beforeStop?(): Promise<string | undefined>;
}

/** Checks one service's idleness while it is awake. */
export class IdleMonitor {
  readonly #inputs: IdleInputs;
  #loop?: AbortController;
  /** Since when IDLE_CMD has said idle without a break, when it is set. */
  #idleCmdSince?: number;
  readonly #log = log("idle");

  /** Creates a monitor that runs nothing until {@linkcode start}. */
  constructor(inputs: IdleInputs) {
    this.#inputs = inputs;
  }

  /** Whether a check loop runs now. */
  get running(): boolean {
    return this.#loop !== undefined;
  }

  /**
   * Starts checking with the configuration now in force, ending any loop of
   * an earlier configuration first. Nothing runs when IDLE_TIME or
   * IDLE_CHECK_INTERVAL is blank or 0: the service is never stopped for idleness.
   */
  start(): void {
    this.stop();
    const { idleTime, idleCheckInterval } = this.#inputs.config();
    if (!idleTime || !idleCheckInterval) return;
    const loop = new AbortController();
    this.#loop = loop;
    this.#watch(idleCheckInterval * 1000, loop.signal).catch(() => {}).finally(() => {
      if (this.#loop === loop) this.#loop = undefined;
    });
  }

  /** Ends the check loop, killing an IDLE_CMD under way. */
  stop(): void {
    this.#loop?.abort();
    this.#loop = undefined;
    this.#idleCmdSince = undefined;
  }

  /**
   * Decides whether the service should sleep now: it is idle when nothing
   * keeps it awake ({@linkcode busyReason}: no connection is open, it is not
   * kept awake, it has been awake for MIN_AWAKE_TIME) and IDLE_CMD (when set)
   * exits 0; it sleeps once it has been idle for IDLE_TIME in a row. Idleness
   * counts from the last activity (or from the wake); with IDLE_CMD, from the
   * first check where it said idle, as only the command knows what the
   * backend did before.
   */
  async shouldSleep(signal: AbortSignal = new AbortController().signal): Promise<IdleVerdict> {
    const inputs = this.#inputs;
    const now = Date.now();
    const busy = busyReason(inputs.whyAwake(now), now);
    if (busy) return this.#busy(busy);
    const { idleCmd, idleTime = 0 } = inputs.config();
    let since = Math.max(inputs.awakeSince(), inputs.lastActivity());
    if (idleCmd) {
      const result = await inputs.runIdleCmd(signal);
      if (result.code !== 0) return this.#busy(`IDLE_CMD ${describeResult(result)}`);
      this.#idleCmdSince ??= now;
      since = Math.max(since, this.#idleCmdSince);
    }
    const idleMs = Math.max(0, now - since);
    const idleFor = `idle for ${(idleMs / 1000).toFixed(1)}s`;
    if (idleMs < idleTime * 1000) {
      return { outcome: "idle", reason: `${idleFor} of IDLE_TIME ${idleTime}s` };
    }
    const others = await inputs.othersBusy();
    return others ? this.#busy(others) : { outcome: "sleep", reason: idleFor };
  }

  #busy(reason: string): IdleVerdict {
    this.#idleCmdSince = undefined;
    return { outcome: "busy", reason };
  }

  /**
   * Checks every `intervalMs` until `signal` is aborted (the service left
   * awake). A stop that was refused (another instance said no) or a check
   * that failed ends nothing: the next check asks again.
   */
  async #watch(intervalMs: number, signal: AbortSignal) {
    const service = this.#inputs.config().name;
    while (true) {
      await sleep(intervalMs, signal);
      let verdict;
      try {
        verdict = await this.shouldSleep(signal);
      } catch (error) {
        signal.throwIfAborted();
        this.#log.error("[{service}] idle check failed, trying again: {error}", {
          service,
          error: (error as Error).message,
        });
        continue;
      }
      signal.throwIfAborted();
      if (verdict.outcome === "sleep") {
        // The kernel path's last word: a connection it opened meanwhile keeps the service awake.
        const late = await this.#inputs.beforeStop?.();
        signal.throwIfAborted();
        if (late === undefined) {
          // Once stopped, the service is no longer awake, which aborts `signal`.
          await this.#inputs.stop(verdict).catch((error) => {
            this.#log.error("[{service}] idle stop failed, trying again: {error}", {
              service,
              error: (error as Error).message,
            });
          });
          continue;
        }
        verdict.outcome = "busy";
        verdict.reason = late;
        this.#idleCmdSince = undefined;
      }
      // Busy is worth a line at -v; the count towards IDLE_TIME only at --debug.
      if (verdict.outcome === "busy") {
        this.#log.debug("[{service}] not idle: {reason}", { service, reason: verdict.reason });
      } else {
        this.#log.trace("[{service}] idle check: {reason}", { service, reason: verdict.reason });
      }
    }
  }
}
