/**
 * A service's clients, let in and counted: TCP connections and UDP flows
 * through admission (ALLOW, DENY and the connection limits, which count a
 * flow as a connection), the counters they move (open, total, bytes,
 * datagrams, the last activity), the refusals and drops told to metrics, and
 * the first client told to the other instances at once (docs/ARCHITECTURE.md,
 * "Admission and holding", "Ports and UDP").
 *
 * @module
 */

import type { ServiceConfig } from "../config/types.ts";
import type { Direction } from "../net/forward.ts";
import { Admission, type Refusal, type RefusalReason } from "./admission.ts";
import type { Coordinator } from "./coordinator.ts";
import type { DropReason, Recorder } from "./recorder.ts";
import type { ServiceStats } from "./stats.ts";

/** What the clients' bookkeeping reads of its service, and whom it tells. */
export interface ClientsInputs {
  /** The configuration now in force (a reload may change it). */
  config(): ServiceConfig;
  /** The service's counters, which the clients move. */
  stats: ServiceStats;
  /** Receives refusals and drops, for metrics. */
  recorder: Recorder;
  /** The other instances, told of the first client at once. */
  coordinator: Coordinator;
}

/** Admits one service's clients and counts what they do. */
export class Clients {
  readonly #inputs: ClientsInputs;
  readonly #admission: Admission;

  /** Admits by `config` until {@linkcode reconfigure}. */
  constructor(config: ServiceConfig, inputs: ClientsInputs) {
    this.#inputs = inputs;
    this.#admission = new Admission(config);
  }

  /** Takes a reload's ALLOW, DENY and limits; the clients in keep their places. */
  reconfigure(config: ServiceConfig): void {
    this.#admission.reconfigure(config);
  }

  /**
   * Lets the client at `client` in, counting it as an open connection, or
   * says why not (ALLOW, DENY, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_SOURCE),
   * counting the refusal. Pair a client let in with {@linkcode connectionClosed}.
   */
  admit(client: Deno.NetAddr): Refusal | undefined {
    const stats = this.#inputs.stats;
    const refusal = this.#admission.admit(client, stats.openConnections + stats.kernelConnections);
    if (refusal) {
      this.refused(refusal.reason);
      return refusal;
    }
    stats.openConnections++;
    stats.totalConnections++;
    stats.lastActivity = Date.now();
    this.#sayIfFirst();
    return undefined;
  }

  /** Records that a client {@linkcode admit} let in is closed. */
  connectionClosed(client: Deno.NetAddr): void {
    this.#admission.left(client);
    this.#inputs.stats.openConnections--;
    this.#inputs.stats.lastActivity = Date.now();
  }

  /** Counts a client closed without a backend because of a limit. */
  refused(reason: RefusalReason): void {
    this.#inputs.recorder.refused(this.#inputs.config().name, reason);
  }

  /**
   * Lets a UDP client at `client` begin a flow, counting it, or says why not
   * (ALLOW, DENY, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_SOURCE, which count
   * flows as connections). Pair a flow let in with {@linkcode flowClosed}.
   */
  admitFlow(client: Deno.NetAddr): Refusal | undefined {
    const stats = this.#inputs.stats;
    const refusal = this.#admission.admit(client, stats.openConnections + stats.openFlows);
    if (refusal) return refusal;
    stats.openFlows++;
    stats.totalFlows++;
    this.#sayIfFirst();
    return undefined;
  }

  /** Records that a flow {@linkcode admitFlow} let in has ended. */
  flowClosed(client: Deno.NetAddr): void {
    this.#admission.left(client);
    this.#inputs.stats.openFlows--;
  }

  /** Records a datagram forwarded in either direction: it is activity. */
  datagramForwarded(direction: Direction, bytes: number): void {
    if (direction === "in") this.#inputs.stats.datagramsIn++;
    else this.#inputs.stats.datagramsOut++;
    this.bytesForwarded(direction, bytes);
  }

  /** Counts datagrams dropped. */
  dropped(reason: DropReason, count: number): void {
    this.#inputs.recorder.dropped(this.#inputs.config().name, reason, count);
  }

  /** Records bytes forwarded in either direction: they are activity. */
  bytesForwarded(direction: Direction, bytes: number): void {
    const stats = this.#inputs.stats;
    if (direction === "in") stats.bytesIn += bytes;
    else stats.bytesOut += bytes;
    stats.lastActivity = Date.now();
  }

  /**
   * Tells the other instances at once when the first client comes: an idle
   * stop may be under way elsewhere, asking whether this instance is busy.
   */
  #sayIfFirst() {
    const { openConnections, openFlows } = this.#inputs.stats;
    if (openConnections + openFlows === 1) {
      this.#inputs.coordinator.firstClient(this.#inputs.config().name);
    }
  }
}
