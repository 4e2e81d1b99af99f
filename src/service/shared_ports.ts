/**
 * The ports routed by name of a supervisor: their listeners, their routers,
 * and how a reload changes them (docs/ARCHITECTURE.md, "Ports shared by
 * name"). A port that stays (same addresses and port) keeps its listeners
 * and routes the new services at once; a new one opens before the swap when
 * its port is free, after it when an old listener that closes in the swap
 * holds it; one that goes closes in the swap.
 *
 * @module
 */

import type { ServiceConfig } from "../config/types.ts";
import { log } from "../log.ts";
import { acceptConnections } from "../net/accept.ts";
import { closeQuietly } from "../net/conn.ts";
import { listenAll, listenAllWhenFreed } from "../net/listen.ts";
import {
  NameRouter,
  type PortGroup,
  portGroups,
  RouteCounts,
  type RouterContext,
} from "./name_router.ts";
import type { Service } from "./service.ts";

/** A port routed by name that listens. */
interface OpenPort {
  group: PortGroup;
  router: NameRouter;
  listeners: Deno.TcpListener[];
  /** Each listener's accept loop, which ends once the listener is closed. */
  accepting: Promise<void>[];
}

/** The groups of a reload, once {@linkcode SharedPorts.prepare} opened what it could. */
export interface PreparedPorts {
  /** The new configuration's groups. */
  groups: PortGroup[];
  /** New groups opened before the swap. */
  opened: Map<string, Deno.TcpListener[]>;
  /** New groups that open after the swap, once the old listeners have closed. */
  after: PortGroup[];
}

/** Every port routed by name, with its listeners and router. */
export class SharedPorts {
  /** Routed and unrouted connections, by port: kept across reloads. */
  readonly counts = new RouteCounts();
  readonly #context: Omit<RouterContext, "counts">;
  readonly #ports = new Map<string, OpenPort>();
  readonly #log = log("supervisor");

  /** Creates none; {@linkcode listen} opens them. */
  constructor(context: Omit<RouterContext, "counts">) {
    this.#context = context;
  }

  /** The routers, one per port, in the order they opened. */
  get routers(): NameRouter[] {
    return [...this.#ports.values()].map((port) => port.router);
  }

  /** Connections being read now on every port, before a service took them. */
  get reading(): number {
    return this.counts.reading;
  }

  /**
   * Opens the ports routed by name of `configs` and routes them to `services`.
   *
   * @throws {Error} naming the first service's file:line, the address and the
   * reason when one cannot listen; what was opened is closed again
   */
  async listen(configs: readonly ServiceConfig[], services: readonly Service[]): Promise<void> {
    const groups = portGroups(configs);
    const opened = new Map<string, Deno.TcpListener[]>();
    try {
      for (const group of groups) opened.set(group.key, await openGroup(group, configs));
    } catch (error) {
      for (const listeners of opened.values()) listeners.forEach(closeQuietly);
      throw error;
    }
    for (const group of groups) this.#serve(group, opened.get(group.key)!, services);
  }

  /**
   * A reload, before the swap: opens the new configuration's ports that are
   * new and free, that is whose port number neither `released` (the ports
   * the services' own listeners give up in the swap) nor a port that goes
   * holds.
   *
   * @throws {Error} when one cannot listen; nothing is changed then
   */
  async prepare(
    configs: readonly ServiceConfig[],
    released: ReadonlySet<number>,
  ): Promise<PreparedPorts> {
    const groups = portGroups(configs);
    const keys = new Set(groups.map((group) => group.key));
    const going = [...this.#ports.values()].filter(({ group }) => !keys.has(group.key));
    const held = new Set([...released, ...going.map(({ group }) => group.port)]);
    const prepared: PreparedPorts = { groups, opened: new Map(), after: [] };
    try {
      for (const group of groups) {
        if (this.#ports.has(group.key)) continue;
        if (held.has(group.port)) prepared.after.push(group);
        else prepared.opened.set(group.key, await openGroup(group, configs));
      }
    } catch (error) {
      for (const listeners of prepared.opened.values()) listeners.forEach(closeQuietly);
      throw error;
    }
    return prepared;
  }

  /**
   * A reload, in the swap: the ports that stay route `services`, those opened
   * before begin, those that go close.
   *
   * @returns when the ports that go have closed (their accept loops ended)
   */
  swap(prepared: PreparedPorts, services: readonly Service[]): Promise<unknown> {
    const keys = new Set(prepared.groups.map((group) => group.key));
    const closing: Promise<unknown>[] = [];
    for (const [key, port] of this.#ports) {
      if (keys.has(key)) continue;
      this.#ports.delete(key);
      closing.push(this.#closePort(port));
    }
    for (const group of prepared.groups) {
      const port = this.#ports.get(group.key);
      if (port) {
        port.group = group;
        port.router.setServices(pick(group, services));
      }
    }
    for (const [key, listeners] of prepared.opened) {
      this.#serve(prepared.groups.find((group) => group.key === key)!, listeners, services);
    }
    return Promise.all(closing);
  }

  /**
   * A reload, after the old listeners closed: opens the ports that waited
   * for them; one that cannot listen is logged (the rest of the reload stands).
   */
  async listenAfter(
    prepared: PreparedPorts,
    configs: readonly ServiceConfig[],
    services: readonly Service[],
  ): Promise<void> {
    for (const group of prepared.after) {
      try {
        this.#serve(group, await openGroup(group, configs, true), services);
      } catch (error) {
        this.#log.error("{error}", { error: (error as Error).message });
      }
    }
  }

  /** Closes every port (and the connections still being read); resolves when their loops end. */
  close(): Promise<unknown> {
    const closing = [...this.#ports.values()].map((port) => this.#closePort(port));
    this.#ports.clear();
    return Promise.all(closing);
  }

  #serve(group: PortGroup, listeners: Deno.TcpListener[], services: readonly Service[]) {
    const router = new NameRouter(group, { ...this.#context, counts: this.counts });
    const routed = pick(group, services);
    router.setServices(routed);
    const accepting = listeners.map((listener) =>
      acceptConnections(listener, router.listen, (client) => router.take(client))
    );
    this.#ports.set(group.key, { group, router, listeners, accepting });
    this.#log.info("[{services}] listening on {listen}, {how}", {
      services: group.services.join(", "),
      listen: router.listen,
      how: routed.some((service) => service.config.hostnames)
        ? "routed by name (TLS SNI, HTTP Host)"
        : "reading each request head (WAITING_PAGE)",
    });
  }

  #closePort(port: OpenPort): Promise<unknown> {
    port.listeners.forEach(closeQuietly);
    port.router.close();
    return Promise.all(port.accepting);
  }
}

/** The services of `group`, in its order. */
function pick(group: PortGroup, services: readonly Service[]): Service[] {
  return group.services.flatMap((name) => services.filter((one) => one.config.name === name));
}

/**
 * Opens a group's listeners; `freed`: on a port whose listener a reload has
 * just closed, which may stay busy a moment.
 *
 * @throws {Error} naming its first service's file:line, the address and the reason
 */
async function openGroup(
  group: PortGroup,
  configs: readonly ServiceConfig[],
  freed = false,
): Promise<Deno.TcpListener[]> {
  try {
    return freed
      ? await listenAllWhenFreed(group.addresses, group.port)
      : listenAll(group.addresses, group.port);
  } catch (error) {
    const first = configs.find((config) => config.name === group.services[0])!;
    const at = first.portSource ?? first.source;
    const where = `${at.file}:${at.line}`;
    throw new Error(`${where}: [${group.services.join(", ")}] ${(error as Error).message}`);
  }
}
