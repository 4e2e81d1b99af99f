/**
 * How a service coordinates its life cycle with other sleepingd instances in
 * front of the same backend (docs/ARCHITECTURE.md, "Several instances"):
 * who may run START_CMD and STOP_CMD, and whether the others are idle. Alone
 * (the default), every answer is "go ahead".
 *
 * @module
 */

import type { Target } from "../net/address.ts";
import type { StopReason } from "./recorder.ts";

/** A wake may run its commands, or another instance has the backend awake at `target`. */
export type WakeClaim = { run: true } | { target: Target; by: string };

/** The other instances, as a service sees them. */
export interface Coordinator {
  /**
   * Waits until this instance may wake `service` (it then holds the
   * service's lock), or another instance has it awake.
   */
  claimWake(service: string, signal: AbortSignal): Promise<WakeClaim>;
  /** A wake this instance ran has ended: awake at `target`, or failed (undefined). */
  wakeEnded(service: string, target: Target | undefined): void;
  /** Why another instance keeps `service` from being idle, or undefined when none does. */
  othersBusy(service: string, idleTime: number): Promise<string | undefined>;
  /** Why this instance may not stop `service` now, or undefined: it then holds the lock. */
  claimStop(service: string, reason: StopReason): Promise<string | undefined>;
  /** A stop this instance claimed has ended (`stopped`), or did not happen. */
  stopEnded(service: string, stopped: boolean): void;
}

/** One instance alone: it may always wake and stop, and nobody else is busy. */
export const ALONE: Coordinator = {
  claimWake: () => Promise.resolve({ run: true }),
  wakeEnded() {},
  othersBusy: () => Promise.resolve(undefined),
  claimStop: () => Promise.resolve(undefined),
  stopEnded() {},
};
