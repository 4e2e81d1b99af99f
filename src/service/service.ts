/**
 * One service: its life cycle, the router that gives clients a backend
 * connection, the idle monitor, and the STOP_CMD that ends a backend's run.
 * The parts do the work; this module wires them together
 * (docs/ARCHITECTURE.md, "Service").
 *
 * Past 300 lines on purpose: it is the one public face of a service (every
 * operation the supervisor, the connections and crash recovery call) and the
 * one owner of STOP_CMD; what each part does lives in its own module.
 *
 * @module
 */

import type { CommandSpec, ServiceConfig } from "../config/types.ts";
import { log } from "../log.ts";
import type { Direction } from "../net/forward.ts";
import { Budget } from "../net/budget.ts";
import { formatAddr, type Target } from "../net/address.ts";
import { readProcStat } from "../process/proc_stat.ts";
import {
  type Action,
  type CommandContext,
  loggedAlready,
  requireSuccess,
  type RunCommand,
  runServiceCommand,
} from "./commands.ts";
import { clockNow, sleepUntil } from "../clock.ts";
import { abortable, sleep } from "../timers.ts";
import { ALONE, type Claim, type Coordinator } from "./coordinator.ts";
import { IdleMonitor } from "./idle_monitor.ts";
import { KeepAwakeSchedule } from "./schedule.ts";
import { type Change, Lifecycle, type State } from "./lifecycle.ts";
import { type DropReason, NO_RECORDER, type Recorder, type StopReason } from "./recorder.ts";
import { Admission, type Refusal, type RefusalReason, WakeBudget } from "./admission.ts";
import { type OpenOptions, type RouteContext, type Router, routerFor } from "./routing.ts";
import { newStats, type ServiceStats } from "./stats.ts";
import { KernelPath, type KernelShared, type PathStatus } from "./kernel_path.ts";
import { trustPublished } from "./published_target.ts";
import { type Backend, checkBackend, type WakeError } from "./wake.ts";

/** Milliseconds between two claims to clean up after a crash while etcd cannot say. */
const CLAIM_RETRY_MS = 1_000;

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

/**
 * A command that runs, or is about to: which, its run id, and once it runs
 * its pid (and process group) and start time, to recognise it.
 */
export interface RunningCommand {
  /** Which of the service's commands it is. */
  action: Action;
  /** `SLEEPINGD_RUN_ID` in its environment, random for each run; absent when saved by an older version. */
  runId?: string;
  /** The pid, which is also the process group's id; absent until it runs. */
  pid?: number;
  /** From /proc/PID/stat, in clock ticks since boot; absent until it runs. */
  startTime?: number;
}

/** What a service is doing, as saved for a daemon that starts after this one died. */
export interface ServiceSnapshot {
  /** The service's name. */
  name: string;
  /** Its state. */
  state: State;
  /** The backend's target while known: awake, stopping, and starting once a command named it. */
  target?: Target;
  /** Starting: START_CMD has run (it may still run), so STOP_CMD must clean up after it. */
  startRan?: boolean;
  /** The service's commands running now, if any. */
  commands?: RunningCommand[];
}

