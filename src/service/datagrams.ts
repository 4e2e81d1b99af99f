/**
 * A service's UDP port: each client gets a flow, its own socket towards the
 * backend so that replies go back to it; datagrams that come while the
 * service wakes wait in order, within the service's bound; a flow ends after
 * UDP_FLOW_TIMEOUT without a datagram either way. Every flow counts in the
 * budget's descriptors, every datagram that waits in its held bytes
 * (docs/ARCHITECTURE.md, "Ports and UDP").
 *
 * @module
 */

import { formatPortMapping, type PortMapping } from "../config/ports.ts";
import { log } from "../log.ts";
import { formatAddr, formatTarget, type Target, unmapped } from "../net/address.ts";
import {
  closeSocket,
  datagramCost,
  isFrom,
  openFlowSocket,
  OrderedSender,
  receiveAll,
  resolveTarget,
  type SendDrop,
  type UdpSocket,
} from "../net/datagram.ts";
import type { Service } from "./service.ts";

/** Datagrams a service may hold while it wakes, over all its flows and UDP ports. */
export const QUEUE_DATAGRAMS = 1024;
/** Memory a service may keep for the datagrams of a wake, each counted by `datagramCost`. */
export const QUEUE_BYTES = 1024 * 1024;

const logger = log("udp");

/** One client's flow: its socket towards the backend and what waits for it. */
interface Flow {
  /** The client, as a peer address (IPv4 as IPv4). */
  client: Deno.NetAddr;
  /** The client as the listening socket sees it, which its replies go to. */
  from: Deno.NetAddr;
  /** Its key among the port's flows. */
  key: string;
  /** The socket towards the backend, once there is one. */
  socket?: UdpSocket;
  /** Sends on {@linkcode socket}, in order. */
  sender?: OrderedSender;
  /** The target the socket was made for: a new wake means a new socket. */
  target?: Target;
  /** Where its datagrams go: the target's address for this port, resolved. */
  backend?: Deno.NetAddr;
  /** Datagrams waiting for the backend, oldest first: copies, each counted. */
  queue: Uint8Array[];
  /** Whether a wake (or a socket) is being waited for. */
  waiting: boolean;
  /** When it last carried a datagram either way, epoch milliseconds. */
  lastSeen: number;
  /** When it began. */
  opened: number;
  /** Datagrams and bytes each way, for its log line. */
  datagramsIn: number;
  bytesIn: number;
  datagramsOut: number;
  bytesOut: number;
}

/** How many datagrams, and bytes, a service may hold while it wakes. */
export interface QueueBound {
  /** Datagrams. */
  datagrams: number;
  /** Memory, each datagram counted by `datagramCost`. */
  bytes: number;
}

/** Serves one UDP listening socket of a service until {@linkcode close}. */
export class DatagramRelay {
  readonly #service: Service;
  readonly #bound: QueueBound;
  readonly #socket: UdpSocket;
  /** Sends replies to clients, in order. */
  readonly #replies: OrderedSender;
  readonly #port?: PortMapping;
  readonly #flows = new Map<string, Flow>();
  /** Clients refused lately: one warning each per UDP_FLOW_TIMEOUT, not one per datagram. */
  readonly #refused = new Map<string, number>();
  readonly #sweep: ReturnType<typeof setInterval>;
  readonly #closing = new AbortController();

