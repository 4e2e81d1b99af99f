/**
 * The daemon's core: listeners per service, a task per connection, reloads
 * and an orderly shutdown.
 *
 * @module
 */

import type { Config, ServiceConfig } from "../config/types.ts";
import { log } from "../log.ts";
import { formatAddr } from "../net/address.ts";
import { acceptConnections } from "../net/accept.ts";
import { closeQuietly } from "../net/conn.ts";
import { listenAll, listenAllWhenFreed } from "../net/listen.ts";
import { bindAll, closeSocket, type UdpSocket } from "../net/datagram.ts";
import { Budget, formatBytes } from "../net/budget.ts";
import { enlargeReceiveBuffers } from "../process/socket_buffer.ts";
import { formatPortMapping, listenPorts, type PortMapping } from "../config/ports.ts";
import type { FirstBytes } from "../net/first_bytes.ts";
import { planBudgetFor } from "./budget_plan.ts";
import { DatagramRelay } from "./datagrams.ts";
import { sleep } from "../timers.ts";
import { WakeBudget } from "./admission.ts";
import { serveConnection } from "./connection.ts";
import type { Change } from "./lifecycle.ts";
import type { Coordinator } from "./coordinator.ts";
import { NO_RECORDER, type Recorder } from "./recorder.ts";
import { planReload, type ReloadPlan, type ReloadSummary, sameCommands } from "./reload_plan.ts";
import { Service } from "./service.ts";
import type { KernelForwarder } from "../kernel/forwarder.ts";
import { routedByName } from "./name_router.ts";
import { type PreparedPorts, SharedPorts } from "./shared_ports.ts";

export type { ReloadSummary } from "./reload_plan.ts";

/**
 * The kernel receive buffer asked for each UDP port (the kernel doubles it):
 * 20 ms of 1400-byte datagrams at 500 Mbit/s, for the pauses of a busy machine.
 */
const UDP_RECEIVE_BUFFER = 1024 * 1024;