/** One configured service and the life cycle of its backend. */
export class Service {
  /** Counters for status and metrics. */
  readonly stats: ServiceStats = newStats();
  /** The descriptors and bytes the daemon holds for clients, shared with the other services. */
  readonly budget: Budget;
  #config: ServiceConfig;
  readonly #recorder: Recorder;
  readonly #lifecycle: Lifecycle;
  readonly #idle: IdleMonitor;
  readonly #routeContext: RouteContext;
  #router: Router;
  readonly #closing = new AbortController();
  readonly #admission: Admission;
  readonly #wakes: WakeBudget;
  readonly #onChange: () => void;
  /** The commands running now (or about to), by run id. */
  readonly #commands = new Map<string, RunningCommand>();
  /** While starting: whether START_CMD has run, and the target once a command named it. */
  #waking?: { startRan: boolean; target?: Target };
  /** Aborted to cancel the wakes under way (`sleep`); replaced at once by a fresh one. */
  #wakeCancel = new AbortController();
  /** Epoch milliseconds of the last {@linkcode cancelWake}: a schedule does not retry past it. */
  #wakeCancelledAt = 0;
  /** A drain of the same backend (a service removed by an earlier reload) to await before waking. */
  #after?: { done: Promise<void>; what: string };
  /** Epoch milliseconds until which no idle stop may happen; 0 when not kept awake. */
  #keptAwakeUntil = 0;
  /** Every service of the supervisor, for DEPENDS_ON. */
  readonly #services: () => readonly Service[];
  /** The other instances in front of the same backends. */
  readonly #coordinator: Coordinator;
  /** The last refusal of a stop logged, so that one repeated at every idle check is logged once. */
  #lastRefusal?: string;
  /** The KEEP_AWAKE windows, when there are any. */
  #schedule?: KeepAwakeSchedule;
  /** Ends the loop that wakes the service for its windows, once started. */
  #scheduling?: AbortController;
  /** Whether schedules run (crash recovery is done): a reload that adds windows begins them. */
  #schedulesOn = false;
  /** FORWARD=kernel: the kernel forwards while awake; there when the daemon has a table. */
  readonly #kernel?: KernelPath;
  /** How long the service's wakes usually take, from its history. */
  readonly #typicalWake: (service: string) => number | undefined;
  /** The last wake that failed: when, and why. */
  #lastWakeFailure?: { at: number; message: string };
  readonly #log = log("service");

