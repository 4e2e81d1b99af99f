/**
 * STOP_CMD, in the three places it runs, and the claim that lets it run when
 * other instances share the backend: a stop of an awake service (idle,
 * asked, removed, shutdown), the clean-up after a failed wake, and the
 * clean-up after a killed daemon's wake or stop (docs/ARCHITECTURE.md,
 * "Service", "Crash recovery", "Several instances").
 *
 * @module
 */

import type { ServiceConfig } from "../config/types.ts";
import { log } from "../log.ts";
import type { Target } from "../net/address.ts";
import { sleep } from "../timers.ts";
import { loggedAlready, requireSuccess, type RunCommand } from "./commands.ts";
import { ALONE, type Claim, type Coordinator } from "./coordinator.ts";
import type { Lifecycle } from "./lifecycle.ts";
import type { StopReason } from "./recorder.ts";
import type { ServiceStats } from "./stats.ts";
import type { WakeError } from "./wake.ts";

/** Milliseconds between two claims to clean up after a crash while etcd cannot say. */
const CLAIM_RETRY_MS = 1_000;

/** What the stops read of their service, and what they run. */
export interface StopperInputs {
  /** The configuration now in force (a reload may change it). */
  config(): ServiceConfig;
  /** The service's life cycle, which each stop leads through `stopping`. */
  life: Lifecycle;
  /** The service's counters: a client that came meanwhile calls an idle stop off. */
  stats: Readonly<ServiceStats>;
  /** The other instances in front of the same backend (ALONE when there are none). */
  coordinator: Coordinator;
  /** Runs the service's commands. */
  run: RunCommand;
  /** FORWARD=kernel: resolves once no rule points at the backend any more. */
  kernelSettled(): Promise<void> | undefined;
  /** Aborted when the service closes: the claim after a crash is not asked again. */
  closing: AbortSignal;
}

/** Runs one service's STOP_CMD, claimed from the other instances first. */
export class Stopper {
  readonly #inputs: StopperInputs;
  /** The last refusal of a stop logged, so that one repeated at every idle check is logged once. */
  #lastRefusal?: string;
  readonly #log = log("service");

  /** Stops nothing until asked. */
  constructor(inputs: StopperInputs) {
    this.#inputs = inputs;
  }

