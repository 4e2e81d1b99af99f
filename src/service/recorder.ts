/**
 * The events of a service's life that metrics count, behind an interface so
 * the core never touches a metrics format.
 *
 * @module
 */

import type { Action } from "./commands.ts";

/** Receives the events metrics are made of; counters that can be read at any time are not here. */
export interface Recorder {
  /** A wake ended, awake (`ok`) or not, after `seconds`. */
  wakeEnded(service: string, ok: boolean, seconds: number): void;
  /** A command ended with `code` after `seconds`. */
  commandEnded(service: string, action: Action, code: number, seconds: number): void;
  /** The backend was stopped, for `reason` ("idle", "shutdown", "reload", "failed wake"). */
  stopped(service: string, reason: StopReason): void;
}

/** Why a backend was stopped. */
export type StopReason = "idle" | "shutdown" | "removed" | "failed_wake" | "requested";

/** A recorder that records nothing: the default, and for tests. */
export const NO_RECORDER: Recorder = {
  wakeEnded() {},
  commandEnded() {},
  stopped() {},
};
