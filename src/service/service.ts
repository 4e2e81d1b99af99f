/**
 * One service: its life cycle, the router that gives clients a backend
 * connection, the idle monitor, and the STOP_CMD that ends a backend's run.
 * The parts do the work; this module wires them together
 * (docs/ARCHITECTURE.md, "Service").
 *
 * @module
 */

import type { CommandSpec, ServiceConfig } from "../config/types.ts";
import { log } from "../log.ts";
import type { Direction } from "../net/forward.ts";
import type { Target } from "../net/address.ts";
import { type Action, type CommandContext, requireSuccess, runServiceCommand } from "./commands.ts";
import { IdleMonitor } from "./idle_monitor.ts";
import { Lifecycle, type State } from "./lifecycle.ts";
import { NO_RECORDER, type Recorder, type StopReason } from "./recorder.ts";
import { type RouteContext, type Router, routerFor } from "./routing.ts";
import { newStats, type ServiceStats } from "./stats.ts";
import type { WakeError, Woken } from "./wake.ts";

/** Why a service ends: sleepingd shuts down, or a reload removed it. */
export type CloseReason = "shutdown" | "removed";

/** One configured service and the life cycle of its backend. */
export class Service {
  /** Counters for status and metrics. */
  readonly stats: ServiceStats = newStats();
  #config: ServiceConfig;
  readonly #recorder: Recorder;
  readonly #lifecycle: Lifecycle;
  readonly #idle: IdleMonitor;
  readonly #routeContext: RouteContext;
  #router: Router;
  readonly #closing = new AbortController();
  readonly #log = log("service");

