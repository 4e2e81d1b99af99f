/**
 * The connections open now, across the services of a supervisor: each
 * tracked from its accept to its close (with its `tcp` in the budget), and
 * finished when its service goes or sleeps: up to SHUTDOWN_GRACE to end on
 * their own, then the wakes they wait for cancelled and what is left closed
 * (docs/ARCHITECTURE.md, "Reload and shutdown").
 *
 * @module
 */

import { log } from "../log.ts";
import type { PortMapping } from "../config/ports.ts";
import type { Budget } from "../net/budget.ts";
import { closeQuietly } from "../net/conn.ts";
import type { FirstBytes } from "../net/first_bytes.ts";
import { sleep } from "../timers.ts";
import { serveConnection } from "./connection.ts";
import type { Service } from "./service.ts";

/** An accepted connection, until it is closed. */
export interface Connection {
  /** The client's socket. */
  client: Deno.Conn;
  /** The service that serves it. */
  service: Service;
  /** Resolves once it is closed and forgotten. */
  done: Promise<void>;
}

/** Every connection the supervisor's services serve now. */
export class Connections {
  readonly #budget: Budget;
  readonly #open = new Set<Connection>();
  #events = 0;
  readonly #log = log("supervisor");

  /** Tracks connections that count in `budget`. */
  constructor(budget: Budget) {
    this.#budget = budget;
  }

  /** Connections accepted plus connections closed so far: it changes whenever connections come or go. */
  get events(): number {
    return this.#events;
  }

  /** The connections open now. */
  all(): Connection[] {
    return [...this.#open];
  }

  /** The connections of `service` open now. */
  of(service: Service): Connection[] {
    return [...this.#open].filter((entry) => entry.service === service);
  }

  /**
   * Registers an accepted connection and handles it until it is closed;
   * `first` is what a port routed by name read of it; `counted`, that its
   * router took its `tcp` in the budget already, which passes to it.
   */
  track(
    service: Service,
    client: Deno.TcpConn,
    port: PortMapping | undefined,
    first?: FirstBytes,
    counted = false,
  ): void {
    const entry: Connection = { client, service, done: Promise.resolve() };
    const taken = counted || this.#budget.acquire("tcp");
    this.#events++;
    // serveConnection() resolves with undefined; anything else is an error of sleepingd's own.
    const forget = (error?: unknown) => {
      this.#open.delete(entry);
      if (taken) this.#budget.release("tcp");
      this.#events++;
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
    this.#open.add(entry);
  }

  /**
   * Waits up to `grace` seconds for `open` connections to end, then cancels
   * the wakes some of them may still wait for (`cancelWakes`) and closes what
   * is left; `why` begins the log lines.
   */
  async finish(
    open: Connection[],
    why: string,
    grace: number,
    cancelWakes: () => void,
  ): Promise<void> {
    if (open.length === 0) return;
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
      const left = open.filter((entry) => this.#open.has(entry));
      this.#log.warn("{why} closing {count} connection(s) still open after {grace}s", {
        why,
        count: left.length,
        grace,
      });
      cancelWakes();
      await closeConnections(left);
    }
  }
}

/** Closes `open` connections at once, and waits until they are forgotten. */
export async function closeConnections(open: Connection[]): Promise<void> {
  for (const { client } of open) closeQuietly(client);
  await Promise.all(open.map((entry) => entry.done));
}
