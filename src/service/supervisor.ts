/**
 * The daemon's core: a listener per service, a task per connection, and an
 * orderly shutdown.
 *
 * @module
 */

import type { Config, ServiceConfig } from "../config/types.ts";
import { log } from "../log.ts";
import { formatAddr, formatTarget } from "../net/address.ts";
import { closeQuietly, forward } from "../net/forward.ts";
import { listenAll } from "../net/listen.ts";
import { sleep, tuneConnection } from "../net/connect.ts";
import { NO_RECORDER, type Recorder } from "./recorder.ts";
import { Service } from "./service.ts";

/** Pause after an accept failure that is not the client's doing. */
const ACCEPT_RETRY_MS = 100;

/** Whether an accept error only says that the client went away before it was accepted. */
function isClientGone(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.NotConnected;
}

/** Runs every active service of a configuration in this process. */
export class Supervisor {
  #services: Service[];
  #config: Config;
  #recorder: Recorder;
  #listeners = new Map<Service, Deno.TcpListener[]>();
  /** Each listener's accept loop, which ends once the listener is closed. */
  #accepting = new Map<Deno.TcpListener, Promise<void>>();
  #reloading: Promise<unknown> = Promise.resolve();
  #connections = new Set<Connection>();
  /** Removed services finishing their connections and stopping their backend. */
  #drains = new Set<Promise<void>>();
  #log = log("supervisor");

  /**
   * Creates the services of `config`; nothing listens until {@linkcode listen}.
   * `recorder` receives the events metrics count.
   */
  constructor(config: Config, recorder: Recorder = NO_RECORDER) {
    this.#config = config;
    this.#recorder = recorder;
    this.#services = config.services.map((service) => new Service(service, recorder));
  }

  /** The services, in configuration order. */
  get services(): readonly Service[] {
    return this.#services;
  }

  /** The configuration in force. */
  get config(): Config {
    return this.#config;
  }

  /**
   * Opens every service's listeners and starts accepting.
   *
   * @throws {Error} naming the service and address that could not listen;
   * listeners already opened are closed again
   */
  listen() {
    try {
      for (const service of this.#services) {
        this.#listeners.set(service, listenFor(service.config));
      }
    } catch (error) {
      this.#closeListeners();
      throw error;
    }
    for (const [service, listeners] of this.#listeners) {
      for (const listener of listeners) this.serve(service, listener);
    }
  }

