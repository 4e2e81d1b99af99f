/**
 * One port routed by name: each connection's first bytes (a TLS ClientHello
 * or an HTTP/1.x request head) are read within HOSTNAME_TIMEOUT and 32 KiB,
 * its name chooses a service (HOSTNAMES), and that service serves it as a
 * client of its own, the bytes read going first to its backend
 * (docs/ARCHITECTURE.md, "Ports shared by name"). A port of one service
 * without HOSTNAMES (WAITING_PAGE only) sends everything to it, and reads
 * nothing ahead while it is awake.
 *
 * @module
 */

import { DEFAULT_PATTERN, HostTable, normalizeHostname } from "../config/hostnames.ts";
import type { ServiceConfig } from "../config/types.ts";
import { log } from "../log.ts";
import { formatAddr, formatTarget } from "../net/address.ts";
import type { Budget } from "../net/budget.ts";
import { closeQuietly } from "../net/conn.ts";
import { type FirstBytes, type FirstBytesOutcome, readFirstBytes } from "../net/first_bytes.ts";
import { answerAndLinger, httpAnswer } from "../net/http_answer.ts";
import type { Service } from "./service.ts";

const logger = log("router");

/**
 * Why a connection to a port routed by name was closed before any service
 * took it, as `sleepingd_unrouted_total{reason}` counts it:
 * - `unknown_name`: its name is no service's, and no service takes `*`
 * - `no_name`: it sent no name (TLS without SNI, HTTP/1.0 without Host), and no `*`
 * - `not_tls_or_http`: neither a TLS ClientHello nor an HTTP/1.x request, and no `*`
 * - `malformed`: a ClientHello or request head that breaks the rules, and no `*`
 * - `too_long`: no name within the first 32 KiB, and no `*`
 * - `timeout`: not enough within HOSTNAME_TIMEOUT (whatever `*` says)
 * - `client_left`: it closed or broke the connection before saying enough
 * - `max_connections_total`: sleepingd held as many connections as it may (the budget's `tcp`)
 * - `held_bytes`: MAX_HELD_BYTES_TOTAL had no room for the buffer reading its first bytes
 */
export type UnroutedReason =
  | "unknown_name"
  | "no_name"
  | "not_tls_or_http"
  | "malformed"
  | "too_long"
  | "timeout"
  | "client_left"
  | "max_connections_total"
  | "held_bytes";

/** Whether a service's PORT is routed by name: it names its hosts, or has a waiting page. */
export function routedByName(config: ServiceConfig): boolean {
  return config.hostnames !== undefined || config.waitingPage !== undefined;
}

/** One port routed by name, and the services on it, by name. */
export interface PortGroup {
  /** `ADDRESSES PORT`: what tells one group from another. */
  key: string;
  /** The port. */
  port: number;
  /** The addresses it listens on. */
  addresses: string[];
  /** Its services' names, in configuration order. */
  services: string[];
}

/** The ports of `configs` routed by name, in the order their first service comes. */
export function portGroups(configs: readonly ServiceConfig[]): PortGroup[] {
  const groups = new Map<string, PortGroup>();
  for (const config of configs) {
    if (!routedByName(config)) continue;
    const key = `${config.listenAddresses.join(" ")} ${config.port}`;
    const group = groups.get(key) ??
      { key, port: config.port, addresses: config.listenAddresses, services: [] };
    group.services.push(config.name);
    groups.set(key, group);
  }
  return [...groups.values()];
}

/** Connections routed and not routed, per port and pattern: kept across reloads. */
export class RouteCounts {
  /** By `listen`, then `pattern service`. */
  readonly routed = new Map<string, Map<string, number>>();
  /** By `listen`, then reason. */
  readonly unrouted = new Map<string, Map<UnroutedReason, number>>();
  /** Connections being read now on every port, before a service took them. */
  reading = 0;

