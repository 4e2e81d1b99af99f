/**
 * A service's state, what each state holds, and the one place that changes
 * it: what entering each state does is written down here, once
 * (docs/ARCHITECTURE.md, "Life cycle").
 *
 * @module
 */

import { log } from "../log.ts";
import type { Target } from "../net/address.ts";
import { closeQuietly } from "../net/conn.ts";
import { abortable } from "../timers.ts";
import type { Recorder, StopReason } from "./recorder.ts";
import type { ServiceStats } from "./stats.ts";

/**
 * Where a service is in its life: `asleep → starting → awake → stopping → asleep`.
 * - `asleep`: no backend is known to run; the next connection wakes it.
 * - `starting`: CHECK_CMD/START_CMD/readiness are under way; clients wait.
 * - `awake`: the backend accepts at a known target; clients connect straight to it.
 * - `stopping`: STOP_CMD runs; clients wait for it, then wake the service again.
 */
export type State = "asleep" | "starting" | "awake" | "stopping";

/** The changes each state may lead to; any other is a bug, refused with a {@linkcode TransitionError}. */
const NEXT: Record<State, readonly State[]> = {
  // To awake when a backend found running at start is adopted; to stopping when a killed
  // daemon left a wake (after START_CMD) or a stop unfinished and STOP_CMD cleans up after it.
  asleep: ["starting", "awake", "stopping"],
  // To asleep when a wake failed; to stopping when it failed after START_CMD ran.
  starting: ["awake", "asleep", "stopping"],
  // To asleep when the backend refused a connection (it stopped on its own), or when another
  // instance stopped it.
  awake: ["stopping", "asleep"],
  stopping: ["asleep"],
};

/** A change to a state, with what the new state needs to know. */
export type Entry =
  /** `stopReason`: from awake, why the backend stopped (`gone` unless said). */
  | { to: "asleep"; reason: string; stopReason?: StopReason }
  | { to: "starting"; reason: string }
  /** `conn`: the connection that proved readiness, for the first client that asks. */
  | { to: "awake"; reason: string; target: Target; conn?: Deno.TcpConn }
  /** `target`: where a failed wake's START_CMD said the backend is, for STOP_CMD. */
  | { to: "stopping"; reason: string; stopReason: StopReason; target?: Target };

/** A change of state, as the log and the clients waiting for it see it. */
export interface Change {
  /** The state left. */
  from: State;
  /** The state entered. */
  to: State;
  /** Why, in words: `connection from 192.0.2.7:51234`, `wake failed: START_CMD exit 1 ...`. */
  reason: string;
  /** Seconds the state left had lasted. */
  lasted: number;
  /** Why the backend stops: entering and leaving `stopping`, and on `awake → asleep` (`gone`, `elsewhere`). */
  stopReason?: StopReason;
  /** The backend's target, entering `awake`. */
  target?: Target;
}

/** A change the life cycle does not allow, or from a state the service is not in: a bug. */
export class TransitionError extends Error {
  /** Creates the error naming the refused change and the current state. */
  constructor(name: string, from: State, to: State, current: State) {
    super(
      `Cannot change [${name}] from ${from} to ${to}: ` +
        (NEXT[from].includes(to) ? `the service is ${current}` : `${from} never leads to ${to}`),
    );
    this.name = "TransitionError";
  }
}

/** What the life cycle drives outside itself. */
export interface LifecycleParts {
  /** The service's name, for the log and the recorder; read at each use (a reload may rename). */
  readonly name: string;
  /** Receives wakes and stops for metrics. */
  recorder: Recorder;
  /** The counters that wakes and stops change. */
  stats: ServiceStats;
  /** The idle monitor: it runs while, and only while, the service is awake. */
  idle: { start(): void; stop(): void };
  /** Told of every change once it is made, e.g. to save the state. */
  onChange?: (change: Change) => void;
}

/**
 * Holds one service's state and what belongs to it (the target, the spare
 * connection, the stop reason). {@linkcode transition} is the only writer.
 */
export class Lifecycle {
  #state: State = "asleep";
  #since = Date.now();
  #target?: Target;
  #lastTarget?: Target;
  #spare?: Deno.TcpConn;
  #stopReason: StopReason = "requested";
  #next?: PromiseWithResolvers<Change>;
  readonly #parts: LifecycleParts;
  readonly #log = log("service");

  /** Creates a life cycle in `asleep`. */
  constructor(parts: LifecycleParts) {
    this.#parts = parts;
  }