/** An accepted connection, until it is closed. */
interface Connection {
  client: Deno.Conn;
  service: Service;
  done: Promise<void>;
}

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
  readonly #listeners = new Map<Service, Deno.TcpListener[]>();
  /** Whether the services' schedules run: services a reload adds begin theirs too. */
  #schedulesStarted = false;
  /** Each service's UDP ports. */
  readonly #relays = new Map<Service, DatagramRelay[]>();
  /** Each listener's accept loop, which ends once the listener is closed. */
  readonly #accepting = new Map<Deno.TcpListener, Promise<void>>();
  #reloading: Promise<unknown> = Promise.resolve();
  /** Set once the shutdown has begun: reloads are refused from then on. */
  #shuttingDown = false;
  readonly #connections = new Set<Connection>();
  #connectionEvents = 0;
  /** Removed services finishing their connections and stopping their backend. */
  readonly #drains = new Map<Service, Promise<void>>();
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
  readonly #log = log("supervisor");

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
    this.#shared = new SharedPorts({
      serve: (service, client, first) => this.#track(service, client, undefined, first, true),
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
      const open = [...this.#connections].filter((entry) => entry.service === service);
      if (force) {
        for (const { client } of open) closeQuietly(client);
        await Promise.all(open.map((entry) => entry.done));
      } else {
        await this.#finishConnections(open, `[${name}] asked to sleep:`, () => {});
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
    for (const [service, ports] of opened) this.#serveAll(service, ports);
    this.#plan(false);
  }

  /** Serves what {@linkcode listenFor} opened for `service`. */
  #serveAll(service: Service, opened: Opened) {
    for (const { listener, port } of opened.tcp) this.serve(service, listener, port);
    for (
      const port of new Set(opened.udp.map(({ socket }) => (socket.addr as Deno.NetAddr).port))
    ) {
      const size = enlargeReceiveBuffers(port, UDP_RECEIVE_BUFFER);
      this.#log.debug("[{service}] UDP port {port}: a receive buffer of {size}", {
        service: service.config.name,
        port,
        size: size === undefined ? "the kernel's default" : formatBytes(size),
      });
    }
    for (const { socket, port } of opened.udp) {
      const relay = new DatagramRelay(service, socket, port);
      this.#relays.set(service, [...(this.#relays.get(service) ?? []), relay]);
      this.#log.info("[{service}] listening on {address}{mapping}", {
        service: service.config.name,
        address: relay.address,
        mapping: port ? ` (MORE_PORTS ${formatPortMapping(port)})` : "",
      });
    }
  }

  /**
   * Accepts connections on `listener` for `service` until the listener is
   * closed; `port` is the MORE_PORTS entry it listens for, undefined for
   * PORT. Tests hand in their own port-0 listeners here.
   */
  serve(service: Service, listener: Deno.TcpListener, port?: PortMapping): void {
    this.#listeners.set(service, [...(this.#listeners.get(service) ?? []), listener]);
    const name = service.config.name;
    this.#log.info("[{service}] listening on {address}{mapping}", {
      service: name,
      address: formatAddr(listener.addr),
      mapping: port ? ` (MORE_PORTS ${formatPortMapping(port)})` : "",
    });
    const loop = acceptConnections(listener, name, (client) => this.#track(service, client, port))
      .finally(() => this.#accepting.delete(listener));
    this.#accepting.set(listener, loop);
  }

  /** Connections accepted plus connections closed so far: it changes whenever connections come or go. */
  get connectionEvents(): number {
    return this.#connectionEvents;
  }

  /**
   * Registers an accepted connection and handles it until it is closed;
   * `first` is what a port routed by name read of it; `counted`, that its
   * router took its `tcp` in the budget already, which passes to it.
   */
  #track(
    service: Service,
    client: Deno.TcpConn,
    port: PortMapping | undefined,
    first?: FirstBytes,
    counted = false,
  ) {
    const entry: Connection = { client, service, done: Promise.resolve() };
    const taken = counted || this.#budget.acquire("tcp");
    this.#connectionEvents++;
    // serveConnection() resolves with undefined; anything else is an error of sleepingd's own.
    const forget = (error?: unknown) => {
      this.#connections.delete(entry);
      if (taken) this.#budget.release("tcp");
      this.#connectionEvents++;
      if (error !== undefined) {
        this.#log.error("[{service}] a connection ended with an error: {error}", {
          service: service.config.name,
          error,
        });
      }
    };
    // One handler for both outcomes, not finally(): a quiet connection holds what it chains.
    const refusal = taken
      ? undefined
      : { reason: "max_connections_total" as const, message: this.#budget.full("tcp") };
    entry.done = serveConnection(service, client, refusal, port, first).then(forget, forget);
    this.#connections.add(entry);
  }

  /**
   * Closes a service's listeners. The port is free again only once their
   * accept loops have ended: the returned promise says when.
   */
  #stopListening(service: Service): Promise<unknown> {
    for (const relay of this.#relays.get(service) ?? []) relay.close();
    this.#relays.delete(service);
    const listeners = this.#listeners.get(service) ?? [];
    this.#listeners.delete(service);
    listeners.forEach(closeQuietly);
    return Promise.all(listeners.map((listener) => this.#accepting.get(listener)));
  }

  /**
   * Switches to a new, already validated configuration. Services whose
   * settings are unchanged keep their state and connections; changed ones take
   * the new settings in place (and new listeners if their address changed);
   * removed ones stop accepting, drain their connections and stop their
   * backend; added ones start listening.
   *
   * @throws {Error} when a new listener cannot be opened, or the shutdown has
   * begun; nothing is changed then
   */
  reload(config: Config): Promise<ReloadSummary> {
    if (this.#shuttingDown) {
      return Promise.reject(new Error("sleepingd is shutting down: no reload now"));
    }
    const reload = this.#reloading.then(() => this.#reload(config));
    this.#reloading = reload.catch(() => {});
    return reload;
  }

  async #reload(config: Config): Promise<ReloadSummary> {
    const plan = planReload(this.#services.map((service) => service.config), config.services);
    const old = new Map(this.#services.map((service) => [service.config.name, service]));
    // A renamed service goes on under its new name: its state, backend and connections.
    for (const { from, to } of plan.renamed) old.set(to, old.get(from)!);
    const fresh = new Map(config.services.map((service) => [service.name, service]));
    const opened = new Map<string, Opened>();
    let shared: PreparedPorts;
    try {
      for (const name of plan.listenBefore) opened.set(name, await listenFor(fresh.get(name)!));
      shared = await this.#shared.prepare(config.services, releasedPorts(plan, old));
    } catch (error) {
      for (const ports of opened.values()) closeOpened(ports);
      throw error;
    }

    const released = plan.relisten.map((name) => this.#stopListening(old.get(name)!));
    for (const name of plan.removed) {
      const service = old.get(name)!;
      service.stopForwarding();
      released.push(this.#stopListening(service));
      const drain = this.#drain(service).finally(() => this.#drains.delete(service));
      this.#drains.set(service, drain);
    }
    this.#services = config.services.map((next) => {
      const service = old.get(next.name);
      if (service === undefined) {
        const added = this.#newService(next);
        this.#wakeAfterDrains(added);
        if (this.#schedulesStarted) added.whyAwake.startSchedule();
        return added;
      }
      if (plan.changed.includes(next.name)) service.reconfigure(next);
      return service;
    });
    this.#config = config;
    this.#plan(true);
    const byName = new Map(this.#services.map((service) => [service.config.name, service]));
    for (const [name, ports] of opened) this.#serveAll(byName.get(name)!, ports);
    released.push(this.#shared.swap(shared, this.#services));
    await Promise.all(released);
    await this.#shared.listenAfter(shared, config.services, this.#services);
    for (const name of plan.listenAfter) {
      const service = byName.get(name)!;
      try {
        this.#serveAll(service, await listenFor(service.config, true));
      } catch (error) {
        this.#log.error("{error}", { error: (error as Error).message });
      }
    }
    const { added, removed, changed, unchanged, renamed } = plan;
    return { added, removed, changed, unchanged, renamed };
  }

  /**
   * Makes an added service's wakes wait for the drains of removed services
   * with its name or its commands: their STOP_CMD would stop the backend it
   * wakes (a section removed, then added back while it drained).
   */
  #wakeAfterDrains(added: Service) {
    const { name } = added.config;
    const same = [...this.#drains].filter(([removed]) =>
      removed.config.name === name || sameCommands(removed.config, added.config)
    );
    if (same.length === 0) return;
    const what = same.map(([removed]) => `the removed [${removed.config.name}]`).join(", ");
    added.wakeAfter(Promise.all(same.map(([, drain]) => drain)).then(() => {}), what);
  }

  /** Lets a removed service's connections finish (up to SHUTDOWN_GRACE), then stops its backend. */
  async #drain(service: Service) {
    const name = service.config.name;
    await this.#finishConnections(
      [...this.#connections].filter((entry) => entry.service === service),
      `[${name}] removed:`,
      () => service.cancelWakes("removed"),
    );
    await service.close("removed");
  }

  /**
   * Shuts down: stops accepting, lets open connections finish for up to
   * SHUTDOWN_GRACE seconds, closes what is left, then stops every awake
   * backend with its STOP_CMD.
   */
  async shutdown(): Promise<void> {
    this.#shuttingDown = true;
    await this.#reloading; // what a reload under way adds is closed too
    for (const service of this.#services) service.stopForwarding();
    const sharedClosed = this.#shared.close();
    for (const listeners of this.#listeners.values()) listeners.forEach(closeQuietly);
    for (const relays of this.#relays.values()) relays.forEach((relay) => relay.close());
    this.#relays.clear();
    await this.#finishConnections([...this.#connections], "shutting down:", () => {
      for (const service of this.#services) service.cancelWakes("shutdown");
    });
    await this.#closeInOrder();
    await Promise.all([
      sharedClosed,
      ...this.#drains.values(),
      ...[...this.#connections].map((entry) => entry.done),
    ]);
  }

  /**
   * Closes every service for the shutdown, those that others need (DEPENDS_ON)
   * after those others: stops run in the reverse order of wakes.
   */
  async #closeInOrder() {
    const left = new Set(this.#services);
    while (left.size > 0) {
      const needed = (service: Service) =>
        [...left].some((other) => other.config.dependsOn.includes(service.config.name));
      const free = [...left].filter((service) => !needed(service));
      // Validation refuses cycles; should one come anyway, the rest closes together.
      const closing = free.length > 0 ? free : [...left];
      for (const service of closing) left.delete(service);
      await Promise.all(closing.map((service) => service.close("shutdown")));
    }
  }

  /**
   * Waits up to SHUTDOWN_GRACE for `open` connections to end, then cancels
   * the wakes some of them may still wait for (`cancelWakes`) and closes what
   * is left.
   */
  async #finishConnections(open: Connection[], why: string, cancelWakes: () => void) {
    if (open.length === 0) return;
    const grace = this.#config.global.shutdownGrace;
    this.#log.info("{why} waiting up to {grace}s for {count} open connection(s)", {
      why,
      grace,
      count: open.length,
    });
    const graceOver = new AbortController();
    const finished = Promise.all(open.map((entry) => entry.done)).then(() => "finished");
    const timer = sleep(grace * 1000, graceOver.signal).then(() => "timeout", () => "finished");
    const outcome = await Promise.race([finished, timer]);
    graceOver.abort();
    if (outcome === "timeout") {
      const left = open.filter((entry) => this.#connections.has(entry));
      this.#log.warn("{why} closing {count} connection(s) still open after {grace}s", {
        why,
        count: left.length,
        grace,
      });
      cancelWakes();
      for (const { client } of left) closeQuietly(client);
      await Promise.all(left.map((entry) => entry.done));
    }
  }
}

/** What a service listens on: TCP listeners and UDP sockets, each with its MORE_PORTS entry. */
interface Opened {
  tcp: { listener: Deno.TcpListener; port?: PortMapping }[];
  udp: { socket: UdpSocket; port?: PortMapping }[];
}

/**
 * Opens a service's listeners and UDP sockets: PORT's, then MORE_PORTS'.
 * `freed`: a reload has just closed the listeners that held its TCP ports,
 * which may stay busy a moment.
 *
 * @throws {Error} naming the file:line of PORT (or MORE_PORTS), the address
 * and the reason; what was opened before the failure is closed again
 */
async function listenFor(config: ServiceConfig, freed = false): Promise<Opened> {
  const opened: Opened = { tcp: [], udp: [] };
  let where = config.portSource ?? config.source;
  try {
    for (const [index, mapping] of listenPorts(config).entries()) {
      if (index === 0 && routedByName(config)) continue; // its port's router listens (SharedPorts)
      if (index > 0) where = config.morePortsSource ?? where;
      const port = index === 0 ? undefined : mapping;
      if (mapping.protocol === "tcp") {
        const listeners = freed
          ? await listenAllWhenFreed(config.listenAddresses, mapping.listen)
          : listenAll(config.listenAddresses, mapping.listen);
        for (const listener of listeners) {
          opened.tcp.push({ listener, port });
        }
      } else {
        for (const socket of bindAll(config.listenAddresses, mapping.listen)) {
          opened.udp.push({ socket, port });
        }
      }
    }
    return opened;
  } catch (error) {
    closeOpened(opened);
    const at = `${where.file}:${where.line}`;
    throw new Error(`${at}: [${config.name}] ${(error as Error).message}`);
  }
}

/**
 * The TCP ports the services' own listeners give up in a reload: those of
 * removed services and of services that move (PORT only when it was their own).
 */
function releasedPorts(plan: ReloadPlan, old: Map<string, Service>): Set<number> {
  const freed = new Set<number>();
  for (const name of [...plan.removed, ...plan.relisten]) {
    const config = old.get(name)!.config;
    for (const [index, mapping] of listenPorts(config).entries()) {
      if (index === 0 && routedByName(config)) continue;
      if (mapping.protocol === "tcp") freed.add(mapping.listen);
    }
  }
  return freed;
}

function closeOpened(opened: Opened) {
  for (const { listener } of opened.tcp) closeQuietly(listener);
  for (const { socket } of opened.udp) closeSocket(socket);
}
