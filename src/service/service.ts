/**
 * One service: its life cycle, and the parts that do its work, wired
 * together (docs/ARCHITECTURE.md, "Service"). This class is the one public
 * face of a service, for the supervisor, the connections, crash recovery and
 * the cluster; each part is a module of its own:
 *
 * - `routing.ts`: gives each client a backend connection, waking it;
 * - `wake_gate.ts`: what a wake passes first (budgets, a drain, DEPENDS_ON) and its cancel;
 * - `why_awake.ts`: why the service is awake, asked by the idle monitor and `status`;
 * - `idle_monitor.ts`: the idle checks while awake;
 * - `stopper.ts`: STOP_CMD and the stop's claim;
 * - `clients.ts`: connections and UDP flows let in and counted;
 * - `command_runs.ts`: the commands as they run, saved for crash recovery;
 * - `following.ts`: the other instances' wakes and stops, taken in;
 * - `kernel_path.ts`: FORWARD=kernel.
 *
 * @module
 */

import type { ServiceConfig } from "../config/types.ts";
import { Budget } from "../net/budget.ts";
import { formatAddr, type Target } from "../net/address.ts";
import { ALONE, type Coordinator } from "./coordinator.ts";
import { IdleMonitor } from "./idle_monitor.ts";
import { type Change, Lifecycle, type State } from "./lifecycle.ts";
import { NO_RECORDER, type Recorder, type StopReason } from "./recorder.ts";
import { WakeBudget } from "./admission.ts";
import { type OpenOptions, type RouteContext, type Router, routerFor } from "./routing.ts";
import { newStats, type ServiceStats } from "./stats.ts";
import { KernelPath, type KernelShared, type PathStatus } from "./kernel_path.ts";
import { type Backend, checkBackend } from "./wake.ts";
import { Clients } from "./clients.ts";
import { CommandRuns, type ServiceSnapshot } from "./command_runs.ts";
import { Following } from "./following.ts";
import { Stopper } from "./stopper.ts";
import { type WakeFailure, WakeGate } from "./wake_gate.ts";
import { WhyAwake } from "./why_awake.ts";

/** Why a service ends: sleepingd shuts down, or a reload removed it. */
export type CloseReason = "shutdown" | "removed";

/** What a service shares with the others and its supervisor. */
export interface ServiceShared {
  /** The descriptors and bytes the daemon holds for clients; an unbounded one of its own by default. */
  budget?: Budget;
  /** The wake budget of all services together (MAX_WAKES_PER_HOUR_TOTAL). */
  totalWakes?: WakeBudget;
  /** Told when the service's state (or its running START_CMD) changes, e.g. to save it. */
  onChange?: () => void;
  /** Told of each change of state, e.g. to keep its history. */
  onTransition?: (service: Service, change: Change) => void;
  /** Every service of the supervisor, for DEPENDS_ON; none by default. */
  services?: () => readonly Service[];
  /** The other sleepingd instances in front of the same backends; ALONE by default. */
  coordinator?: Coordinator;
  /** The daemon's nftables table, for FORWARD=kernel; without it every service proxies. */
  kernel?: KernelShared;
  /** How long a service's wakes usually take, in seconds, from its history; none by default. */
  typicalWake?: (service: string) => number | undefined;
}

/** One configured service and the life cycle of its backend. */
export class Service {
  /** Counters for status and metrics. */
  readonly stats: ServiceStats = newStats();
  /** The descriptors and bytes the daemon holds for clients, shared with the other services. */
  readonly budget: Budget;
  /** Its connections and UDP flows, let in and counted. */
  readonly clients: Clients;
  /** Why it is awake: the question the idle monitor and `status` ask; its keep-awake and windows. */
  readonly whyAwake: WhyAwake;
  #config: ServiceConfig;
  readonly #lifecycle: Lifecycle;
  readonly #idle: IdleMonitor;
  readonly #routeContext: RouteContext;
  #router: Router;
  readonly #closing = new AbortController();
  readonly #runs: CommandRuns;
  readonly #gate: WakeGate;
  readonly #stopper: Stopper;
  readonly #following: Following;
  /** FORWARD=kernel: the kernel forwards while awake; there when the daemon has a table. */
  readonly #kernel?: KernelPath;
  /** How long the service's wakes usually take, from its history. */
  readonly #typicalWake: (service: string) => number | undefined;

