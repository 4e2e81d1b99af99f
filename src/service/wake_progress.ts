/**
 * What a wake that takes a while is waiting for, in words: for the log
 * (a line every few seconds), for `status` and for `sleepingd wake`.
 *
 * @module
 */

import type { ServiceConfig } from "../config/types.ts";
import { log } from "../log.ts";
import { formatTarget, type Target } from "../net/address.ts";

/** How often a wake under way says what it waits for, in the log. */
export const PROGRESS_EVERY_MS = 5_000;

/** A step of a wake, as it begins; `since` is when it began (epoch milliseconds). */
export type WakeStep =
  | { step: "dependencies"; since: number }
  | { step: "check"; since: number }
  | { step: "start"; since: number }
  /** READY_CMD runs until it exits 0; READY_TIMEOUT counts from `since`. */
  | { step: "ready"; since: number; target: Target }
  /** The target is tried until it accepts; READY_TIMEOUT counts from `since`. */
  | { step: "connect"; since: number; target: Target };

/** Who waits for the wake: clients held, and datagrams queued (UDP). */
export interface Waiting {
  /** Clients held until the backend is ready. */
  clients: number;
  /** Datagrams queued until the backend is ready. */
  datagrams: number;
}

/** Tells a wake's steps and failed attempts to whoever watches it. */
export interface WakeObserver {
  /** A step begins. */
  step(step: WakeStep): void;
  /** A try of the step failed, e.g. a refused connection; the step goes on. */
  attemptFailed(reason: string): void;
}

/** The progress of one wake: its step, how long it has taken, who waits for it. */
export class WakeProgress implements WakeObserver {
  #step?: WakeStep;
  #lastFailure?: string;
  readonly #config: () => ServiceConfig;
  readonly #waiting: () => Waiting;

  /** Creates the progress of a wake of the service whose configuration `config` gives. */
  constructor(config: () => ServiceConfig, waiting: () => Waiting) {
    this.#config = config;
    this.#waiting = waiting;
  }

  /** Records the step that begins; its failed tries are forgotten. */
  step(step: WakeStep): void {
    this.#step = step;
    this.#lastFailure = undefined;
  }

  /** Records why the last try of the step failed. */
  attemptFailed(reason: string): void {
    this.#lastFailure = reason.replace(/ \(os error \d+\)$/, "");
  }

  /**
   * What the wake waits for, e.g. `waiting for 10.0.0.5:22: 20 s of
   * READY_TIMEOUT 60 s, 3 clients held; last try: Connection refused`;
   * undefined before its first step.
   */
  describe(now = Date.now()): string | undefined {
    const step = this.#step;
    if (step === undefined) return undefined;
    const config = this.#config();
    const seconds = Math.floor((now - step.since) / 1000);
    const limit = (key: string, timeout?: number) =>
      timeout ? `${seconds} s of ${key} ${timeout} s` : `${seconds} s`;
    const what = step.step === "dependencies"
      ? `waking ${config.dependsOn.join(", ")} (DEPENDS_ON) first: ${seconds} s`
      : step.step === "check"
      ? `running CHECK_CMD: ${limit("CHECK_CMD_TIMEOUT", config.checkCmd?.timeout)}`
      : step.step === "start"
      ? `running START_CMD: ${limit("START_CMD_TIMEOUT", config.startCmd?.timeout)}`
      : step.step === "ready"
      ? `waiting for READY_CMD to pass for ${formatTarget(step.target)}: ` +
        limit("READY_TIMEOUT", config.readyTimeout)
      : `waiting for ${formatTarget(step.target)}: ${limit("READY_TIMEOUT", config.readyTimeout)}`;
    const last = this.#lastFailure ? `; last try: ${this.#lastFailure}` : "";
    return `${what}, ${describeWaiting(this.#waiting())}${last}`;
  }

  /**
   * Logs {@linkcode describe} for the service every {@linkcode PROGRESS_EVERY_MS}
   * until the returned function is called.
   */
  logEvery(name: string): () => void {
    const logger = log("service");
    const timer = setInterval(() => {
      const text = this.describe();
      if (text) logger.info("[{service}] {progress}", { service: name, progress: text });
    }, PROGRESS_EVERY_MS);
    return () => clearInterval(timer);
  }
}

/** `3 clients held`, `1 client held, 12 datagrams queued`, `no client held`. */
function describeWaiting({ clients, datagrams }: Waiting): string {
  const held = clients === 0
    ? "no client held"
    : `${clients} client${clients === 1 ? "" : "s"} held`;
  return datagrams === 0
    ? held
    : `${held}, ${datagrams} datagram${datagrams === 1 ? "" : "s"} queued`;
}
