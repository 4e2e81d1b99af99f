/**
 * What another sleepingd instance did to a service's backend, taken in here:
 * a wake there (at a target this service trusts) makes it awake here too, so
 * that this instance's idle checks see to the stop should that one go; a stop
 * there makes it asleep here, without STOP_CMD (docs/ARCHITECTURE.md,
 * "Several instances").
 *
 * @module
 */

import type { ServiceConfig } from "../config/types.ts";
import type { Target } from "../net/address.ts";
import type { RunCommand } from "./commands.ts";
import type { Lifecycle } from "./lifecycle.ts";
import { trustPublished } from "./published_target.ts";
import type { ServiceStats } from "./stats.ts";

/** What following reads of its service, and how it takes a backend as awake. */
export interface FollowingInputs {
  /** The configuration now in force (a reload may change it). */
  config(): ServiceConfig;
  /** The service's life cycle. */
  life: Lifecycle;
  /** The service's counters: its own open clients keep it awake. */
  stats: Readonly<ServiceStats>;
  /** Runs the service's commands (CHECK_CMD, to trust a target). */
  run: RunCommand;
  /** Aborted when the service closes: a CHECK_CMD under way is killed. */
  closing: AbortSignal;
  /** Takes a running backend at `target` as awake; whether it was (the service was asleep). */
  adopt(target: Target, reason: string): boolean;
}

/** Follows the other instances' wakes and stops of one service. */
export class Following {
  readonly #inputs: FollowingInputs;

  /** Follows nothing until told. */
  constructor(inputs: FollowingInputs) {
    this.#inputs = inputs;
  }

  /**
   * Takes in that another instance stopped the backend: awake to asleep
   * without STOP_CMD, if no connection of this instance is open.
   */
  stoppedElsewhere(by: string): void {
    const { openConnections, openFlows, kernelConnections } = this.#inputs.stats;
    if (openConnections > 0 || openFlows > 0 || kernelConnections > 0) return;
    this.#inputs.life.tryTransition("awake", {
      to: "asleep",
      reason: `stopped by ${by}`,
      stopReason: "elsewhere",
    });
  }

  /**
   * Takes in that another instance woke the backend at `target`: awake here
   * too, if the service is asleep and trusts the target (see
   * {@linkcode trustPublished}), so that its idle checks see to the stop.
   */
  async followWake(target: Target, by: string): Promise<void> {
    const { life, run, closing } = this.#inputs;
    if (life.state !== "asleep") return;
    const trusted = await trustPublished(this.#inputs.config(), target, by, {
      run,
      signal: closing,
      known: life.lastTarget,
    });
    if (trusted) this.#inputs.adopt(trusted, `awake, woken by ${by}`);
  }
}
