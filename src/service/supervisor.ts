/**
 * The daemon's services together: it makes them, opens their ports, and is
 * where reloads, `sleep` and the shutdown begin. Each job is a module of its
 * own: `listening.ts` (listeners, UDP sockets, accept loops),
 * `connections.ts` (the connections open, and finishing them), `reload.ts`
 * (applying a reload), `drains.ts` (removed services draining) and
 * `shutdown.ts` (the order of a shutdown).
 *
 * @module
 */

import type { Config, ServiceConfig } from "../config/types.ts";
import type { PortMapping } from "../config/ports.ts";
import { Budget } from "../net/budget.ts";
import { planBudgetFor } from "./budget_plan.ts";
import { WakeBudget } from "./admission.ts";
import { closeConnections, Connections } from "./connections.ts";
import type { Change } from "./lifecycle.ts";
import type { Coordinator } from "./coordinator.ts";
import { Drains } from "./drains.ts";
import { closeOpened, listenFor, Listening, type Opened } from "./listening.ts";
import { NO_RECORDER, type Recorder } from "./recorder.ts";
import { applyReload } from "./reload.ts";
import type { ReloadSummary } from "./reload_plan.ts";
import { Service } from "./service.ts";
import { shutDown } from "./shutdown.ts";
import type { KernelForwarder } from "../kernel/forwarder.ts";
import { SharedPorts } from "./shared_ports.ts";

export type { ReloadSummary } from "./reload_plan.ts";

/** A request named a service that the configuration does not have. */
export class UnknownServiceError extends Error {
  /** Creates the error naming the services there are. */
  constructor(message: string) {
    super(message);
    this.name = "UnknownServiceError";
  }
}

/** Runs every active service of a configuration in this process. */
export class Supervisor {
  #services: Service[];
  #config: Config;
  readonly #recorder: Recorder;
  /** Whether the services' schedules run: services a reload adds begin theirs too. */
  #schedulesStarted = false;
  readonly #listening: Listening;
  readonly #connections: Connections;
  readonly #drains: Drains;
  #reloading: Promise<unknown> = Promise.resolve();
  /** Set once the shutdown has begun: reloads are refused from then on. */
  #shuttingDown = false;
  /** The wakes all services begin, against MAX_WAKES_PER_HOUR_TOTAL. */
  readonly #totalWakes: WakeBudget;
  /** The descriptors and bytes held for clients, shared with the daemon's other servers. */
  readonly #budget: Budget;
  /** The open file limit the budget is planned within; undefined when unknown. */
  readonly #fileLimit?: number;
  /** The HTTP server's cap on its connections, when it runs. */
  readonly #http?: number;
  /** Told when any service's state changes. */
  readonly #onChange: () => void;
  /** The other instances in front of the same backends, when there are. */
  readonly #coordinator?: Coordinator;
  /** Told of each change of state. */
  readonly #onTransition?: (service: Service, change: Change) => void;
  /** The daemon's nftables table, for the services with FORWARD=kernel. */
  readonly #kernel?: KernelForwarder;
  /** How long a service's wakes usually take, from its history. */
  readonly #typicalWake?: (service: string) => number | undefined;
  /** The ports routed by name (HOSTNAMES, WAITING_PAGE): their listeners and routers. */
  readonly #shared: SharedPorts;