  /**
   * Creates a service in `asleep`; `recorder` receives the events metrics
   * count, `shared` what it shares with the other services.
   */
  constructor(config: ServiceConfig, recorder: Recorder = NO_RECORDER, shared: ServiceShared = {}) {
    const onChange = shared.onChange ?? (() => {});
    const services = shared.services ?? (() => []);
    const coordinator = shared.coordinator ?? ALONE;
    const closing = this.#closing.signal;
    this.budget = shared.budget ?? new Budget();
    this.#config = config;
    this.#typicalWake = shared.typicalWake ?? (() => undefined);
    const current = () => this.#config;
    this.#runs = new CommandRuns({ config: current, recorder, onChange });
    const run = this.#runs.run;
    this.#gate = new WakeGate({
      config: current,
      totalWakes: shared.totalWakes ??
        new WakeBudget("MAX_WAKES_PER_HOUR_TOTAL", () => undefined),
      services,
      closing,
    });
    this.clients = new Clients(config, {
      config: current,
      stats: this.stats,
      recorder,
      coordinator,
    });
    this.#idle = new IdleMonitor({
      config: current,
      whyAwake: (now) => this.whyAwake.reasons(now),
      lastActivity: () => this.stats.lastActivity,
      awakeSince: () => this.#lifecycle.since,
      othersBusy: () => coordinator.othersBusy(this.#config.name, this.#config.idleTime ?? 0),
      runIdleCmd: (signal) =>
        run("idle", this.#config.idleCmd!, { target: this.#lifecycle.target, signal }),
      stop: async (verdict) => {
        await this.stop("idle", verdict.reason); // refused: the next check asks again
        // Refused while the kernel path had withdrawn for it: the kernel forwards again.
        if (this.state === "awake") this.#kernel?.resume();
      },
      beforeStop: () => this.#kernel?.beforeIdleStop() ?? Promise.resolve(undefined),
    });
    this.#lifecycle = new Lifecycle({
      get name() {
        return current().name; // a reload may rename the service
      },
      recorder,
      stats: this.stats,
      idle: this.#idle,
      onChange: (change) => {
        this.#runs.changed(change);
        this.#kernel?.changed(change);
        onChange();
        shared.onTransition?.(this, change);
      },
    });
    const life = this.#lifecycle;
    this.whyAwake = new WhyAwake({
      config: current,
      stats: this.stats,
      life,
      services,
      wake: (cause, signal) => this.awakeTarget(cause, signal),
      wakeCancelledAt: () => this.#gate.cancelledAt,
      closing,
    });
    this.#stopper = new Stopper({
      config: current,
      life,
      stats: this.stats,
      coordinator,
      run,
      kernelSettled: () => this.#kernel?.settled(),
      closing,
    });
    this.#following = new Following({
      config: current,
      life,
      stats: this.stats,
      run,
      closing,
      adopt: (target, reason) => this.adopt(target, reason),
    });
    this.#routeContext = {
      life,
      config: current,
      signal: closing,
      wakeSignal: () => this.#gate.signal(),
      onTarget: (target) => this.#runs.targetNamed(target),
      run,
      abandonWake: (error) => {
        this.#gate.failed(`wake failed: ${error.message}`, life.since);
        return this.#stopper.afterFailedWake(error);
      },
      mayWake: () => this.#gate.mayWake(),
      coordinator,
      wakeDependencies: (signal) => this.#gate.beforeWake(signal),
      waiting: () => ({
        clients: this.stats.openConnections,
        datagrams: this.stats.queuedDatagrams,
      }),
    };
    this.#router = routerFor(config, this.#routeContext);
    if (shared.kernel) {
      this.#kernel = new KernelPath({
        shared: shared.kernel,
        config: current,
        life,
        stats: this.stats,
        recorder,
        check: async (target) => {
          const found = await checkBackend(this.#config, run, closing, target);
          return found === undefined ? undefined : found !== null;
        },
      });
    }
  }

  /** Which path carries the service's new connections now (FORWARD), and why. */
  get path(): PathStatus {
    return this.#kernel?.status ?? { path: "proxy", note: "" };
  }

  /** The service's configuration. */
  get config(): ServiceConfig {
    return this.#config;
  }

  /** The current state. */
  get state(): State {
    return this.#lifecycle.state;
  }

  /** Epoch milliseconds when the current state was entered. */
  get stateSince(): number {
    return this.#lifecycle.since;
  }

  /** The backend's target while it is known (awake, or stopping). */
  get target(): Target | undefined {
    return this.#lifecycle.target;
  }

  /** What the wake under way waits for, in words; undefined when none is. */
  wakeProgress(): string | undefined {
    return this.#router.progress();
  }

  /** Seconds the service's wakes usually take, from its history; undefined before any. */
  typicalWakeSeconds(): number | undefined {
    return this.#typicalWake(this.#config.name);
  }

  /** The last wake that failed: when (epoch milliseconds) and why; undefined before any. */
  get lastWakeFailure(): WakeFailure | undefined {
    return this.#gate.lastFailure;
  }

  /** What the service is doing, to save it. */
  snapshot(): ServiceSnapshot {
    return this.#runs.snapshot(this.state, this.target);
  }

  /**
   * Takes a backend that runs already (found at start) as awake, so that its
   * idle checks begin; nothing happens unless the service is asleep.
   *
   * @returns whether it was adopted
   */
  adopt(target: Target, reason: string): boolean {
    return this.#lifecycle.tryTransition("asleep", { to: "awake", target, reason });
  }

  /**
   * Asks CHECK_CMD whether the backend runs (at `known`, when given).
   *
   * @returns its target when it runs; undefined when it does not, or there is no CHECK_CMD
   */
  async findRunningBackend(known?: Target): Promise<Target | undefined> {
    return await checkBackend(this.#config, this.#runs.run, this.#closing.signal, known) ??
      undefined;
  }

  /** Cleans up after a wake or a stop a killed daemon left (see {@linkcode Stopper.afterCrash}). */
  stopAfterCrash(
    reason: string,
    target: Target | undefined,
    endLeftovers: () => Promise<void>,
  ): Promise<void> {
    return this.#stopper.afterCrash(reason, target, endLeftovers);
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
    const previous = this.#config;
    this.#config = config;
    this.whyAwake.reconfigured(previous);
    this.clients.reconfigure(config);
    if (config.routePerConnection !== previous.routePerConnection) {
      this.#router = routerFor(config, this.#routeContext);
    }
    if (this.#lifecycle.state === "awake") this.#idle.start();
    this.#kernel?.reconfigure();
  }

  /**
   * Returns a connection to the backend for the client at `client`, waking the
   * backend first if needed (concurrent callers share one wake); undefined
   * when it would have to wait and `options.wait` is false.
   *
   * @throws {NoBackendError} when the backend cannot be woken or reached
   */
  openBackend(client: Deno.NetAddr, options?: OpenOptions): Promise<Backend | undefined> {
    const opened = this.#router.open(client, options);
    if (!this.#kernel?.waitsForProof) return opened;
    return opened.then((backend) => {
      if (backend) this.#kernel?.proven();
      return backend;
    });
  }

  /**
   * Returns the backend's target, waking the backend first if needed
   * (concurrent callers share one wake): for the datagram of a UDP client at
   * `client`, or, without a client, for a wake asked for (`cause` says by whom).
   *
   * @throws {NoBackendError} when the backend cannot be woken
   */
  awakeTarget(cause: string | Deno.NetAddr, signal?: AbortSignal): Promise<Target> {
    if (typeof cause === "string") return this.#router.target(cause, undefined, signal);
    return this.#router.target(`datagram from ${formatAddr(cause)}`, cause, signal);
  }

  /**
   * Stops the backend with STOP_CMD if the service is awake, and waits until
   * no stop is under way (see {@linkcode Stopper.stop}); a wake under way is
   * left to finish ({@linkcode cancelWake} ends it).
   *
   * @returns why another instance (or etcd's silence) keeps it from stopping now, when it does
   */
  stop(
    reason: StopReason,
    detail: string = reason,
    beforeStop?: () => Promise<void>,
  ): Promise<string | undefined> {
    return this.#stopper.stop(reason, detail, beforeStop);
  }

  /**
   * Ends the wakes under way, if any (`sleep` during a wake): their commands
   * are killed, their clients closed with `reason`, and STOP_CMD cleans up
   * after a START_CMD that ran. Waits until no wake or stop is under way.
   */
  async cancelWake(reason: string): Promise<void> {
    this.#gate.cancel(reason);
    await this.#lifecycle.settled();
  }

  /** Makes the wakes wait for `done` first: the drain of `what`, a removed service of the same backend. */
  wakeAfter(done: Promise<void>, what: string): void {
    this.#gate.wakeAfter(done, what);
  }

  /** Takes in that another instance stopped the backend (see {@linkcode Following}). */
  stoppedElsewhere(by: string): void {
    this.#following.stoppedElsewhere(by);
  }

  /** Takes in that another instance woke the backend at `target` (see {@linkcode Following}). */
  followWake(target: Target, by: string): Promise<void> {
    return this.#following.followWake(target, by);
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
   * Stops the kernel from forwarding new connections (the service is removed,
   * or sleepingd shuts down, and its listeners close); those it forwards go on.
   */
  stopForwarding(): void {
    this.#kernel?.stopForwarding();
  }

  /**
   * Ends any wake under way and refuses new ones: its commands are killed,
   * its clients closed, and STOP_CMD cleans up after a START_CMD that ran.
   */
  cancelWakes(reason: CloseReason): void {
    if (!this.#closing.signal.aborted) this.#closing.abort(new Error(closeDetail(reason)));
  }
}

function closeDetail(reason: CloseReason): string {
  return reason === "shutdown"
    ? "sleepingd is shutting down"
    : "the service was removed from the configuration";
}
