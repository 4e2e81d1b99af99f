/**
 * The records of the event log (docs/ARCHITECTURE.md, "History"): one JSON
 * object a line, each a service's change of state or the daemon starting or
 * stopping, and how a line is read back.
 *
 * @module
 */

import { formatTarget } from "../net/address.ts";
import type { Change, State } from "../service/lifecycle.ts";
import type { StopReason } from "../service/recorder.ts";

/**
 * A service changed state. From these the timeline is made: a wake is
 * `asleep → starting` (its cause in `reason`) followed by `starting → awake`
 * (its duration in `lasted`) or by `starting → asleep|stopping` (a failed
 * wake, the error in `reason`); a stop is `awake → stopping` (`stop` says why).
 */
export interface ChangeEvent {
  /** ISO time of the change. */
  time: string;
  /** The service's section name. */
  service: string;
  /** The state left. */
  from: State;
  /** The state entered. */
  to: State;
  /** Why, in words: `connection from 192.0.2.7:51234`, `idle for 600s`. */
  reason: string;
  /** Seconds the state left had lasted. */
  lasted: number;
  /** Why the backend stops, on `→ stopping`, on `stopping → asleep`, and `gone` on `awake → asleep`. */
  stop?: StopReason;
  /** The backend's `host:port`, on `→ awake`. */
  target?: string;
}

/**
 * The daemon started, reloaded its configuration, began a new log file, or
 * stopped; `states` says every service's state from then on, and a service
 * not in it is not watched (while no daemon runs, nothing is known of it).
 */
export interface DaemonEvent {
  /** ISO time. */
  time: string;
  /** What happened: `continued` heads each log file after the first. */
  daemon: "started" | "reloaded" | "continued" | "stopped";
  /** The daemon's pid. */
  pid: number;
  /** Each watched service's state, by name. */
  states: Record<string, State>;
}

/** One line of the event log. */
export type HistoryEvent = ChangeEvent | DaemonEvent;

const STATES: ReadonlySet<string> = new Set(["asleep", "starting", "awake", "stopping"]);
const DAEMON_EVENTS: ReadonlySet<string> = new Set(["started", "reloaded", "continued", "stopped"]);

/** The record of `service`'s `change`, made at `time` (epoch milliseconds). */
export function changeEvent(service: string, change: Change, time = Date.now()): ChangeEvent {
  const event: ChangeEvent = {
    time: new Date(time).toISOString(),
    service,
    from: change.from,
    to: change.to,
    reason: change.reason,
    lasted: Math.round(change.lasted * 1000) / 1000,
  };
  if (change.stopReason) event.stop = change.stopReason;
  if (change.target) event.target = formatTarget(change.target);
  return event;
}

/** Whether `event` is a service's change of state (not the daemon's start or stop). */
export function isChange(event: HistoryEvent): event is ChangeEvent {
  return "service" in event;
}

/**
 * Reads one line of the event log back.
 *
 * @returns the event, or undefined when the line is not one (corrupt,
 * truncated by a crash, or written by something else)
 */
export function parseEvent(line: string): HistoryEvent | undefined {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  if (typeof value.time !== "string" || Number.isNaN(Date.parse(value.time))) return undefined;
  if (typeof value.daemon === "string") {
    const states = value.states as Record<string, unknown>;
    const valid = DAEMON_EVENTS.has(value.daemon) && typeof value.pid === "number" &&
      typeof states === "object" && states !== null &&
      Object.values(states).every((state) => STATES.has(state as string));
    return valid ? value as unknown as DaemonEvent : undefined;
  }
  const valid = typeof value.service === "string" && STATES.has(value.from as string) &&
    STATES.has(value.to as string) && typeof value.reason === "string" &&
    typeof value.lasted === "number";
  return valid ? value as unknown as ChangeEvent : undefined;
}