  /**
   * Creates the services of `config`; nothing listens until {@linkcode listen}.
   * `recorder` receives the events metrics count; `budget` is what the
   * daemon holds for clients, planned within `fileLimit` (unknown: only the
   * keys bound it) with a share for the HTTP server when `http` (its cap on
   * connections) says it runs; `onChange` is told when any service's state
   * changes, `onTransition` of each change of state; `typicalWake` says how
   * long a service's wakes usually take (for its waiting page).
   */
  constructor(
    config: Config,
    recorder: Recorder = NO_RECORDER,
    options: {
      budget?: Budget;
      fileLimit?: number;
      http?: number;
      onChange?: () => void;
      onTransition?: (service: Service, change: Change) => void;
      coordinator?: Coordinator;
      kernel?: KernelForwarder;
      typicalWake?: (service: string) => number | undefined;
    } = {},
  ) {
    this.#config = config;
    this.#recorder = recorder;
    this.#budget = options.budget ?? new Budget();
    this.#fileLimit = options.fileLimit;
    this.#http = options.http;
    this.#onChange = options.onChange ?? (() => {});
    this.#onTransition = options.onTransition;
    this.#coordinator = options.coordinator;
    this.#kernel = options.kernel;
    this.#typicalWake = options.typicalWake;
    const connections = new Connections(this.#budget);
    this.#connections = connections;
    this.#listening = new Listening((service, client, port) =>
      connections.track(service, client, port)
    );
    this.#drains = new Drains(connections, () => this.#config.global.shutdownGrace);
    this.#shared = new SharedPorts({
      serve: (service, client, first) => connections.track(service, client, undefined, first, true),
      budget: this.#budget,
      timeout: () => this.#config.global.hostnameTimeout,
    });
    this.#totalWakes = new WakeBudget(
      "MAX_WAKES_PER_HOUR_TOTAL",
      () => this.#config.global.maxWakesPerHourTotal,
    );
    this.#services = config.services.map((service) => this.#newService(service));
    this.#plan(false);
  }

  /** What the daemon holds for clients: descriptors and bytes, and their bounds. */
  get budget(): Budget {
    return this.#budget;
  }

  /**
   * Plans the budget's bounds anew, within the open file limit after the files
   * the daemon holds now (docs/ARCHITECTURE.md, "Budget"): the daemon calls it
   * once everything listens, a reload after its swap. Says so at debug level,
   * and warns when the limit leaves little room or the keys ask for more than it does.
   */
  planBudget(): void {
    this.#plan(true);
  }

  /** Plans the budget's bounds; says so when `say`. */
  #plan(say: boolean) {
    planBudgetFor(this.#config, this.#budget, {
      fileLimit: this.#fileLimit,
      http: this.#http,
      say,
    });
  }

  #newService(config: ServiceConfig): Service {
    return new Service(config, this.#recorder, {
      budget: this.#budget,
      totalWakes: this.#totalWakes,
      onChange: () => this.#onChange(),
      onTransition: this.#onTransition,
      services: () => this.#services,
      coordinator: this.#coordinator,
      kernel: this.#kernel &&
        { forwarder: this.#kernel, shutdownGrace: () => this.#config.global.shutdownGrace },
      typicalWake: this.#typicalWake,
    });
  }

  /** The services, in configuration order. */
  get services(): readonly Service[] {
    return this.#services;
  }

  /** The configuration in force. */
  get config(): Config {
    return this.#config;
  }

  /** The ports routed by name, with what they routed. */
  get sharedPorts(): SharedPorts {
    return this.#shared;
  }

  /**
   * The service named `name`.
   *
   * @throws {UnknownServiceError} naming the services there are, when none is named so
   */
  service(name: string): Service {
    const service = this.#services.find((one) => one.config.name === name);
    if (service) return service;
    const names = this.#services.map((one) => one.config.name).join(", ") || "none";
    throw new UnknownServiceError(`No service is named "${name}" (the services: ${names})`);
  }

  /** Begins each service's KEEP_AWAKE schedule: call it once crash recovery is done. */
  startSchedules(): void {
    this.#schedulesStarted = true;
    for (const service of this.#services) service.whyAwake.startSchedule();
  }

  /**
   * Puts a service to sleep now and ends its keep-awake. A wake under way is
   * cancelled (its clients are closed, STOP_CMD cleans up after a START_CMD
   * that ran); an awake backend is stopped with STOP_CMD once its open
   * connections have had up to SHUTDOWN_GRACE to finish (closed after; at
   * once with `force`).
   *
   * @throws {Error} when a needer keeps it awake, or another instance (or
   * etcd's silence) keeps it from stopping now (nothing is closed then)
   */
  async sleep(service: Service, force: boolean): Promise<void> {
    const name = service.config.name;
    const needers = service.whyAwake.neededBy();
    if (needers.length > 0) {
      throw new Error(
        `${name} is needed by ${needers.join(", ")} (DEPENDS_ON), not asleep: ` +
          "put that to sleep first",
      );
    }
    service.whyAwake.keepAwakeUntil(0);
    await service.cancelWake(`${name} was put to sleep`);
    const finish = async () => {
      const open = this.#connections.of(service);
      if (force) {
        await closeConnections(open);
      } else {
        const grace = this.#config.global.shutdownGrace;
        await this.#connections.finish(open, `[${name}] asked to sleep:`, grace, () => {});
      }
    };
    const detail = force ? "asked to sleep at once" : "asked to sleep";
    const refusal = await service.stop("requested", detail, finish);
    if (refusal !== undefined) throw new Error(`${name} is not asleep: ${refusal}`);
  }

  /**
   * Opens every service's listeners (TCP) and sockets (UDP) and starts serving.
   *
   * @throws {Error} naming the service's file:line, the address and the
   * reason when one cannot listen; listeners already opened are closed again
   */
  async listen(): Promise<void> {
    const opened = new Map<Service, Opened>();
    try {
      for (const service of this.#services) opened.set(service, await listenFor(service.config));
      await this.#shared.listen(this.#config.services, this.#services);
    } catch (error) {
      for (const ports of opened.values()) closeOpened(ports);
      throw error;
    }
    for (const [service, ports] of opened) this.#listening.serveAll(service, ports);
    this.#plan(false);
  }

  /**
   * Accepts connections on `listener` for `service` until the listener is
   * closed; `port` is the MORE_PORTS entry it listens for, undefined for
   * PORT. Tests hand in their own port-0 listeners here.
   */
  serve(service: Service, listener: Deno.TcpListener, port?: PortMapping): void {
    this.#listening.serve(service, listener, port);
  }

  /** Connections accepted plus connections closed so far: it changes whenever connections come or go. */
  get connectionEvents(): number {
    return this.#connections.events;
  }

  /**
   * Switches to a new, already validated configuration (see
   * {@linkcode applyReload}); one reload at a time, in the order asked.
   *
   * @throws {Error} when a new listener cannot be opened, or the shutdown has
   * begun; nothing is changed then
   */
  reload(config: Config): Promise<ReloadSummary> {
    if (this.#shuttingDown) {
      return Promise.reject(new Error("sleepingd is shutting down: no reload now"));
    }
    const reload = this.#reloading.then(() =>
      applyReload({
        services: this.#services,
        listening: this.#listening,
        shared: this.#shared,
        drains: this.#drains,
        add: (next) => {
          const added = this.#newService(next);
          this.#drains.wakeAfterDrains(added);
          if (this.#schedulesStarted) added.whyAwake.startSchedule();
          return added;
        },
        swap: (next, services) => {
          this.#services = services;
          this.#config = next;
          this.#plan(true);
        },
      }, config)
    );
    this.#reloading = reload.catch(() => {});
    return reload;
  }

  /**
   * Shuts down (see {@linkcode shutDown}): refuses reloads from now on and
   * waits for the one under way, so that what it adds is closed too.
   */
  async shutdown(): Promise<void> {
    this.#shuttingDown = true;
    await this.#reloading; // what a reload under way adds is closed too
    await shutDown({
      services: this.#services,
      listening: this.#listening,
      shared: this.#shared,
      connections: this.#connections,
      drains: this.#drains,
      grace: this.#config.global.shutdownGrace,
    });
  }
}
