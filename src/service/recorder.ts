/**
 * The events of a service's life that metrics count, behind an interface so
 * the core never touches a metrics format.
 *
 * @module
 */

import type { RefusalReason } from "./admission.ts";
import type { Action } from "./commands.ts";

/**
 * Why a backend stopped, as `sleepingd_stops_total{reason}` counts it:
 * - `idle`: idle for IDLE_TIME, STOP_CMD ran
 * - `requested`: something asked for the stop (the service's `stop()`)
 * - `shutdown`: sleepingd shut down while the backend was awake
 * - `removed`: a reload removed the service while its backend was awake
 * - `failed_wake`: a wake failed after START_CMD ran, STOP_CMD cleaned up
 * - `gone`: the backend refused a connection while awake: it had stopped on its own
 * - `after_crash`: a daemon killed mid-wake left a START_CMD behind; STOP_CMD cleaned up
 * - `elsewhere`: another sleepingd instance stopped it (several instances); this one followed
 */
export type StopReason =
  | "idle"
  | "requested"
  | "shutdown"
  | "removed"
  | "failed_wake"
  | "gone"
  | "after_crash"
  | "elsewhere";

/**
 * Why UDP datagrams were dropped, as `sleepingd_udp_dropped_total{reason}` counts them:
 * - `queue_full`: they came during a wake past the service's queue bound
 * - `held_bytes`: keeping them would pass MAX_HELD_BYTES_TOTAL
 * - `refused`: ALLOW, DENY, a connection limit or the UDP flows' cap refused their client
 * - `no_backend`: the wake they waited for failed, or took past HOLD_TIMEOUT
 * - `send_queue_full`: they came faster than their socket sends, past its queue's bound
 * - `send_failed`: the kernel would not send them on
 * - `foreign`: they came to a flow's socket from elsewhere than the backend
 */
export type DropReason =
  | "queue_full"
  | "held_bytes"
  | "refused"
  | "no_backend"
  | "send_queue_full"
  | "send_failed"
  | "foreign";

/** Receives the events metrics are made of; counters that can be read at any time are not here. */
export interface Recorder {
  /** A wake ended, awake (`ok`) or not, after `seconds`. */
  wakeEnded(service: string, ok: boolean, seconds: number): void;
  /** A command ended with `code` after `seconds`. */
  commandEnded(service: string, action: Action, code: number, seconds: number): void;
  /** The backend stopped, for `reason`. */
  stopped(service: string, reason: StopReason): void;
  /** A client was closed without a backend because of a limit. */
  refused(service: string, reason: RefusalReason): void;
  /** `count` UDP datagrams were dropped, for `reason`. */
  dropped(service: string, reason: DropReason, count: number): void;
}

/** A recorder that records nothing: the default, and for tests. */
export const NO_RECORDER: Recorder = {
  wakeEnded() {},
  commandEnded() {},
  stopped() {},
  refused() {},
  dropped() {},
};
