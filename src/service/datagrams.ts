/**
 * A service's UDP port: each client gets a flow, its own socket towards the
 * backend so that replies go back to it; datagrams that come while the
 * service wakes wait in order, within the service's bound; a flow ends after
 * UDP_FLOW_TIMEOUT without a datagram either way (docs/ARCHITECTURE.md,
 * "Ports and UDP").
 *
 * @module
 */

import { formatPortMapping, type PortMapping } from "../config/ports.ts";
import { log } from "../log.ts";
import { formatAddr, formatTarget, type Target, unmapped } from "../net/address.ts";
import { closeSocket, connectDatagram, OrderedSender, type UdpSocket } from "../net/datagram.ts";
import type { Service } from "./service.ts";

/** Datagrams a service may hold while it wakes, over all its flows and UDP ports. */
export const QUEUE_DATAGRAMS = 1024;
/** Bytes a service may hold while it wakes. */
export const QUEUE_BYTES = 1024 * 1024;

const logger = log("udp");

/** One client's flow: its socket towards the backend and what waits for it. */
interface Flow {
  /** The client, as a peer address. */
  client: Deno.NetAddr;
  /** The client as the listening socket replies to it. */
  address: string;
  /** Its port. */
  port: number;
  /** The socket towards the backend, once there is one. */
  socket?: UdpSocket;
  /** Sends on {@linkcode socket}, in order. */
  sender?: OrderedSender;
  /** The target the socket was made for: a new wake means a new socket. */
  target?: Target;
  /** Datagrams waiting for the backend, oldest first. */
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
  /** Bytes. */
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
    this.#replies = new OrderedSender(socket, () => service.dropped("send_failed", 1));
    this.#port = port;
    socket.on("message", (data: Uint8Array, from: { address: string; port: number }) => {
      this.#fromClient(data, from.address, from.port);
    });
    socket.on("error", (error: Error) => {
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
    const { address, port } = this.#socket.address();
    return `${formatTarget({ hostname: unmapped(address), port })}/udp`;
  }

  /** Stops listening and ends every flow. */
  close(): void {
    clearInterval(this.#sweep);
    this.#closing.abort(new Error("the UDP port closed"));
    closeSocket(this.#socket);
    for (const flow of [...this.#flows.values()]) this.#end(flow, "sleepingd stopped listening");
  }

  #fromClient(data: Uint8Array, address: string, port: number) {
    const service = this.#service;
    const key = `${address}|${port}`;
    let flow = this.#flows.get(key);
    if (!flow) {
      const client: Deno.NetAddr = { transport: "udp", hostname: unmapped(address), port };
      const refusal = service.admitFlow(client);
      if (refusal) {
        service.dropped("refused", 1);
        this.#warnRefused(client, refusal.message);
        return;
      }
      flow = {
        client,
        address,
        port,
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
    }
    flow.lastSeen = Date.now();
    const target = service.state === "awake" ? service.target : undefined;
    if (flow.socket && target !== undefined && flow.target === target && flow.queue.length === 0) {
      this.#send(flow, data);
      return;
    }
    this.#enqueue(flow, data);
    if (!flow.waiting) this.#connect(flow);
  }

  /** Keeps `data` for the backend, within the service's bound. */
  #enqueue(flow: Flow, data: Uint8Array) {
    const stats = this.#service.stats;
    const { datagrams, bytes } = this.#bound;
    if (stats.queuedDatagrams >= datagrams || stats.queuedBytes + data.length > bytes) {
      this.#service.dropped("queue_full", 1);
      logger.debug("[{service}] dropped a datagram from {peer}: the wake queue is full", {
        service: this.#service.config.name,
        peer: formatAddr(flow.client),
      });
      return;
    }
    flow.queue.push(data);
    stats.queuedDatagrams++;
    stats.queuedBytes += data.length;
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
          if (flow.socket) closeSocket(flow.socket);
          flow.socket = flow.sender = undefined;
          flow.socket = await this.#open(flow, this.#mapped(target));
          flow.sender = new OrderedSender(flow.socket, () => service.dropped("send_failed", 1));
          flow.target = target;
        }
        this.#flush(flow);
      }
    })().catch((error) => {
      const count = this.#unqueue(flow);
      if (count > 0) service.dropped("no_backend", count);
      logger.warn("[{service}] dropping {count} datagram(s) from {peer}: {reason}", {
        service: service.config.name,
        count,
        peer: formatAddr(flow.client),
        reason: (error as Error).message,
      });
    }).finally(() => flow.waiting = false);
  }

  /** A socket towards `target` whose datagrams go back to the flow's client. */
  async #open(flow: Flow, target: Target): Promise<UdpSocket> {
    const socket = await connectDatagram(target);
    socket.on("message", (data: Uint8Array) => {
      flow.lastSeen = Date.now();
      flow.datagramsOut++;
      flow.bytesOut += data.length;
      this.#service.datagramForwarded("out", data.length);
      this.#replies.send(data, flow.port, flow.address);
    });
    // A backend port that is closed answers with ICMP, which a connected socket reports here.
    socket.on("error", (error: Error) => {
      logger.debug("[{service}] flow of {peer} to {target}: {error}", {
        service: this.#service.config.name,
        peer: formatAddr(flow.client),
        target: formatTarget(target),
        error: error.message,
      });
    });
    return socket;
  }

  /** Sends every datagram that waits, in order. */
  #flush(flow: Flow) {
    const queued = flow.queue;
    flow.queue = [];
    const stats = this.#service.stats;
    for (const data of queued) {
      stats.queuedDatagrams--;
      stats.queuedBytes -= data.length;
      this.#send(flow, data);
    }
  }

  #send(flow: Flow, data: Uint8Array) {
    flow.datagramsIn++;
    flow.bytesIn += data.length;
    this.#service.datagramForwarded("in", data.length);
    flow.sender!.send(data);
  }

  /** Drops what waits in a flow; returns how many datagrams. */
  #unqueue(flow: Flow): number {
    const stats = this.#service.stats;
    for (const data of flow.queue) {
      stats.queuedDatagrams--;
      stats.queuedBytes -= data.length;
    }
    const count = flow.queue.length;
    flow.queue = [];
    return count;
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
    this.#flows.delete(`${flow.address}|${flow.port}`);
    if (flow.socket) closeSocket(flow.socket);
    const dropped = this.#unqueue(flow);
    if (dropped > 0) this.#service.dropped("no_backend", dropped);
    this.#service.flowClosed(flow.client);
    logger[this.#service.config.logConnections ? "info" : "debug"](
      "[{service}] {peer} flow to {target} ended after {seconds}s, {datagramsIn} datagrams ({bytesIn} bytes) in, {datagramsOut} ({bytesOut} bytes) out: {why}",
      {
        service: this.#service.config.name,
        peer: formatAddr(flow.client),
        target: flow.target
          ? `${formatTarget(this.#mapped(flow.target))}/udp`
          : this.#port
          ? formatPortMapping(this.#port)
          : "the backend",
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
