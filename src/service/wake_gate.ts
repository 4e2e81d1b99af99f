/**
 * What a service's wake passes before its commands run, and what ends it
 * early: the wake budgets (MAX_WAKES_PER_HOUR and its total), the drain of a
 * removed service with the same backend, the services of DEPENDS_ON woken
 * first, and `sleep`'s cancel; with the last wake that failed, for the
 * waiting page (docs/ARCHITECTURE.md, "Service", "Dependencies").
 *
 * @module
 */

import type { ServiceConfig } from "../config/types.ts";
import { log } from "../log.ts";
import type { Target } from "../net/address.ts";
import { abortable } from "../timers.ts";
import { type Refusal, WakeBudget } from "./admission.ts";

/** A service of DEPENDS_ON, as a wake wakes it. */
export interface Dependency {
  /** Its configuration (its name). */
  readonly config: ServiceConfig;
  /** Wakes it (`cause` says why) until it is ready. */
  awakeTarget(cause: string, signal?: AbortSignal): Promise<Target>;
}

/** What the gate reads of its service and the others. */
export interface WakeGateInputs {
  /** The configuration now in force (a reload may change it). */
  config(): ServiceConfig;
  /** The wake budget of all services together (MAX_WAKES_PER_HOUR_TOTAL). */
  totalWakes: WakeBudget;
  /** Every service of the supervisor, for DEPENDS_ON. */
  services(): readonly Dependency[];
  /** Aborted when the service closes: every wake ends. */
  closing: AbortSignal;
}

/** The last wake that failed: when (epoch milliseconds), and why. */
export interface WakeFailure {
  /** Epoch milliseconds. */
  at: number;
  /** `wake failed: ...`. */
  message: string;
}

/** Lets one service's wakes begin, waits for what must come first, and cancels them. */
export class WakeGate {
  readonly #inputs: WakeGateInputs;
  readonly #wakes: WakeBudget;
  /** Aborted to cancel the wakes under way (`sleep`); replaced at once by a fresh one. */
  #cancel = new AbortController();
  /** Epoch milliseconds of the last {@linkcode cancel}: a schedule does not retry past it. */
  #cancelledAt = 0;
  /** A drain of the same backend (a service removed by an earlier reload) to await before waking. */
  #after?: { done: Promise<void>; what: string };
  #lastFailure?: WakeFailure;
  readonly #log = log("service");

  /** A gate that lets wakes through until a budget or a cancel says otherwise. */
  constructor(inputs: WakeGateInputs) {
    this.#inputs = inputs;
    this.#wakes = new WakeBudget("MAX_WAKES_PER_HOUR", () => inputs.config().maxWakesPerHour);
  }

  /** Why no wake may begin now (a wake rate limit), or undefined; a wake allowed is counted. */
  mayWake(): Refusal | undefined {
    const total = this.#inputs.totalWakes;
    const refusal = this.#wakes.refusal() ?? total.refusal();
    if (refusal) return refusal;
    this.#wakes.spend();
    total.spend();
    return undefined;
  }

  /**
   * The signal a wake beginning now runs under: aborted when the service
   * closes, or when this wake is cancelled (`sleep` during a wake).
   */
  signal(): AbortSignal {
    return AbortSignal.any([this.#inputs.closing, this.#cancel.signal]);
  }

  /** Ends the wakes under way with `reason`; later ones run as usual. */
  cancel(reason: string): void {
    this.#cancelledAt = Date.now();
    const cancel = this.#cancel;
    this.#cancel = new AbortController();
    cancel.abort(new Error(reason));
  }

  /** Epoch milliseconds of the last {@linkcode cancel}; 0 before any. */
  get cancelledAt(): number {
    return this.#cancelledAt;
  }

  /**
   * Makes the wakes wait for `done` first: the drain of a service a reload
   * removed, whose STOP_CMD stops the backend this one would wake (`what`
   * says which, for the log).
   */
  wakeAfter(done: Promise<void>, what: string): void {
    this.#after = { done, what };
  }

  /**
   * What a wake does before its commands: waits for the drain set by
   * {@linkcode wakeAfter} (once), then wakes the services of DEPENDS_ON, in
   * order, each until it is ready.
   *
   * @throws {Error} naming the dependency that did not wake, and why
   */
  async beforeWake(signal: AbortSignal): Promise<void> {
    await this.#afterDrain(signal);
    for (const dependency of this.#dependencies()) {
      try {
        await dependency.awakeTarget(`needed by ${this.#inputs.config().name}`, signal);
      } catch (error) {
        throw new Error(
          `${dependency.config.name} (DEPENDS_ON) did not wake: ${(error as Error).message}`,
        );
      }
    }
  }

  /**
   * Keeps a wake begun at `since` (epoch milliseconds) that failed with
   * `message` as the last failure, unless `sleep` cancelled it: a cancelled
   * wake did not fail (the next client, or a waiting page, wakes it again).
   */
  failed(message: string, since: number): void {
    if (this.#cancelledAt < since) this.#lastFailure = { at: Date.now(), message };
  }

  /** The last wake that failed; undefined before any. */
  get lastFailure(): WakeFailure | undefined {
    return this.#lastFailure;
  }

  /** Waits for the drain set by {@linkcode wakeAfter}, once. */
  async #afterDrain(signal: AbortSignal) {
    const after = this.#after;
    if (!after) return;
    this.#log.info("[{service}] waiting for {what} to stop first", {
      service: this.#inputs.config().name,
      what: after.what,
    });
    await abortable(after.done, signal);
    if (this.#after === after) this.#after = undefined;
  }

  /** The services of DEPENDS_ON, in order. */
  #dependencies(): Dependency[] {
    const all = this.#inputs.services();
    return this.#inputs.config().dependsOn.flatMap((name) =>
      all.filter((other) => other.config.name === name)
    );
  }
}