  /** The current state. */
  get state(): State {
    return this.#state;
  }

  /** Epoch milliseconds when the current state was entered. */
  get since(): number {
    return this.#since;
  }

  /** The backend's target while it is known: awake, and stopping after awake. */
  get target(): Target | undefined {
    return this.#target;
  }

  /** The target the backend had when it was last awake, kept while it sleeps. */
  get lastTarget(): Target | undefined {
    return this.#lastTarget;
  }

  /**
   * The connection that proved readiness, once: the first client to ask
   * while awake gets it, so no probe connection reaches the backend.
   */
  takeSpare(): Deno.TcpConn | undefined {
    const spare = this.#spare;
    this.#spare = undefined;
    return spare;
  }

  /**
   * Resolves with the next change of state: how clients wait for a wake or a
   * stop. Aborting `signal` ends this one wait (the client gave up).
   */
  changed(signal?: AbortSignal): Promise<Change> {
    this.#next ??= Promise.withResolvers();
    return signal ? abortable(this.#next.promise, signal) : this.#next.promise;
  }

  /** Waits until no wake and no stop is under way (asleep or awake). */
  async settled(): Promise<void> {
    while (this.#state === "starting" || this.#state === "stopping") await this.changed();
  }

  /**
   * Moves from `from` to `entry.to`, does what entering that state does, logs
   * the change and tells the clients waiting for it.
   *
   * @throws {TransitionError} when the service is not in `from`, or the
   * change is not one the life cycle allows
   */
  transition(from: State, entry: Entry): void {
    if (this.#state !== from || !NEXT[from].includes(entry.to)) {
      throw new TransitionError(this.#parts.name, from, entry.to, this.#state);
    }
    const lasted = (Date.now() - this.#since) / 1000;
    this.#state = entry.to;
    this.#since = Date.now();
    this.#enter(entry, from, lasted);
    this.#log.info("[{service}] {from} -> {to}: {reason}", {
      service: this.#parts.name,
      from,
      to: entry.to,
      reason: entry.reason,
    });
    const change: Change = { from, to: entry.to, reason: entry.reason, lasted };
    if (entry.to === "stopping" || from === "stopping") change.stopReason = this.#stopReason;
    if (from === "awake" && entry.to === "asleep") change.stopReason = entry.stopReason ?? "gone";
    if (entry.to === "awake") change.target = entry.target;
    this.#parts.onChange?.(change);
    const next = this.#next;
    this.#next = undefined;
    next?.resolve(change);
  }

  /**
   * Moves from `from` to `entry.to` if the service is in `from` now; for
   * changes that may race (two clients finding the backend gone, an idle
   * stop meeting a shutdown). Whoever wins `asleep → starting` runs the wake.
   *
   * @returns whether this call made the change
   * @throws {TransitionError} when the change is not one the life cycle allows
   */
  tryTransition(from: State, entry: Entry): boolean {
    if (this.#state !== from) {
      if (!NEXT[from].includes(entry.to)) {
        throw new TransitionError(this.#parts.name, from, entry.to, this.#state);
      }
      return false;
    }
    this.transition(from, entry);
    return true;
  }

  /** What entering each state does; `seconds` is how long the state left had lasted. */
  #enter(entry: Entry, from: State, seconds: number) {
    const { name, recorder, stats, idle } = this.#parts;
    const wakeEnded = (ok: boolean) => {
      if (ok) stats.wakes++;
      else stats.wakeFailures++;
      recorder.wakeEnded(name, ok, seconds);
    };
    switch (entry.to) {
      case "starting":
        break;
      case "awake":
        this.#target = this.#lastTarget = entry.target;
        this.#spare = entry.conn;
        if (from === "starting") wakeEnded(true);
        idle.start();
        break;
      case "stopping":
        idle.stop();
        this.#dropSpare();
        this.#stopReason = entry.stopReason;
        this.#target ??= entry.target;
        if (entry.stopReason === "idle") stats.idleStops++;
        if (from === "starting") wakeEnded(false);
        break;
      case "asleep":
        idle.stop();
        this.#dropSpare();
        this.#target = undefined;
        if (from === "starting") wakeEnded(false);
        if (from === "stopping") recorder.stopped(name, this.#stopReason);
        if (from === "awake") recorder.stopped(name, entry.stopReason ?? "gone");
        break;
    }
  }

  /** Closes the readiness connection no client took. */
  #dropSpare() {
    if (this.#spare) closeQuietly(this.#spare);
    this.#spare = undefined;
  }
}
