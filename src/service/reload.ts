/**
 * Applying a reload to running services: what `reload_plan.ts` decided, done
 * in order. New listeners open before the swap when their port is free (a
 * failure then changes nothing); removed services stop listening and drain;
 * changed ones take the new settings in place, a rename keeps its service;
 * added ones begin; then the listeners that waited for a port the swap freed
 * open (docs/ARCHITECTURE.md, "Reload and shutdown").
 *
 * @module
 */

import type { Config, ServiceConfig } from "../config/types.ts";
import { log } from "../log.ts";
import type { Drains } from "./drains.ts";
import { closeOpened, listenFor, type Listening, type Opened, releasedPorts } from "./listening.ts";
import { planReload, type ReloadSummary } from "./reload_plan.ts";
import type { Service } from "./service.ts";
import type { PreparedPorts, SharedPorts } from "./shared_ports.ts";

/** The running services a reload changes, and how it changes them. */
export interface Running {
  /** The services now, in configuration order. */
  services: readonly Service[];
  /** Their listeners and UDP sockets. */
  listening: Listening;
  /** The ports routed by name. */
  shared: SharedPorts;
  /** The drains of removed services. */
  drains: Drains;
  /** Makes the service of an added section, ready to wake. */
  add(config: ServiceConfig): Service;
  /** Takes the new configuration and services in (and plans the budget anew). */
  swap(config: Config, services: Service[]): void;
}

/**
 * Switches `running` to a new, already validated configuration. Services
 * whose settings are unchanged keep their state and connections; changed ones
 * take the new settings in place (and new listeners if their address
 * changed); removed ones stop accepting, drain their connections and stop
 * their backend; added ones start listening.
 *
 * @throws {Error} when a new listener cannot be opened; nothing is changed then
 */
export async function applyReload(running: Running, config: Config): Promise<ReloadSummary> {
  const { listening, shared, drains } = running;
  const plan = planReload(running.services.map((service) => service.config), config.services);
  const old = new Map(running.services.map((service) => [service.config.name, service]));
  // A renamed service goes on under its new name: its state, backend and connections.
  for (const { from, to } of plan.renamed) old.set(to, old.get(from)!);
  const fresh = new Map(config.services.map((service) => [service.name, service]));
  const opened = new Map<string, Opened>();
  let prepared: PreparedPorts;
  try {
    for (const name of plan.listenBefore) opened.set(name, await listenFor(fresh.get(name)!));
    prepared = await shared.prepare(config.services, releasedPorts(plan, old));
  } catch (error) {
    for (const ports of opened.values()) closeOpened(ports);
    throw error;
  }

  const released = plan.relisten.map((name) => listening.stop(old.get(name)!));
  for (const name of plan.removed) {
    const service = old.get(name)!;
    service.stopForwarding();
    released.push(listening.stop(service));
    drains.start(service);
  }
  const services = config.services.map((next) => {
    const service = old.get(next.name);
    if (service === undefined) return running.add(next);
    if (plan.changed.includes(next.name)) service.reconfigure(next);
    return service;
  });
  running.swap(config, services);
  const byName = new Map(services.map((service) => [service.config.name, service]));
  for (const [name, ports] of opened) listening.serveAll(byName.get(name)!, ports);
  released.push(shared.swap(prepared, services));
  await Promise.all(released);
  await shared.listenAfter(prepared, config.services, services);
  for (const name of plan.listenAfter) {
    const service = byName.get(name)!;
    try {
      listening.serveAll(service, await listenFor(service.config, true));
    } catch (error) {
      log("supervisor").error("{error}", { error: (error as Error).message });
    }
  }
  const { added, removed, changed, unchanged, renamed } = plan;
  return { added, removed, changed, unchanged, renamed };
}