  /**
   * Creates a service in `asleep`; `recorder` receives the events metrics
   * count, `shared` what it shares with the other services.
   */
  constructor(config: ServiceConfig, recorder: Recorder = NO_RECORDER, shared: ServiceShared = {}) {
    const totalWakes = shared.totalWakes ??
      new WakeBudget("MAX_WAKES_PER_HOUR_TOTAL", () => undefined);
    this.#onChange = shared.onChange ?? (() => {});
    this.budget = shared.budget ?? new Budget();
    this.#config = config;
    this.#recorder = recorder;
    this.#admission = new Admission(config);
    this.#wakes = new WakeBudget("MAX_WAKES_PER_HOUR", () => this.#config.maxWakesPerHour);
    this.#idle = new IdleMonitor({
      config: () => this.#config,
      openConnections: () => this.stats.openConnections + this.stats.kernelConnections,
      lastActivity: () => this.stats.lastActivity,
      awakeSince: () => this.#lifecycle.since,
      keptAwake: () => this.keptAwake(),
      othersBusy: () => this.#coordinator.othersBusy(this.#config.name, this.#config.idleTime ?? 0),
      runIdleCmd: (signal) =>
        this.#run("idle", this.#config.idleCmd!, { target: this.#lifecycle.target, signal }),
      stop: async (verdict) => {
        await this.stop("idle", verdict.reason); // refused: the next check asks again
        // Refused while the kernel path had withdrawn for it: the kernel forwards again.
        if (this.state === "awake") this.#kernel?.resume();
      },
      beforeStop: () => this.#kernel?.beforeIdleStop() ?? Promise.resolve(undefined),
    });
    const current = () => this.#config;
    this.#lifecycle = new Lifecycle({
      get name() {
        return current().name; // a reload may rename the service
      },
      recorder,
      stats: this.stats,
      idle: this.#idle,
      onChange: (change) => {
        this.#waking = change.to === "starting" ? { startRan: false } : undefined;
        this.#kernel?.changed(change);
        this.#onChange();
        shared.onTransition?.(this, change);
      },
    });
    this.#routeContext = {
      life: this.#lifecycle,
      config: () => this.#config,
      signal: this.#closing.signal,
      wakeSignal: () => AbortSignal.any([this.#closing.signal, this.#wakeCancel.signal]),
      onTarget: (target) => {
        if (!this.#waking) return;
        this.#waking.target = target;
        this.#onChange();
      },
      run: this.#runCommand,
      abandonWake: (error) => this.#abandonWake(error),
      mayWake: () => {
        const refusal = this.#wakes.refusal() ?? totalWakes.refusal();
        if (refusal) return refusal;
        this.#wakes.spend();
        totalWakes.spend();
        return undefined;
      },
      coordinator: shared.coordinator ?? ALONE,
      wakeDependencies: async (signal) => {
        await this.#afterDrain(signal);
        for (const dependency of this.#dependencies()) {
          try {
            await dependency.awakeTarget(`needed by ${this.#config.name}`, signal);
          } catch (error) {
            throw new Error(
              `${dependency.config.name} (DEPENDS_ON) did not wake: ${(error as Error).message}`,
            );
          }
        }
      },
      waiting: () => ({
        clients: this.stats.openConnections,
        datagrams: this.stats.queuedDatagrams,
      }),
    };
    this.#services = shared.services ?? (() => []);
    this.#coordinator = shared.coordinator ?? ALONE;
    this.#typicalWake = shared.typicalWake ?? (() => undefined);
    this.#router = routerFor(config, this.#routeContext);
    this.#schedule = scheduleOf(config);
    if (shared.kernel) {
      this.#kernel = new KernelPath({
        shared: shared.kernel,
        config: () => this.#config,
        life: this.#lifecycle,
        stats: this.stats,
        recorder,
        check: async (target) => {
          const found = await checkBackend(
            this.#config,
            this.#runCommand,
            this.#closing.signal,
            target,
          );
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

  /**
   * Why the service is kept from idle stops now: `kept awake until ...`
   * (`sleepingd keep-awake`), `needed by app` (a service not asleep that
   * DEPENDS_ON it), `schedule Mon-Fri 08:00-18:00 until Mon 18:00`;
   * undefined when nothing keeps it.
   */
  keptAwake(): string | undefined {
    if (this.keptAwakeUntil) {
      return `kept awake until ${new Date(this.keptAwakeUntil).toISOString()}`;
    }
    const needers = this.neededBy();
    if (needers.length > 0) return `needed by ${needers.join(", ")}`;
    const open = this.#schedule?.openAt(clockNow());
    if (open) {
      const until = Number.isFinite(open.until)
        ? `until ${this.#schedule!.format(open.until)}`
        : "(always open)";
      return `schedule ${open.window.text} ${until}`;
    }
    return undefined;
  }

  /**
   * The services not asleep (waking, awake, or still stopping) that list
   * this one in DEPENDS_ON: it stops only after they have.
   */
  neededBy(): string[] {
    const name = this.#config.name;
    return this.#services()
      .filter((other) => other.config.dependsOn.includes(name) && other.state !== "asleep")
      .map((other) => other.config.name);
  }

  /** The services of DEPENDS_ON, in order. */
  #dependencies(): Service[] {
    const all = this.#services();
    return this.#config.dependsOn.flatMap((name) =>
      all.filter((other) => other.config.name === name)
    );
  }

  /**
   * Why the service is awake now, when it is: its open connections and
   * flows, what keeps it awake, MIN_AWAKE_TIME, or how long it has been idle.
   */
  awakeBecause(): string | undefined {
    if (this.state !== "awake") return undefined;
    const { openConnections, openFlows, lastActivity, kernelConnections } = this.stats;
    const plural = (count: number, what: string) => `${count} ${what}${count === 1 ? "" : "s"}`;
    const reasons = [
      openConnections ? plural(openConnections, "connection") : undefined,
      kernelConnections
        ? `${plural(kernelConnections, "connection")} through the kernel`
        : undefined,
      openFlows ? plural(openFlows, "UDP flow") : undefined,
      this.keptAwake(),
    ];
    const minimum = this.stateSince + (this.#config.minAwakeTime ?? 0) * 1000;
    if (minimum > Date.now()) {
      reasons.push(`MIN_AWAKE_TIME until ${new Date(minimum).toISOString()}`);
    }
    const idleFor = (Date.now() - Math.max(lastActivity, this.stateSince)) / 1000;
    return reasons.filter(Boolean).join(", ") || `idle for ${idleFor.toFixed(0)}s`;
  }

  /**
   * Wakes the service at the start of each KEEP_AWAKE window (at once when
   * inside one), until the service closes or its configuration changes.
   */
  startSchedule(): void {
    this.#schedulesOn = true;
    this.#scheduling?.abort();
    const schedule = this.#schedule;
    if (!schedule) return;
    const loop = new AbortController();
    this.#scheduling = loop;
    const signal = AbortSignal.any([loop.signal, this.#closing.signal]);
    this.#runSchedule(schedule, signal).catch(() => {}); // ends when aborted
  }

  /**
   * Outside the windows, sleeps until the next start; inside, wakes the
   * service, then sleeps until the window's end. A wake that fails is tried
   * again inside the window, 1 s later, doubling up to 5 min; one cancelled
   * by `sleep` is not: an explicit sleep is obeyed until the next window.
   */
  async #runSchedule(schedule: KeepAwakeSchedule, signal: AbortSignal) {
    let retryMs = FIRST_SCHEDULE_RETRY_MS;
    while (true) {
      const now = clockNow();
      const open = schedule.openAt(now);
      if (!open) {
        retryMs = FIRST_SCHEDULE_RETRY_MS;
        const next = schedule.nextStart(now);
        if (!next) return;
        await sleepUntil(next.at, signal);
        continue;
      }
      const attempt = Date.now();
      try {
        await this.awakeTarget(`schedule ${open.window.text}`, signal);
      } catch (error) {
        signal.throwIfAborted();
        const retry = this.#wakeCancelledAt < attempt;
        this.#log.error("[{service}] cannot wake for the schedule {window}: {error}{then}", {
          service: this.#config.name,
          window: open.window.text,
          error: (error as Error).message,
          then: retry ? ` (trying again in ${retryMs / 1000}s)` : "",
        });
        if (retry) {
          await sleep(retryMs, signal);
          retryMs = Math.min(retryMs * 2, LAST_SCHEDULE_RETRY_MS);
          continue;
        }
      }
      retryMs = FIRST_SCHEDULE_RETRY_MS;
      await sleepUntil(open.until, signal);
    }
  }

  /** Epoch milliseconds until which the service is kept awake; 0 when it is not. */
  get keptAwakeUntil(): number {
    return this.#keptAwakeUntil > Date.now() ? this.#keptAwakeUntil : 0;
  }

  /**
   * Keeps the service from idle stops until `until` (epoch milliseconds), or
   * ends that when `until` is 0. It wakes nothing by itself.
   */
  keepAwakeUntil(until: number): void {
    this.#keptAwakeUntil = until;
  }

  /**
   * What the wake under way waits for, e.g. `waiting for 10.0.0.5:22: 20 s
   * of READY_TIMEOUT 60 s, 3 clients held`; undefined when none is.
   */
  wakeProgress(): string | undefined {
    return this.#router.progress();
  }

  /** Epoch milliseconds when the current state was entered. */
  get stateSince(): number {
    return this.#lifecycle.since;
  }

  /** Seconds the service's wakes usually take, from its history; undefined before any. */
  typicalWakeSeconds(): number | undefined {
    return this.#typicalWake(this.#config.name);
  }

  /** The last wake that failed: when (epoch milliseconds) and why; undefined before any. */
  get lastWakeFailure(): { at: number; message: string } | undefined {
    return this.#lastWakeFailure;
  }

  /** The backend's target while it is known (awake, or stopping). */
  get target(): Target | undefined {
    return this.#lifecycle.target;
  }

  /** What the service is doing, to save it. */
  snapshot(): ServiceSnapshot {
    const snapshot: ServiceSnapshot = {
      name: this.#config.name,
      state: this.state,
      target: this.target ?? this.#waking?.target,
    };
    if (this.#waking?.startRan) snapshot.startRan = true;
    if (this.#commands.size > 0) {
      snapshot.commands = [...this.#commands.values()].map((command) => ({ ...command }));
    }
    return snapshot;
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
    return await checkBackend(this.#config, this.#runCommand, this.#closing.signal, known) ??
      undefined;
  }

  /**
   * Cleans up after a wake or a stop that a killed daemon left unfinished:
   * from asleep to stopping at once (clients arriving meanwhile wait, then
   * wake the service), then `endLeftovers` (ending the commands it left
   * running), then STOP_CMD (at `target`, when known), then asleep. Nothing
   * happens unless the service is asleep.
   */
  async stopAfterCrash(
    reason: string,
    target: Target | undefined,
    endLeftovers: () => Promise<void>,
  ): Promise<void> {
    const life = this.#lifecycle;
    const entry = { to: "stopping", stopReason: "after_crash", reason, target } as const;
    if (!life.tryTransition("asleep", entry)) return;
    await endLeftovers();
    // With other instances, STOP_CMD runs under the claim, unless another is waking or stopping it.
    const claim = await this.#claimStopAfterCrash();
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
  async #claimStopAfterCrash(): Promise<Claim | string> {
    while (true) {
      const answer = await this.#coordinator.claimStop(this.#config.name, "after_crash");
      if ("claim" in answer) return answer.claim;
      this.#logRefusal("cleaning up after the crash", answer.refusal);
      if (!answer.unreachable || this.#closing.signal.aborted) {
        return `no STOP_CMD: ${answer.refusal}`;
      }
      await sleep(CLAIM_RETRY_MS, this.#closing.signal).catch(() => {});
    }
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
    const scheduleChanged = JSON.stringify([config.keepAwake, config.timeZone]) !==
      JSON.stringify([this.#config.keepAwake, this.#config.timeZone]);
    this.#config = config;
    if (scheduleChanged) {
      this.#schedule = scheduleOf(config);
      if (this.#schedulesOn) this.startSchedule();
    }
    this.#admission.reconfigure(config);
    if (routingChanged) this.#router = routerFor(config, this.#routeContext);
    if (this.#lifecycle.state === "awake") this.#idle.start();
    this.#kernel?.reconfigure();
  }

  /**
   * Lets the client at `client` in, counting it as an open connection, or
   * says why not (ALLOW, DENY, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_SOURCE),
   * counting the refusal. Pair a client let in with {@linkcode connectionClosed}.
   */
  admit(client: Deno.NetAddr): Refusal | undefined {
    const open = this.stats.openConnections + this.stats.kernelConnections;
    const refusal = this.#admission.admit(client, open);
    if (refusal) {
      this.refused(refusal.reason);
      return refusal;
    }
    this.stats.openConnections++;
    this.stats.totalConnections++;
    this.stats.lastActivity = Date.now();
    this.#sayIfFirst();
    return undefined;
  }

  /**
   * Tells the other instances at once when the first client comes: an idle
   * stop may be under way elsewhere, asking whether this instance is busy.
   */
  #sayIfFirst() {
    const open = this.stats.openConnections + this.stats.openFlows;
    if (open === 1) this.#coordinator.firstClient(this.#config.name);
  }

  /** Records that a client {@linkcode admit} let in is closed. */
  connectionClosed(client: Deno.NetAddr): void {
    this.#admission.left(client);
    this.stats.openConnections--;
    this.stats.lastActivity = Date.now();
  }

  /** Counts a client closed without a backend because of a limit. */
  refused(reason: RefusalReason): void {
    this.#recorder.refused(this.#config.name, reason);
  }

  /**
   * Lets a UDP client at `client` begin a flow, counting it, or says why not
   * (ALLOW, DENY, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_SOURCE, which count
   * flows as connections). Pair a flow let in with {@linkcode flowClosed}.
   */
  admitFlow(client: Deno.NetAddr): Refusal | undefined {
    const refusal = this.#admission.admit(
      client,
      this.stats.openConnections + this.stats.openFlows,
    );
    if (refusal) return refusal;
    this.stats.openFlows++;
    this.stats.totalFlows++;
    this.#sayIfFirst();
    return undefined;
  }

  /** Records that a flow {@linkcode admitFlow} let in has ended. */
  flowClosed(client: Deno.NetAddr): void {
    this.#admission.left(client);
    this.stats.openFlows--;
  }

  /** Records a datagram forwarded in either direction: it is activity. */
  datagramForwarded(direction: Direction, bytes: number): void {
    if (direction === "in") this.stats.datagramsIn++;
    else this.stats.datagramsOut++;
    this.bytesForwarded(direction, bytes);
  }

  /** Counts datagrams dropped. */
  dropped(reason: DropReason, count: number): void {
    this.#recorder.dropped(this.#config.name, reason, count);
  }

  /** Records bytes forwarded in either direction. */
  bytesForwarded(direction: Direction, bytes: number): void {
    if (direction === "in") this.stats.bytesIn += bytes;
    else this.stats.bytesOut += bytes;
    this.stats.lastActivity = Date.now();
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
  awakeTarget(
    cause: string | Deno.NetAddr,
    signal?: AbortSignal,
  ): Promise<Target> {
    if (typeof cause === "string") return this.#router.target(cause, undefined, signal);
    return this.#router.target(`datagram from ${formatAddr(cause)}`, cause, signal);
  }

  /**
   * Stops the backend with STOP_CMD if the service is awake, and waits until
   * no stop is under way. A wake under way is left to finish
   * ({@linkcode cancelWake} ends it). With other instances, the stop is
   * claimed first; `beforeStop` runs once it may go ahead, before STOP_CMD
   * (to let the connections finish).
   *
   * @param reason why, for metrics
   * @param detail why, for the log
   * @returns why another instance (or etcd's silence) keeps it from stopping now, when it does
   */
  async stop(
    reason: StopReason,
    detail: string = reason,
    beforeStop?: () => Promise<void>,
  ): Promise<string | undefined> {
    const life = this.#lifecycle;
    let claim: Claim | undefined;
    // Alone, nothing to ask: the stop begins at once, as it always did.
    if (life.state === "awake" && this.#coordinator !== ALONE) {
      const answer = await this.#coordinator.claimStop(this.#config.name, reason);
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
    this.#lastRefusal = undefined;
    if (beforeStop) await beforeStop();
    if (!life.tryTransition("awake", { to: "stopping", stopReason: reason, reason: detail })) {
      claim?.end();
      while (life.state === "stopping") await life.changed();
      return undefined;
    }
    await this.#kernel?.settled(); // no rule left pointing at a backend about to stop
    const done = await this.#runStopCmd();
    life.transition("stopping", { to: "asleep", reason: done });
    claim?.end({ state: "asleep" });
    return undefined;
  }

  /**
   * Ends the wakes under way, if any (`sleep` during a wake): their commands
   * are killed, their clients closed with `reason`, and STOP_CMD cleans up
   * after a START_CMD that ran. Waits until no wake or stop is under way.
   */
  async cancelWake(reason: string): Promise<void> {
    this.#wakeCancelledAt = Date.now();
    const cancel = this.#wakeCancel;
    this.#wakeCancel = new AbortController();
    cancel.abort(new Error(reason));
    await this.#lifecycle.settled();
  }

  /**
   * Makes the wakes wait for `done` first: the drain of a service a reload
   * removed, whose STOP_CMD stops the backend this one would wake (`what`
   * says which, for the log).
   */
  wakeAfter(done: Promise<void>, what: string): void {
    this.#after = { done, what };
  }

  /** Waits for the drain set by {@linkcode wakeAfter}, once. */
  async #afterDrain(signal: AbortSignal) {
    const after = this.#after;
    if (!after) return;
    this.#log.info("[{service}] waiting for {what} to stop first", {
      service: this.#config.name,
      what: after.what,
    });
    await abortable(after.done, signal);
    if (this.#after === after) this.#after = undefined;
  }

  /**
   * Why an idle stop claimed may not go on after all: a client came here, or
   * another instance published one, while the lock was being taken (asking
   * once more narrows the time a client elsewhere goes unseen to one publication).
   */
  async #busySinceAsked(): Promise<string | undefined> {
    const { openConnections, openFlows, kernelConnections } = this.stats;
    const open = openConnections + openFlows + kernelConnections;
    if (open > 0) return `${open} connection${open === 1 ? "" : "s"} opened meanwhile`;
    return await this.#coordinator.othersBusy(this.#config.name, this.#config.idleTime ?? 0);
  }

  /** Logs why a stop may not happen now, once in a row for the same refusal (each idle check asks). */
  #logRefusal(detail: string, refusal: string) {
    if (refusal === this.#lastRefusal) return;
    this.#lastRefusal = refusal;
    this.#log.info("[{service}] not stopping ({reason}): {refusal}", {
      service: this.#config.name,
      reason: detail,
      refusal,
    });
  }

  /**
   * Takes in that another instance stopped the backend: awake to asleep
   * without STOP_CMD, if no connection of this instance is open.
   */
  stoppedElsewhere(by: string): void {
    const { openConnections, openFlows, kernelConnections } = this.stats;
    if (openConnections > 0 || openFlows > 0 || kernelConnections > 0) return;
    this.#lifecycle.tryTransition("awake", {
      to: "asleep",
      reason: `stopped by ${by}`,
      stopReason: "elsewhere",
    });
  }

  /**
   * Takes in that another instance woke the backend at `target`: awake here
   * too, if the service is asleep and trusts the target (see
   * {@linkcode trustPublished}), so that its idle checks see to the stop.
   */
  async followWake(target: Target, by: string): Promise<void> {
    if (this.state !== "asleep") return;
    const trusted = await trustPublished(this.#config, target, by, {
      run: this.#runCommand,
      signal: this.#closing.signal,
      known: this.#lifecycle.lastTarget,
    });
    if (trusted) this.adopt(trusted, `awake, woken by ${by}`);
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

  /**
   * After a failed wake: STOP_CMD if START_CMD ran, even if it failed or
   * timed out (nothing is left half-started: a VM or container may be on its
   * way up), then asleep. Clients arriving meanwhile wait for this stop.
   */
  async #abandonWake(error: WakeError): Promise<void> {
    const life = this.#lifecycle;
    const reason = `wake failed: ${error.message}`;
    // A wake `sleep` cancelled did not fail: the next client (or a waiting page) wakes it again.
    if (this.#wakeCancelledAt < life.since) {
      this.#lastWakeFailure = { at: Date.now(), message: reason };
    }
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
    const done = await this.#runStopCmd();
    life.transition("stopping", { to: "asleep", reason: `${done} after the failed wake` });
  }

  /**
   * Runs STOP_CMD (when set), logging a failure rather than throwing.
   *
   * @returns how it went, for the change to asleep: `STOP_CMD done`, `STOP_CMD failed`, `no STOP_CMD`
   */
  async #runStopCmd(): Promise<string> {
    const spec = this.#config.stopCmd;
    if (!spec) return "no STOP_CMD";
    try {
      requireSuccess("stop", await this.#run("stop", spec, { target: this.#lifecycle.target }));
      return "STOP_CMD done";
    } catch (error) {
      if (!loggedAlready(error)) {
        this.#log.error("[{service}] {reason}", {
          service: this.#config.name,
          reason: (error as Error).message,
        });
      }
      return "STOP_CMD failed";
    }
  }

  /** {@linkcode #run}, bound: how the parts run the service's commands. */
  readonly #runCommand: RunCommand = (action, spec, context) => this.#run(action, spec, context);

  /**
   * Runs one of the service's commands and records how it ended. It is saved
   * with the state from before it runs (its run id) until it has ended, so
   * that a daemon started after this one died, however soon, finds and ends
   * it; a START_CMD marks the wake as one STOP_CMD cleans up after.
   */
  async #run(action: Action, spec: CommandSpec, context: CommandContext = {}) {
    const told = context.onSpawn;
    const runId = crypto.randomUUID();
    const command: RunningCommand = { action, runId };
    const onSpawn = (pid: number) => {
      told?.(pid);
      if (action === "start" && this.#waking) this.#waking.startRan = true;
      command.pid = pid;
      command.startTime = readProcStat(pid)?.startTime ?? 0;
      this.#onChange();
    };
    this.#commands.set(runId, command);
    this.#onChange();
    let result;
    try {
      result = await runServiceCommand(this.#config, action, spec, {
        ...context,
        runId,
        onSpawn,
      });
    } finally {
      this.#commands.delete(runId);
      this.#onChange();
    }
    this.#recorder.commandEnded(this.#config.name, action, result.code, result.durationMs / 1000);
    return result;
  }
}

/** First pause before a schedule's failed wake is tried again; it doubles. */
const FIRST_SCHEDULE_RETRY_MS = 1_000;
/** Longest pause between a schedule's tries. */
const LAST_SCHEDULE_RETRY_MS = 5 * 60_000;

/** The service's KEEP_AWAKE windows, or undefined when it has none. */
function scheduleOf(config: ServiceConfig): KeepAwakeSchedule | undefined {
  return config.keepAwake.length > 0
    ? new KeepAwakeSchedule(config.keepAwake, config.timeZone)
    : undefined;
}

function closeDetail(reason: CloseReason): string {
  return reason === "shutdown"
    ? "sleepingd is shutting down"
    : "the service was removed from the configuration";
}
