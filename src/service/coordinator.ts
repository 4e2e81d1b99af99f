/**
 * How a service coordinates its life cycle with other sleepingd instances in
 * front of the same backend (docs/ARCHITECTURE.md, "Several instances"):
 * who may run START_CMD and STOP_CMD, and whether the others are idle. A
 * claim to run them is held until it is ended, once, by its holder alone,
 * saying what came of it. Alone (the default), every answer is "go ahead".
 *
 * @module
 */

import type { Target } from "../net/address.ts";
import type { StopReason } from "./recorder.ts";

/** What became of the backend under a claim: awake at a target, or asleep. */
export type Outcome = { state: "awake"; target: Target } | { state: "asleep" };

/** The right to run a service's commands, held by this instance until it is ended. */
export interface Claim {
  /**
   * Ends the claim, telling the other instances `outcome`; undefined when
   * the backend did not change in a way they need to know. Later calls do nothing.
   */
  end(outcome?: Outcome): void;
}

/** A wake may run its commands under `claim`, or another instance has the backend awake at `target`. */
export type WakeClaim = { run: true; claim: Claim } | { target: Target; by: string };

/**
 * A stop may run under `claim`, or not now, for `refusal`; `unreachable`
 * when etcd could not say (asking again later may get another answer).
 */
export type StopClaim = { claim: Claim } | { refusal: string; unreachable?: boolean };

/**
 * Decides whether a target another instance published may be used: the
 * target to use, or undefined to wake the backend here instead.
 */
export type TrustTarget = (target: Target, by: string) => Promise<Target | undefined>;

/** The other instances, as a service sees them. */
export interface Coordinator {
  /**
   * Waits until this instance may wake `service` (it then holds the claim),
   * or another instance has it awake at a target `trust` accepts.
   */
  claimWake(service: string, signal: AbortSignal, trust: TrustTarget): Promise<WakeClaim>;
  /** Why another instance keeps `service` from being idle, or undefined when none does. */
  othersBusy(service: string, idleTime: number): Promise<string | undefined>;
  /** Whether this instance may stop `service` now: the claim to do so, or why not. */
  claimStop(service: string, reason: StopReason): Promise<StopClaim>;
  /** `service`'s backend at `target` refused a connection: it is gone, the others should know. */
  gone(service: string, target: Target): void;
  /**
   * The first client came to `service` (none was connected): the others
   * should know at once, lest one of them stop the backend on a stale count.
   */
  firstClient(service: string): void;
}

/** A claim that tells no one anything: alone, or when no claim could be had. */
export const NO_CLAIM: Claim = { end() {} };

/** One instance alone: it may always wake and stop, and nobody else is busy. */
export const ALONE: Coordinator = {
  claimWake: () => Promise.resolve({ run: true, claim: NO_CLAIM }),
  othersBusy: () => Promise.resolve(undefined),
  claimStop: () => Promise.resolve({ claim: NO_CLAIM }),
  gone() {},
  firstClient() {},
};