  /**
   * Stops the backend with STOP_CMD if the service is awake, and waits until
   * no stop is under way. A wake under way is left to finish. With other
   * instances, the stop is claimed first; `beforeStop` runs once it may go
   * ahead, before STOP_CMD (to let the connections finish).
   *
   * @param reason why, for metrics
   * @param detail why, for the log
   * @returns why another instance (or etcd's silence) keeps it from stopping now, or, for an
   * idle stop, the client let in since the idle check, when one does
   */
  async stop(
    reason: StopReason,
    detail: string = reason,
    beforeStop?: () => Promise<void>,
  ): Promise<string | undefined> {
    const { life, coordinator } = this.#inputs;
    let claim: Claim | undefined;
    // Alone, nothing to ask: the stop begins at once, as it always did.
    if (life.state === "awake" && coordinator !== ALONE) {
      const answer = await coordinator.claimStop(this.#inputs.config().name, reason);
      if ("refusal" in answer) {
        this.#logRefusal(detail, answer.refusal);
        return answer.refusal;
      }
      claim = answer.claim;
      const busy = reason === "idle" ? await this.#busySinceAsked() : undefined;
      if (busy) {
        claim.end();
        this.#logRefusal(detail, busy);
        return busy;
      }
    }
    if (beforeStop) await beforeStop();
    // An idle stop was decided on counts read before the awaits since; a TCP client let in
    // meanwhile (its accept's continuation ran between them) keeps the service awake. Read
    // here, with nothing awaited before the change to stopping, no client can come in between.
    const opened = reason === "idle" ? this.#openNow() : undefined;
    if (opened) {
      claim?.end();
      this.#logRefusal(detail, opened);
      return opened;
    }
    this.#lastRefusal = undefined;
    if (!life.tryTransition("awake", { to: "stopping", stopReason: reason, reason: detail })) {
      claim?.end();
      while (life.state === "stopping") await life.changed();
      return undefined;
    }
    await this.#inputs.kernelSettled(); // no rule left pointing at a backend about to stop
    const done = await this.#runStopCmd();
    life.transition("stopping", { to: "asleep", reason: done });
    claim?.end({ state: "asleep" });
    return undefined;
  }

  /**
   * After a failed wake: STOP_CMD if START_CMD ran, even if it failed or
   * timed out (nothing is left half-started: a VM or container may be on its
   * way up), then asleep. Clients arriving meanwhile wait for this stop.
   */
  async afterFailedWake(error: WakeError): Promise<void> {
    const life = this.#inputs.life;
    const reason = `wake failed: ${error.message}`;
    if (!error.startRan || !this.#inputs.config().stopCmd) {
      life.transition("starting", { to: "asleep", reason });
      return;
    }
    life.transition("starting", {
      to: "stopping",
      stopReason: "failed_wake",
      target: error.target,
      reason,
    });
    const done = await this.#runStopCmd();
    life.transition("stopping", { to: "asleep", reason: `${done} after the failed wake` });
  }

  /**
   * Cleans up after a wake or a stop that a killed daemon left unfinished:
   * from asleep to stopping at once (clients arriving meanwhile wait, then
   * wake the service), then `endLeftovers` (ending the commands it left
   * running), then STOP_CMD (at `target`, when known), then asleep. Nothing
   * happens unless the service is asleep.
   */
  async afterCrash(
    reason: string,
    target: Target | undefined,
    endLeftovers: () => Promise<void>,
  ): Promise<void> {
    const life = this.#inputs.life;
    const entry = { to: "stopping", stopReason: "after_crash", reason, target } as const;
    if (!life.tryTransition("asleep", entry)) return;
    await endLeftovers();
    // With other instances, STOP_CMD runs under the claim, unless another is waking or stopping it.
    const claim = await this.#claimAfterCrash();
    if (typeof claim === "string") {
      life.transition("stopping", { to: "asleep", reason: claim });
      return;
    }
    life.transition("stopping", { to: "asleep", reason: await this.#runStopCmd() });
    claim.end({ state: "asleep" });
  }

  /**
   * The claim to clean up after a crash: asked again each second while etcd
   * cannot say (no stop on a guess), until the service closes.
   *
   * @returns the claim, or why there is none (another instance is waking or stopping it)
   */
  async #claimAfterCrash(): Promise<Claim | string> {
    const { coordinator, closing } = this.#inputs;
    while (true) {
      const answer = await coordinator.claimStop(this.#inputs.config().name, "after_crash");
      if ("claim" in answer) return answer.claim;
      this.#logRefusal("cleaning up after the crash", answer.refusal);
      if (!answer.unreachable || closing.aborted) return `no STOP_CMD: ${answer.refusal}`;
      await sleep(CLAIM_RETRY_MS, closing).catch(() => {});
    }
  }

  /**
   * Why an idle stop claimed may not go on after all: a client came here, or
   * another instance published one, while the lock was being taken (asking
   * once more narrows the time a client elsewhere goes unseen to one publication).
   */
  async #busySinceAsked(): Promise<string | undefined> {
    const { openConnections, openFlows, kernelConnections } = this.#inputs.stats;
    const open = openConnections + openFlows + kernelConnections;
    if (open > 0) return `${open} connection${open === 1 ? "" : "s"} opened meanwhile`;
    const config = this.#inputs.config();
    return await this.#inputs.coordinator.othersBusy(config.name, config.idleTime ?? 0);
  }

  /**
   * Why the service is busy now after all: TCP connections open, proxied or
   * through the kernel, as the idle check counts them (UDP flows are no such
   * reason: each datagram is activity); undefined when none is.
   */
  #openNow(): string | undefined {
    const { openConnections, kernelConnections } = this.#inputs.stats;
    const open = openConnections + kernelConnections;
    return open > 0 ? `${open} connection${open === 1 ? "" : "s"} opened meanwhile` : undefined;
  }

  /** Logs why a stop may not happen now, once in a row for the same refusal (each idle check asks). */
  #logRefusal(detail: string, refusal: string) {
    if (refusal === this.#lastRefusal) return;
    this.#lastRefusal = refusal;
    this.#log.info("[{service}] not stopping ({reason}): {refusal}", {
      service: this.#inputs.config().name,
      reason: detail,
      refusal,
    });
  }

  /**
   * Runs STOP_CMD (when set), logging a failure rather than throwing.
   *
   * @returns how it went, for the change to asleep: `STOP_CMD done`, `STOP_CMD failed`, `no STOP_CMD`
   */
  async #runStopCmd(): Promise<string> {
    const spec = this.#inputs.config().stopCmd;
    if (!spec) return "no STOP_CMD";
    try {
      const result = await this.#inputs.run("stop", spec, { target: this.#inputs.life.target });
      requireSuccess("stop", result);
      return "STOP_CMD done";
    } catch (error) {
      if (!loggedAlready(error)) {
        this.#log.error("[{service}] {reason}", {
          service: this.#inputs.config().name,
          reason: (error as Error).message,
        });
      }
      return "STOP_CMD failed";
    }
  }
}
