/**
 * The daemon's core: a listener per service, a task per connection, and an
 * orderly shutdown.
 *
 * @module
 */

import type { Config } from "../config/types.ts";
import { log } from "../log.ts";
import { formatAddr, formatTarget } from "../net/address.ts";
import { closeQuietly, forward } from "../net/forward.ts";
import { listenAll } from "../net/listen.ts";
import { sleep } from "../net/connect.ts";
import { Service } from "./service.ts";

/** Runs every active service of a configuration in this process. */
export class Supervisor {
  /** The services, in configuration order. */
  readonly services: Service[];
  #config: Config;
  #listeners = new Map<Service, Deno.TcpListener[]>();
  #connections = new Set<{ client: Deno.Conn; done: Promise<void> }>();
  #log = log("supervisor");

  /** Creates the services of `config`; nothing listens until {@linkcode listen}. */
  constructor(config: Config) {
    this.#config = config;
    this.services = config.services.map((service) => new Service(service));
  }

  /**
   * Opens every service's listeners and starts accepting.
   *
   * @throws {Error} naming the service and address that could not listen;
   * listeners already opened are closed again
   */
  listen() {
    try {
      for (const service of this.services) {
        const { name, listenAddresses, port } = service.config;
        try {
          this.#listeners.set(service, listenAll(listenAddresses, port));
        } catch (error) {
          throw new Error(`[${name}] ${(error as Error).message}`);
        }
      }
    } catch (error) {
      this.#closeListeners();
      throw error;
    }
    for (const [service, listeners] of this.#listeners) {
      for (const listener of listeners) this.serve(service, listener);
    }
  }

  /** Addresses each service listens on, for logs and tests. */
  addresses(service: Service): Deno.NetAddr[] {
    return (this.#listeners.get(service) ?? []).map((listener) => listener.addr);
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
    this.#acceptLoop(service, listener).catch((error) => {
      this.#log.error("[{service}] stopped accepting on {address}: {error}", {
        service: service.config.name,
        address: formatAddr(listener.addr),
        error,
      });
    });
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
        await sleep(100);
        continue;
      }
      client.setNoDelay(true);
      const entry = { client, done: Promise.resolve() };
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
   * Shuts down: stops accepting, lets open connections finish for up to
   * SHUTDOWN_GRACE seconds, closes what is left, then stops every awake
   * backend with its STOP_CMD.
   */
  async shutdown() {
    this.#closeListeners();
    const open = [...this.#connections];
    if (open.length > 0) {
      const grace = this.#config.global.shutdownGrace;
      this.#log.info("waiting up to {grace}s for {count} open connection(s)", {
        grace,
        count: open.length,
      });
      const graceOver = new AbortController();
      const finished = Promise.all(open.map((entry) => entry.done)).then(() => "finished");
      const timer = sleep(grace * 1000, graceOver.signal).then(() => "timeout", () => "finished");
      const outcome = await Promise.race([finished, timer]);
      graceOver.abort();
      if (outcome === "timeout") {
        this.#log.warn("closing {count} connection(s) still open after {grace}s", {
          count: this.#connections.size,
          grace,
        });
        for (const { client } of this.#connections) closeQuietly(client);
      }
    }
    await Promise.all(this.services.map((service) => service.close()));
    await Promise.all([...this.#connections].map((entry) => entry.done));
  }

  #closeListeners() {
    for (const listeners of this.#listeners.values()) {
      for (const listener of listeners) {
        try {
          listener.close();
        } catch {
          // Already closed.
        }
      }
    }
  }
}