  /**
   * Serves `socket` for `service`; `port` is the MORE_PORTS entry it listens
   * for, undefined for PORT. The queue's bound is the service's, over all its UDP ports.
   */
  constructor(
    service: Service,
    socket: UdpSocket,
    port?: PortMapping,
    bound: QueueBound = { datagrams: QUEUE_DATAGRAMS, bytes: QUEUE_BYTES },
  ) {
    this.#service = service;
    this.#bound = bound;
    this.#socket = socket;
    this.#replies = new OrderedSender(socket, service.budget, this.#dropped);
    this.#port = port;
    receiveAll(socket, (data, from) => this.#fromClient(data, from), (error) => {
      logger.warn("[{service}] UDP socket {address}: {error}", {
        service: service.config.name,
        address: this.address,
        error: error.message,
      });
    });
    const sweepMs = Math.min(5_000, Math.max(250, service.config.udpFlowTimeout * 250));
    this.#sweep = setInterval(() => this.#endQuietFlows(), sweepMs);
  }

  /** The address it listens on, `0.0.0.0:53/udp`. */
  get address(): string {
    const { hostname, port } = this.#socket.addr as Deno.NetAddr;
    return `${formatTarget({ hostname: unmapped(hostname), port })}/udp`;
  }

  /** Stops listening and ends every flow. */
  close(): void {
    clearInterval(this.#sweep);
    this.#closing.abort(new Error("the UDP port closed"));
    this.#replies.close();
    closeSocket(this.#socket);
    for (const flow of [...this.#flows.values()]) this.#end(flow, "sleepingd stopped listening");
  }

  /** Counts datagrams a sender did not send, and says why at debug level when the kernel refused. */
  readonly #dropped = (why: SendDrop, count: number, error?: Error) => {
    this.#service.clients.dropped(why, count);
    if (error) {
      logger.debug("[{service}] a datagram was not sent: {error}", {
        service: this.#service.config.name,
        error: error.message,
      });
    }
  };

  /** A datagram from a client: a view of the socket's buffer, copied before it is kept. */
  #fromClient(data: Uint8Array, from: Deno.NetAddr) {
    const service = this.#service;
    const key = `${from.hostname}|${from.port}`;
    let flow = this.#flows.get(key);
    if (!flow) {
      flow = this.#begin(key, from);
      if (!flow) return;
    }
    flow.lastSeen = Date.now();
    const target = service.state === "awake" ? service.target : undefined;
    if (flow.sender && target !== undefined && flow.target === target && flow.queue.length === 0) {
      this.#forward(flow, data.slice());
      return;
    }
    this.#enqueue(flow, data);
    if (!flow.waiting) this.#connect(flow);
  }

  /**
   * A new client's flow, if ALLOW, DENY, the service's limits and the
   * budget's UDP flows let it in; otherwise its datagram is dropped and said.
   */
  #begin(key: string, from: Deno.NetAddr): Flow | undefined {
    const service = this.#service;
    const client: Deno.NetAddr = {
      transport: "udp",
      hostname: unmapped(from.hostname),
      port: from.port,
    };
    const refusal = service.clients.admitFlow(client);
    if (refusal) {
      service.clients.dropped("refused", 1);
      this.#warnRefused(client, refusal.message);
      return undefined;
    }
    if (!service.budget.acquire("udp_flow")) {
      service.clients.flowClosed(client);
      service.clients.dropped("refused", 1);
      this.#warnRefused(client, service.budget.full("udp_flow"));
      return undefined;
    }
    const flow: Flow = {
      client,
      from,
      key,
      queue: [],
      waiting: false,
      lastSeen: Date.now(),
      opened: Date.now(),
      datagramsIn: 0,
      bytesIn: 0,
      datagramsOut: 0,
      bytesOut: 0,
    };
    this.#flows.set(key, flow);
    return flow;
  }

  /**
   * Keeps a copy of `data` for the backend, within the service's bound and
   * the budget's held bytes; past them it is dropped and counted.
   */
  #enqueue(flow: Flow, data: Uint8Array) {
    const service = this.#service;
    const stats = service.stats;
    const { datagrams, bytes } = this.#bound;
    const cost = datagramCost(data.length);
    const queueFull = stats.queuedDatagrams >= datagrams || stats.queuedBytes + cost > bytes;
    if (queueFull || !service.budget.hold("udp_queued", cost)) {
      service.clients.dropped(queueFull ? "queue_full" : "held_bytes", 1);
      logger.debug("[{service}] dropped a datagram from {peer}: {reason}", {
        service: service.config.name,
        peer: formatAddr(flow.client),
        reason: queueFull ? "the wake queue is full" : service.budget.heldFull(),
      });
      return;
    }
    flow.queue.push(data.slice());
    stats.queuedDatagrams++;
    stats.queuedBytes += cost;
  }

  /** Wakes the service as needed, makes the flow's socket, then sends what waits. */
  #connect(flow: Flow) {
    flow.waiting = true;
    const service = this.#service;
    const { holdTimeout } = service.config;
    const signals = [this.#closing.signal];
    if (holdTimeout > 0) signals.push(AbortSignal.timeout(holdTimeout * 1000));
    (async () => {
      while (flow.queue.length > 0) {
        const target = await service.awakeTarget(flow.client, AbortSignal.any(signals));
        if (flow.target !== target) {
          this.#closeFlowSocket(flow);
          const backend = await resolveTarget(this.#mapped(target));
          if (this.#flows.get(flow.key) !== flow) return; // it ended meanwhile
          this.#open(flow, backend);
          flow.target = target;
        }
        this.#flush(flow);
      }
    })().catch((error) => {
      const count = this.#unqueue(flow);
      if (count > 0) service.clients.dropped("no_backend", count);
      logger.warn("[{service}] dropping {count} datagram(s) from {peer}: {reason}", {
        service: service.config.name,
        count,
        peer: formatAddr(flow.client),
        reason: (error as Error).message,
      });
    }).finally(() => flow.waiting = false);
  }

  /** The flow's socket towards `backend`, whose datagrams go back to the flow's client. */
  #open(flow: Flow, backend: Deno.NetAddr) {
    const socket = openFlowSocket(backend);
    flow.socket = socket;
    flow.backend = backend;
    flow.sender = new OrderedSender(socket, this.#service.budget, this.#dropped);
    receiveAll(socket, (data, from) => {
      // Only the backend's datagrams reach the client: the socket's port is open to anyone.
      if (!isFrom(from, backend)) return this.#service.clients.dropped("foreign", 1);
      flow.lastSeen = Date.now();
      flow.datagramsOut++;
      flow.bytesOut += data.length;
      this.#service.clients.datagramForwarded("out", data.length);
      this.#replies.send(data.slice(), flow.from);
    }, (error) => {
      logger.debug("[{service}] flow of {peer} to {target}: {error}", {
        service: this.#service.config.name,
        peer: formatAddr(flow.client),
        target: formatAddr(backend),
        error: error.message,
      });
    });
  }

  #closeFlowSocket(flow: Flow) {
    flow.sender?.close();
    if (flow.socket) closeSocket(flow.socket);
    flow.socket = flow.sender = flow.backend = undefined;
  }

  /** Sends every datagram that waits, in order. */
  #flush(flow: Flow) {
    const queued = flow.queue;
    flow.queue = [];
    for (const data of queued) {
      this.#unqueued(data);
      this.#forward(flow, data);
    }
  }

  /** Sends `data`, a copy the sender keeps, to the backend. */
  #forward(flow: Flow, data: Uint8Array) {
    flow.datagramsIn++;
    flow.bytesIn += data.length;
    this.#service.clients.datagramForwarded("in", data.length);
    flow.sender!.send(data, flow.backend!);
  }

  /** Drops what waits in a flow; returns how many datagrams. */
  #unqueue(flow: Flow): number {
    for (const data of flow.queue) this.#unqueued(data);
    const count = flow.queue.length;
    flow.queue = [];
    return count;
  }

  /** Uncounts a datagram that no longer waits for a wake. */
  #unqueued(data: Uint8Array) {
    const cost = datagramCost(data.length);
    this.#service.stats.queuedDatagrams--;
    this.#service.stats.queuedBytes -= cost;
    this.#service.budget.free("udp_queued", cost);
  }

  /** Where the backend listens for this port: PORT's target, or its MORE_PORTS mapping. */
  #mapped(target: Target): Target {
    return this.#port ? { hostname: target.hostname, port: this.#port.backend! } : target;
  }

  /** Ends the flows quiet for UDP_FLOW_TIMEOUT (not those waiting for a wake). */
  #endQuietFlows() {
    const timeoutMs = this.#service.config.udpFlowTimeout * 1000;
    const now = Date.now();
    for (const flow of [...this.#flows.values()]) {
      if (!flow.waiting && now - flow.lastSeen >= timeoutMs) {
        this.#end(flow, `quiet for UDP_FLOW_TIMEOUT (${this.#service.config.udpFlowTimeout}s)`);
      }
    }
    for (const [client, since] of this.#refused) {
      if (now - since >= timeoutMs) this.#refused.delete(client);
    }
  }

  #end(flow: Flow, why: string) {
    this.#flows.delete(flow.key);
    const target = flow.target
      ? `${formatTarget(this.#mapped(flow.target))}/udp`
      : this.#port
      ? formatPortMapping(this.#port)
      : "the backend";
    this.#closeFlowSocket(flow);
    const dropped = this.#unqueue(flow);
    if (dropped > 0) this.#service.clients.dropped("no_backend", dropped);
    this.#service.clients.flowClosed(flow.client);
    this.#service.budget.release("udp_flow");
    logger[this.#service.config.logConnections ? "info" : "debug"](
      "[{service}] {peer} flow to {target} ended after {seconds}s, {datagramsIn} datagrams ({bytesIn} bytes) in, {datagramsOut} ({bytesOut} bytes) out: {why}",
      {
        service: this.#service.config.name,
        peer: formatAddr(flow.client),
        target,
        seconds: ((Date.now() - flow.opened) / 1000).toFixed(2),
        datagramsIn: flow.datagramsIn,
        bytesIn: flow.bytesIn,
        datagramsOut: flow.datagramsOut,
        bytesOut: flow.bytesOut,
        why,
      },
    );
  }

  #warnRefused(client: Deno.NetAddr, reason: string) {
    const key = client.hostname;
    if (this.#refused.has(key)) return;
    this.#refused.set(key, Date.now());
    logger.warn("[{service}] refused datagrams from {peer}: {reason}", {
      service: this.#service.config.name,
      peer: formatAddr(client),
      reason,
    });
  }
}
