/**
 * Who may connect and who may wake: ALLOW/DENY, the connection limits of a
 * service and of each client address, and the wake rate limits. Checked
 * before anything else, so that a refused client never wakes a service.
 *
 * @module
 */

import { AddressRules } from "../config/address_rules.ts";
import type { ServiceConfig } from "../config/types.ts";
import { sourceOf, unmapped } from "../net/address.ts";

/** Why a client was closed without a backend, as `sleepingd_refused_total{reason}` counts it. */
export type RefusalReason =
  | "deny"
  | "allow"
  | "max_connections"
  | "max_connections_per_source"
  | "max_connections_total"
  | "max_wakes_per_hour"
  | "max_wakes_per_hour_total"
  | "hold_timeout"
  | "held_bytes";

/** A refused client: the reason for metrics, and the words for the log. */
export interface Refusal {
  /** For metrics. */
  reason: RefusalReason;
  /** For the log, e.g. `denied by DENY 10.0.0.0/8`. */
  message: string;
}

/** The clients one service lets in, and how many each source (address, or IPv6 /64) holds now. */
export class Admission {
  #rules: AddressRules;
  #config: ServiceConfig;
  readonly #perSource = new Map<string, number>();

  /** Creates the admission of a service. */
  constructor(config: ServiceConfig) {
    this.#config = config;
    this.#rules = new AddressRules(config.allow, config.deny);
  }

  /** Takes a reload's settings; clients already in stay. */
  reconfigure(config: ServiceConfig): void {
    this.#config = config;
    this.#rules = new AddressRules(config.allow, config.deny);
  }

  /**
   * Why the client at `client` may not connect now, `open` connections being
   * held already; or undefined, and then it is counted until {@linkcode left}.
   */
  admit(client: Deno.NetAddr, open: number): Refusal | undefined {
    const { maxConnections, maxConnectionsPerSource } = this.#config;
    const address = unmapped(client.hostname);
    if (!this.#rules.empty) {
      const refused = this.#rules.refusal(address);
      if (refused) {
        return { reason: refused.list === "DENY" ? "deny" : "allow", message: refused.message };
      }
    }
    if (maxConnections !== undefined && open >= maxConnections) {
      return {
        reason: "max_connections",
        message: `the service holds MAX_CONNECTIONS (${maxConnections}) already`,
      };
    }
    const source = sourceOf(address);
    const held = this.#perSource.get(source) ?? 0;
    if (maxConnectionsPerSource !== undefined && held >= maxConnectionsPerSource) {
      return {
        reason: "max_connections_per_source",
        message: `${source} holds MAX_CONNECTIONS_PER_SOURCE (${maxConnectionsPerSource}) already`,
      };
    }
    this.#perSource.set(source, held + 1);
    return undefined;
  }

  /** Uncounts a client that {@linkcode admit} let in. */
  left(client: Deno.NetAddr): void {
    const source = sourceOf(client.hostname);
    const held = (this.#perSource.get(source) ?? 1) - 1;
    if (held > 0) this.#perSource.set(source, held);
    else this.#perSource.delete(source);
  }
}

/** One hour, the window of the wake rate limits. */
const HOUR_MS = 3600_000;

/** Wakes begun in the last hour, against a limit that may change with a reload. */
export class WakeBudget {
  readonly #limit: () => number | undefined;
  readonly #key: string;
  #wakes: number[] = [];

  /**
   * Creates a budget of `limit()` wakes an hour (none when undefined), named
   * by its configuration key in refusals.
   */
  constructor(
    key: "MAX_WAKES_PER_HOUR" | "MAX_WAKES_PER_HOUR_TOTAL",
    limit: () => number | undefined,
  ) {
    this.#key = key;
    this.#limit = limit;
  }

  /** Why no wake may begin now, or undefined when one may. */
  refusal(now = Date.now()): Refusal | undefined {
    const limit = this.#limit();
    if (limit === undefined) return undefined;
    this.#wakes = this.#wakes.filter((at) => now - at < HOUR_MS);
    if (this.#wakes.length < limit) return undefined;
    const again = Math.ceil((this.#wakes[0] + HOUR_MS - now) / 60_000);
    return {
      reason: this.#key === "MAX_WAKES_PER_HOUR"
        ? "max_wakes_per_hour"
        : "max_wakes_per_hour_total",
      message: `${this.#key} (${limit}) is reached: the next wake may begin in ${again} min`,
    };
  }

  /** Counts a wake that begins now. */
  spend(now = Date.now()): void {
    if (this.#limit() !== undefined) this.#wakes.push(now);
  }
}
