/**
 * Listening and accepting for a supervisor's services: each service's TCP
 * listeners (each with its accept loop) and UDP sockets (each with its
 * relay), PORT's and MORE_PORTS', opened, served and closed again
 * (docs/ARCHITECTURE.md, "Ports and UDP", "Reload and shutdown"). A port
 * routed by name is not among them: `shared_ports.ts` listens there.
 *
 * @module
 */

import type { ServiceConfig } from "../config/types.ts";
import { formatPortMapping, listenPorts, type PortMapping } from "../config/ports.ts";
import { log } from "../log.ts";
import { acceptConnections } from "../net/accept.ts";
import { formatAddr } from "../net/address.ts";
import { formatBytes } from "../net/budget.ts";
import { closeQuietly } from "../net/conn.ts";
import { bindAll, closeSocket, type UdpSocket } from "../net/datagram.ts";
import { listenAll, listenAllWhenFreed } from "../net/listen.ts";
import { enlargeReceiveBuffers } from "../process/socket_buffer.ts";
import { DatagramRelay } from "./datagrams.ts";
import { routedByName } from "./name_router.ts";
import type { ReloadPlan } from "./reload_plan.ts";
import type { Service } from "./service.ts";

/**
 * The kernel receive buffer asked for each UDP port (the kernel doubles it):
 * 20 ms of 1400-byte datagrams at 500 Mbit/s, for the pauses of a busy machine.
 */
const UDP_RECEIVE_BUFFER = 1024 * 1024;

/** What a service listens on: TCP listeners and UDP sockets, each with its MORE_PORTS entry. */
export interface Opened {
  /** The TCP listeners. */
  tcp: { listener: Deno.TcpListener; port?: PortMapping }[];
  /** The UDP sockets. */
  udp: { socket: UdpSocket; port?: PortMapping }[];
}

/** Takes each accepted TCP connection of a service; `port` is its MORE_PORTS entry, if any. */
export type Accept = (service: Service, client: Deno.TcpConn, port?: PortMapping) => void;

/** The listeners and UDP sockets of a supervisor's services. */
export class Listening {
  readonly #accept: Accept;
  readonly #listeners = new Map<Service, Deno.TcpListener[]>();
  /** Each service's UDP ports. */
  readonly #relays = new Map<Service, DatagramRelay[]>();
  /** Each listener's accept loop, which ends once the listener is closed. */
  readonly #accepting = new Map<Deno.TcpListener, Promise<void>>();
  readonly #log = log("supervisor");

  /** Hands each accepted connection to `accept`. */
  constructor(accept: Accept) {
    this.#accept = accept;
  }

  /** Serves what {@linkcode listenFor} opened for `service`. */
  serveAll(service: Service, opened: Opened): void {
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
   * PORT.
   */
  serve(service: Service, listener: Deno.TcpListener, port?: PortMapping): void {
    this.#listeners.set(service, [...(this.#listeners.get(service) ?? []), listener]);
    const name = service.config.name;
    this.#log.info("[{service}] listening on {address}{mapping}", {
      service: name,
      address: formatAddr(listener.addr),
      mapping: port ? ` (MORE_PORTS ${formatPortMapping(port)})` : "",
    });
    const loop = acceptConnections(listener, name, (client) => this.#accept(service, client, port))
      .finally(() => this.#accepting.delete(listener));
    this.#accepting.set(listener, loop);
  }

  /**
   * Closes a service's listeners and UDP sockets. The port is free again
   * only once their accept loops have ended: the returned promise says when.
   */
  stop(service: Service): Promise<unknown> {
    for (const relay of this.#relays.get(service) ?? []) relay.close();
    this.#relays.delete(service);
    const listeners = this.#listeners.get(service) ?? [];
    this.#listeners.delete(service);
    listeners.forEach(closeQuietly);
    return Promise.all(listeners.map((listener) => this.#accepting.get(listener)));
  }

  /** Closes every listener and UDP socket, for the shutdown. */
  closeAll(): void {
    for (const listeners of this.#listeners.values()) listeners.forEach(closeQuietly);
    for (const relays of this.#relays.values()) relays.forEach((relay) => relay.close());
    this.#relays.clear();
  }
}

/**
 * Opens a service's listeners and UDP sockets: PORT's, then MORE_PORTS'.
 * `freed`: a reload has just closed the listeners that held its TCP ports,
 * which may stay busy a moment.
 *
 * @throws {Error} naming the file:line of PORT (or MORE_PORTS), the address
 * and the reason; what was opened before the failure is closed again
 */
export async function listenFor(config: ServiceConfig, freed = false): Promise<Opened> {
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

/** Closes what {@linkcode listenFor} opened, when it is not to be served after all. */
export function closeOpened(opened: Opened): void {
  for (const { listener } of opened.tcp) closeQuietly(listener);
  for (const { socket } of opened.udp) closeSocket(socket);
}

/**
 * The TCP ports the services' own listeners give up in a reload: those of
 * removed services and of services that move (PORT only when it was their own).
 */
export function releasedPorts(plan: ReloadPlan, old: Map<string, Service>): Set<number> {
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