  /** Creates a service in `asleep`; `recorder` receives the events metrics count. */
  constructor(config: ServiceConfig, recorder: Recorder = NO_RECORDER) {
    this.#config = config;
    this.#recorder = recorder;
    this.#idle = new IdleMonitor({
      config: () => this.#config,
      openConnections: () => this.stats.openConnections,
      lastActivity: () => this.stats.lastActivity,
      awakeSince: () => this.#lifecycle.since,
      runIdleCmd: (signal) =>
        this.#run("idle", this.#config.idleCmd!, { target: this.#lifecycle.target, signal }),
      stop: (verdict) => this.stop("idle", verdict.reason),
    });
    this.#lifecycle = new Lifecycle({
      name: config.name,
      recorder,
      stats: this.stats,
      idle: this.#idle,
    });
    this.#routeContext = {
      life: this.#lifecycle,
      config: () => this.#config,
      signal: this.#closing.signal,
      run: (action, spec, context) => this.#run(action, spec, context),
      abandonWake: (error) => this.#abandonWake(error),
    };
    this.#router = routerFor(config, this.#routeContext);
  }

  /** The service's configuration. */
  get config(): ServiceConfig {
    return this.#config;
  }

  /** The current state. */
  get state(): State {
    return this.#lifecycle.state;
  }

  /** The backend's target while it is known (awake, or stopping). */
  get target(): Target | undefined {
    return this.#lifecycle.target;
  }

  /** The idle monitor, for tests that ask it directly. */
  get idleMonitor(): IdleMonitor {
    return this.#idle;
  }

  /**
   * Takes a new configuration for the same service (a reload), keeping the
   * state, the backend and the open connections. An awake service's idle
   * checks restart with the new settings, or end if they turn idle stops off.
   */
  reconfigure(config: ServiceConfig): void {
    const routingChanged = config.routePerConnection !== this.#config.routePerConnection;
    this.#config = config;
    if (routingChanged) this.#router = routerFor(config, this.#routeContext);
    if (this.#lifecycle.state === "awake") this.#idle.start();
  }

  /** Records a connection that was accepted; pair with {@linkcode connectionClosed}. */
  connectionOpened(): void {
    this.stats.openConnections++;
    this.stats.totalConnections++;
    this.stats.lastActivity = Date.now();
  }

  /** Records that an accepted connection is closed. */
  connectionClosed(): void {
    this.stats.openConnections--;
    this.stats.lastActivity = Date.now();
  }

  /** Records bytes forwarded in either direction. */
  bytesForwarded(direction: Direction, bytes: number): void {
    if (direction === "in") this.stats.bytesIn += bytes;
    else this.stats.bytesOut += bytes;
    this.stats.lastActivity = Date.now();
  }

  /**
   * Returns a connection to the backend for the client at `client`, waking the
   * backend first if needed. Concurrent callers share one wake.
   *
   * @throws {NoBackendError} when the backend cannot be woken or reached
   */
  openBackend(client: Deno.NetAddr): Promise<Woken> {
    return this.#router.open(client);
  }

  /**
   * Stops the backend with STOP_CMD if the service is awake, and waits until
   * no stop is under way. A wake under way is left to finish.
   *
   * @param reason why, for metrics
   * @param detail why, for the log
   */
  async stop(reason: StopReason, detail: string = reason): Promise<void> {
    const life = this.#lifecycle;
    if (!life.tryTransition("awake", { to: "stopping", stopReason: reason, reason: detail })) {
      while (life.state === "stopping") await life.changed();
      return;
    }
    const ok = await this.#runStopCmd();
    const done = this.#config.stopCmd ? (ok ? "STOP_CMD done" : "STOP_CMD failed") : "no STOP_CMD";
    life.transition("stopping", { to: "asleep", reason: done });
  }

  /**
   * Ends the service (for a shutdown, or because a reload removed it): ends
   * any wake under way (its clients are closed), then stops the backend if it
   * is awake.
   */
  async close(reason: CloseReason): Promise<void> {
    this.cancelWakes(reason);
    await this.#lifecycle.settled();
    await this.stop(reason, closeDetail(reason));
  }

  /**
   * Ends any wake under way and refuses new ones: its commands are killed,
   * its clients closed, and STOP_CMD cleans up after a START_CMD that ran.
   */
  cancelWakes(reason: CloseReason): void {
    if (!this.#closing.signal.aborted) this.#closing.abort(new Error(closeDetail(reason)));
  }

  /**
   * After a failed wake: STOP_CMD if START_CMD ran, even if it failed or
   * timed out (nothing is left half-started: a VM or container may be on its
   * way up), then asleep. Clients arriving meanwhile wait for this stop.
   */
  async #abandonWake(error: WakeError): Promise<void> {
    const life = this.#lifecycle;
    const reason = `wake failed: ${error.message}`;
    if (!error.startRan || !this.#config.stopCmd) {
      life.transition("starting", { to: "asleep", reason });
      return;
    }
    life.transition("starting", {
      to: "stopping",
      stopReason: "failed_wake",
      target: error.target,
      reason,
    });
    const ok = await this.#runStopCmd();
    const done = ok ? "STOP_CMD cleaned up after the failed wake" : "STOP_CMD failed";
    life.transition("stopping", { to: "asleep", reason: done });
  }

  /** Runs STOP_CMD (when set), logging a failure rather than throwing. @returns whether it exited 0 */
  async #runStopCmd(): Promise<boolean> {
    const spec = this.#config.stopCmd;
    if (!spec) return true;
    try {
      requireSuccess("stop", await this.#run("stop", spec, { target: this.#lifecycle.target }));
      return true;
    } catch (error) {
      this.#log.error("[{service}] {reason}", {
        service: this.#config.name,
        reason: (error as Error).message,
      });
      return false;
    }
  }

  /** Runs one of the service's commands and records how it ended. */
  async #run(action: Action, spec: CommandSpec, context: CommandContext = {}) {
    const result = await runServiceCommand(this.#config, action, spec, context);
    this.#recorder.commandEnded(this.#config.name, action, result.code, result.durationMs / 1000);
    return result;
  }
}

function closeDetail(reason: CloseReason): string {
  return reason === "shutdown"
    ? "sleepingd is shutting down"
    : "the service was removed from the configuration";
}