  /**
   * Accepts connections on `listener` for `service` until the listener is
   * closed. Tests hand in their own port-0 listeners here.
   */
  serve(service: Service, listener: Deno.TcpListener) {
    if (!this.#listeners.get(service)?.includes(listener)) {
      this.#listeners.set(service, [...(this.#listeners.get(service) ?? []), listener]);
    }
    this.#log.info("[{service}] listening on {address}", {
      service: service.config.name,
      address: formatAddr(listener.addr),
    });
    const loop = this.#acceptLoop(service, listener).catch((error) => {
      this.#log.error("[{service}] stopped accepting on {address}: {error}", {
        service: service.config.name,
        address: formatAddr(listener.addr),
        error,
      });
    }).finally(() => this.#accepting.delete(listener));
    this.#accepting.set(listener, loop);
  }

  /**
   * Closes a service's listeners. The port is free again only once their
   * accept loops have ended: the returned promise says when.
   */
  #stopListening(service: Service): Promise<unknown> {
    const listeners = this.#listeners.get(service) ?? [];
    this.#listeners.delete(service);
    listeners.forEach(closeQuietly);
    return Promise.all(listeners.map((listener) => this.#accepting.get(listener)));
  }

  async #acceptLoop(service: Service, listener: Deno.TcpListener) {
    while (true) {
      let client: Deno.TcpConn;
      try {
        client = await listener.accept();
      } catch (error) {
        if (error instanceof Deno.errors.BadResource) return; // the listener was closed
        this.#log.warn("[{service}] accept failed: {error}", {
          service: service.config.name,
          error,
        });
        // A client that reset before it was accepted concerns that client alone; anything
        // else (e.g. out of file descriptors) would fail again at once: pause, do not spin.
        if (!isClientGone(error)) await sleep(ACCEPT_RETRY_MS);
        continue;
      }
      tuneConnection(client);
      const entry: Connection = { client, service, done: Promise.resolve() };
      entry.done = this.#handle(service, client).finally(() => this.#connections.delete(entry));
      this.#connections.add(entry);
    }
  }

  async #handle(service: Service, client: Deno.TcpConn) {
    const name = service.config.name;
    const peer = formatAddr(client.remoteAddr);
    const opened = Date.now();
    service.connectionOpened();
    try {
      let backend;
      try {
        backend = await service.openBackend(client.remoteAddr);
      } catch (error) {
        this.#log.warn("[{service}] closing connection from {peer}: {reason}", {
          service: name,
          peer,
          reason: (error as Error).message,
        });
        closeQuietly(client);
        return;
      }
      const target = formatTarget(backend.target);
      this.#log.info("[{service}] {peer} connected to {target}", { service: name, peer, target });
      const result = await forward(
        client,
        backend.conn,
        (direction, bytes) => service.bytesForwarded(direction, bytes),
      );
      const seconds = ((Date.now() - opened) / 1000).toFixed(2);
      const ending = result.error ? `: ${(result.error as Error).message ?? result.error}` : "";
      this.#log.info(
        "[{service}] {peer} closed after {seconds}s, {bytesIn} bytes in, {bytesOut} bytes out{ending}",
        {
          service: name,
          peer,
          target,
          seconds,
          bytesIn: result.clientToBackend,
          bytesOut: result.backendToClient,
          ending,
        },
      );
    } finally {
      service.connectionClosed();
    }
  }

  /**
   * Switches to a new, already validated configuration. Services whose
   * settings are unchanged keep their state and connections; changed ones take
   * the new settings in place (and new listeners if their address changed);
   * removed ones stop accepting, drain their connections and stop their
   * backend; added ones start listening.
   *
   * @throws {Error} when a new listener cannot be opened; nothing is changed then
   */
  reload(config: Config): Promise<ReloadSummary> {
    const reload = this.#reloading.then(() => this.#reload(config));
    this.#reloading = reload.catch(() => {});
    return reload;
  }

  async #reload(config: Config): Promise<ReloadSummary> {
    const old = new Map(this.#services.map((service) => [service.config.name, service]));
    const fresh = new Map(config.services.map((service) => [service.name, service]));
    const summary: ReloadSummary = { added: [], removed: [], changed: [], unchanged: [] };
    const relisten: Service[] = [];
    const opened = new Map<string, Deno.TcpListener[]>();
    try {
      for (const next of config.services) {
        const current = old.get(next.name);
        if (current && sameListen(current.config, next)) continue;
        // A new listener on a port an old one keeps would fail: those move after the swap.
        if (this.#portHeld(next.port, old, fresh)) continue;
        opened.set(next.name, listenFor(next));
      }
    } catch (error) {
      for (const listeners of opened.values()) listeners.forEach(closeQuietly);
      throw error;
    }

    const services: Service[] = [];
    const released: Promise<unknown>[] = [];
    for (const next of config.services) {
      const current = old.get(next.name);
      let service = current;
      if (current === undefined) {
        service = new Service(next, this.#recorder);
        summary.added.push(next.name);
        relisten.push(service);
      } else if (sameConfig(current.config, next)) {
        summary.unchanged.push(next.name);
      } else {
        if (!sameListen(current.config, next)) {
          released.push(this.#stopListening(current));
          relisten.push(current);
        }
        current.reconfigure(next);
        summary.changed.push(next.name);
      }
      services.push(service!);
    }
    for (const [name, service] of old) {
      if (fresh.has(name)) continue;
      summary.removed.push(name);
      released.push(this.#stopListening(service));
      const drain = this.#drain(service).finally(() => this.#drains.delete(drain));
      this.#drains.add(drain);
    }
    this.#services = services;
    this.#config = config;
    await Promise.all(released);
    for (const service of relisten) {
      let listeners = opened.get(service.config.name);
      try {
        listeners ??= listenFor(service.config);
      } catch (error) {
        this.#log.error("{error}", { error: (error as Error).message });
        continue;
      }
      for (const listener of listeners) this.serve(service, listener);
    }
    return summary;
  }

  /** Whether a listener that stays open until the swap holds `port`. */
  #portHeld(port: number, old: Map<string, Service>, fresh: Map<string, ServiceConfig>): boolean {
    return [...old.values()].some((service) =>
      service.config.port === port &&
      (!fresh.has(service.config.name) ||
        !sameListen(service.config, fresh.get(service.config.name)!))
    );
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
  async shutdown() {
    this.#closeListeners();
    await this.#finishConnections([...this.#connections], "shutting down:", () => {
      for (const service of this.#services) service.cancelWakes("shutdown");
    });
    await Promise.all(this.#services.map((service) => service.close("shutdown")));
    await Promise.all([...this.#drains, ...[...this.#connections].map((entry) => entry.done)]);
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

  #closeListeners() {
    for (const listeners of this.#listeners.values()) listeners.forEach(closeQuietly);
  }
}

/** An accepted connection, until it is closed. */
interface Connection {
  client: Deno.Conn;
  service: Service;
  done: Promise<void>;
}

/** What a reload did, by service name. */
export interface ReloadSummary {
  /** New services, now listening. */
  added: string[];
  /** Services gone from the configuration, now draining. */
  removed: string[];
  /** Services whose settings changed, kept with their state. */
  changed: string[];
  /** Services left as they were. */
  unchanged: string[];
}

/**
 * Opens a service's listeners.
 *
 * @throws {Error} naming the service's file:line, the address and the reason
 */
function listenFor(config: ServiceConfig): Deno.TcpListener[] {
  try {
    return listenAll(config.listenAddresses, config.port);
  } catch (error) {
    const where = `${config.source.file}:${config.source.line}`;
    throw new Error(`${where}: [${config.name}] ${(error as Error).message}`);
  }
}

/** Whether two settings of a service are the same, wherever in the files they were written. */
function sameConfig(a: ServiceConfig, b: ServiceConfig): boolean {
  const withoutSource = (key: string, value: unknown) => key === "source" ? undefined : value;
  return JSON.stringify(a, withoutSource) === JSON.stringify(b, withoutSource);
}

/** Whether two settings listen on the same port and addresses. */
function sameListen(a: ServiceConfig, b: ServiceConfig): boolean {
  return a.port === b.port && a.listenAddresses.join(" ") === b.listenAddresses.join(" ");
}