  /** Counts a connection of `listen` that `pattern` sent to `service`. */
  countRouted(listen: string, pattern: string, service: string): void {
    const counts = this.routed.get(listen) ?? new Map<string, number>();
    this.routed.set(listen, counts);
    const key = `${pattern} ${service}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }

  /** Counts a connection of `listen` closed before any service took it. */
  countUnrouted(listen: string, reason: UnroutedReason): void {
    const counts = this.unrouted.get(listen) ?? new Map<UnroutedReason, number>();
    this.unrouted.set(listen, counts);
    counts.set(reason, (counts.get(reason) ?? 0) + 1);
  }
}

/** What a name router needs of the supervisor. */
export interface RouterContext {
  /**
   * Serves a client as the service's own connection, with the bytes read of
   * it: the `tcp` the router took for it in the budget passes to it.
   */
  serve(service: Service, client: Deno.TcpConn, first?: FirstBytes): void;
  /**
   * Where each connection counts, from the accept on: a `tcp`
   * (MAX_CONNECTIONS_TOTAL), and the buffer reading its first bytes
   * (MAX_HELD_BYTES_TOTAL) until they are read.
   */
  budget: Budget;
  /** HOSTNAME_TIMEOUT, in seconds. */
  timeout(): number;
  /** Where the counts go. */
  counts: RouteCounts;
}

/** Where a connection goes: a service by a pattern, or nowhere, for a reason. */
type Choice =
  | { service: Service; pattern: string }
  | { reason: UnroutedReason; why: string; answer?: Uint8Array };

/** A TLS alert, fatal, unrecognized_name (RFC 6066 3): the client says "unknown name". */
const UNRECOGNIZED_NAME_ALERT = new Uint8Array([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x70]);

/** Routes the connections of one port by name. */
export class NameRouter {
  /** The addresses and port, as logs and metrics show them: `[::]:80`. */
  readonly listen: string;
  readonly #context: RouterContext;
  #table = new HostTable<Service>();
  /** The one service of a port without HOSTNAMES (WAITING_PAGE only). */
  #only?: Service;
  /** The patterns, by service, for status. */
  #patterns: { service: Service; patterns: string[] }[] = [];
  /** Connections whose first bytes are being read (also counted in `counts.reading`). */
  readonly #reading = new Set<Deno.TcpConn>();
  #closed = false;

  /** Creates the router of `group`; it routes nothing until {@linkcode setServices}. */
  constructor(group: PortGroup, context: RouterContext) {
    this.listen = group.addresses.map((hostname) => formatTarget({ hostname, port: group.port }))
      .join(" ");
    this.#context = context;
  }

  /** Takes the services of the port (a reload's, in place); connections being read follow them. */
  setServices(services: Service[]): void {
    const table = new HostTable<Service>();
    for (const service of services) {
      for (const pattern of service.config.hostnames ?? []) table.add(pattern, service);
    }
    this.#table = table;
    const [first] = services;
    this.#only = services.length === 1 && !first.config.hostnames ? first : undefined;
    this.#patterns = services.map((service) => ({
      service,
      patterns: service.config.hostnames ?? [DEFAULT_PATTERN],
    }));
  }

  /** The services of the port, each with its patterns (`*` for a port of its own). */
  get patterns(): readonly { service: Service; patterns: string[] }[] {
    return this.#patterns;
  }

  /** Connections whose first bytes are being read now. */
  get reading(): number {
    return this.#reading.size;
  }

  /** Takes a connection from the accept loop: refuses it, hands it on, or reads its name. */
  take(client: Deno.TcpConn): void {
    const peer = formatAddr(client.remoteAddr);
    const { budget } = this.#context;
    if (!budget.acquire("tcp")) {
      this.#context.counts.countUnrouted(this.listen, "max_connections_total");
      logger.warn("[{listen}] refused {peer}: {reason}", {
        listen: this.listen,
        peer,
        reason: budget.full("tcp"),
      });
      closeQuietly(client);
      return;
    }
    const only = this.#only;
    if (only && only.state === "awake" && !only.config.routePerConnection) {
      // Nothing to choose, and no page to show: as on a port of its own.
      this.#context.serve(only, client);
      return;
    }
    this.#reading.add(client);
    this.#context.counts.reading++;
    this.#route(client, peer).then((served) => {
      if (!served) budget.release("tcp");
    }, (error) => {
      this.#doneReading(client);
      budget.release("tcp");
      logger.error("[{listen}] cannot route {peer}: {error}", { listen: this.listen, peer, error });
      closeQuietly(client);
    });
  }

  /** The first bytes of `client` are read: it no longer counts as being read. */
  #doneReading(client: Deno.TcpConn) {
    if (this.#reading.delete(client)) this.#context.counts.reading--;
  }

  /** Stops routing: connections still being read are closed. */
  close(): void {
    this.#closed = true;
    for (const client of this.#reading) closeQuietly(client);
  }

  /** Reads the name of `client` and serves or closes it; whether a service took it. */
  async #route(client: Deno.TcpConn, peer: string): Promise<boolean> {
    const { budget } = this.#context;
    let held = 0;
    const first = await readFirstBytes(client, {
      timeoutMs: this.#context.timeout() * 1000,
      room: (bytes) => {
        if (!budget.hold("tcp_first_bytes", bytes)) return false;
        held += bytes;
        return true;
      },
      onUndecided: (bytes) =>
        logger.trace("[{listen}] {peer}: {bytes} bytes read, no name yet", {
          listen: this.listen,
          peer,
          bytes,
        }),
    });
    // What the service keeps of them, it counts itself (the hold's first block).
    budget.free("tcp_first_bytes", held);
    this.#doneReading(client);
    if (this.#closed) {
      closeQuietly(client);
      return false;
    }
    const choice = this.#choose(first.outcome);
    if ("service" in choice) {
      this.#context.counts.countRouted(this.listen, choice.pattern, choice.service.config.name);
      logger.debug("[{listen}] {peer} to [{service}] by {pattern}", {
        listen: this.listen,
        peer,
        service: choice.service.config.name,
        pattern: choice.pattern,
      });
      this.#context.serve(choice.service, client, first);
      return true;
    }
    this.#context.counts.countUnrouted(this.listen, choice.reason);
    const quiet = choice.reason === "timeout" || choice.reason === "client_left";
    logger[quiet ? "info" : "warn"]("[{listen}] closing connection from {peer}: {why}", {
      listen: this.listen,
      peer,
      why: choice.why,
    });
    if (choice.answer) await answerAndLinger(client, choice.answer);
    closeQuietly(client);
    return false;
  }

  /** Where the first bytes send the connection. */
  #choose(outcome: FirstBytesOutcome): Choice {
    const http = outcome.kind === "http" ||
      ((outcome.kind === "malformed" || outcome.kind === "too-long") &&
        outcome.protocol === "http");
    const method = outcome.kind === "http" ? outcome.head.method : "GET";
    const refuse = (reason: UnroutedReason, why: string): Choice => {
      const fallback = this.#only ?? this.#table.default;
      if (fallback) return { service: fallback, pattern: DEFAULT_PATTERN };
      if (!http) {
        const unknown = reason === "unknown_name" || reason === "no_name";
        const tls = outcome.kind === "tls";
        return { reason, why, answer: tls && unknown ? UNRECOGNIZED_NAME_ALERT : undefined };
      }
      return { reason, why, answer: refusalAnswer(reason, method) };
    };
    switch (outcome.kind) {
      case "timeout":
        return {
          reason: "timeout",
          why: `no name within HOSTNAME_TIMEOUT (${this.#context.timeout()}s)`,
        };
      case "closed":
        return { reason: "client_left", why: outcome.reason };
      case "no-room":
        return { reason: "held_bytes", why: this.#context.budget.heldFull() };
      case "other":
        return refuse("not_tls_or_http", `neither TLS nor HTTP/1.x: ${outcome.reason}`);
      case "malformed":
        return refuse("malformed", outcome.reason);
      case "too-long":
        return refuse("too_long", "no name in its first 32 KiB");
    }
    const sent = outcome.kind === "tls" ? outcome.name : outcome.head.host;
    if (sent === undefined) {
      const what = outcome.kind === "tls" ? "a TLS ClientHello" : "an HTTP request";
      return refuse("no_name", `${what} without a name`);
    }
    const name = normalizeHostname(sent);
    const match = name === undefined || this.#only ? undefined : this.#table.match(name);
    if (match) return { service: match.value, pattern: match.pattern };
    return refuse("unknown_name", `no service is named ${JSON.stringify(sent)}`);
  }
}

/** What sleepingd answers an HTTP client no service takes. */
function refusalAnswer(reason: UnroutedReason, method: string): Uint8Array {
  const [status, phrase, text] = reason === "malformed"
    ? [400, "Bad Request", "This request head cannot be read."]
    : reason === "too_long"
    ? [431, "Request Header Fields Too Large", "This request head is larger than 32 KiB."]
    : [421, "Misdirected Request", "No service here answers to this name."];
  return httpAnswer({ status, reason: phrase }, `${text}\n`, method);
}
