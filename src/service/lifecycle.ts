/**
 * A service's state and the one function that changes it.
 *
 * @module
 */

/**
 * Where a service is in its life: `asleep → starting → awake → stopping → asleep`.
 * - `asleep`: no backend is known to run; the next connection wakes it.
 * - `starting`: CHECK_CMD/START_CMD/readiness are under way; clients wait.
 * - `awake`: the backend accepts at a known target; clients connect straight to it.
 * - `stopping`: STOP_CMD runs; clients wait for it, then wake the service again.
 */
export type State = "asleep" | "starting" | "awake" | "stopping";

/** The changes a service may go through; anything else is a bug and is refused. */
const ALLOWED: Record<State, readonly State[]> = {
  asleep: ["starting"],
  // Back to asleep when a wake failed; to stopping when it failed after START_CMD ran.
  starting: ["awake", "asleep", "stopping"],
  // To asleep when the backend refused a connection: it died on its own.
  awake: ["stopping", "asleep"],
  stopping: ["asleep"],
};

/** Told of every change, e.g. to log it and update metrics. */
export type OnTransition = (from: State, to: State, reason: string) => void;

/** Holds one service's state; {@linkcode Lifecycle.transition} is the only writer. */
export class Lifecycle {
  #state: State = "asleep";
  #onTransition: OnTransition;

  /** Creates a lifecycle in `asleep` that reports every change to `onTransition`. */
  constructor(onTransition: OnTransition) {
    this.#onTransition = onTransition;
  }

  /** The current state. */
  get state(): State {
    return this.#state;
  }

  /**
   * Moves from `from` to `to`, only if the state is `from` now and the change
   * is an allowed one, and reports the change.
   *
   * @returns whether the change happened
   */
  transition(from: State, to: State, reason: string): boolean {
    if (this.#state !== from || !ALLOWED[from].includes(to)) return false;
    this.#state = to;
    this.#onTransition(from, to, reason);
    return true;
  }
}
