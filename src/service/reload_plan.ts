/**
 * What a reload does to each service, decided from the old and the new
 * settings alone: a pure function, so every case is tested without sockets.
 *
 * @module
 */

import { listenPorts, type PortMapping } from "../config/ports.ts";
import type { ServiceConfig } from "../config/types.ts";
import { routedByName } from "./name_router.ts";

/** What a reload did, by service name. */
export interface ReloadSummary {
  /** New services, now listening. */
  added: string[];
  /** Services gone from the configuration, now draining. */
  removed: string[];
  /** Services whose settings changed, kept with their state. */
  changed: string[];
  /** Services left as they were. */
  unchanged: string[];
  /**
   * Services renamed: a removed section and an added one with the same
   * commands, which goes on as the old one did (state, backend,
   * connections); the new name is also among `changed`.
   */
  renamed: { from: string; to: string }[];
}

/** A reload's plan: the summary, and when each new listener opens. */
export interface ReloadPlan extends ReloadSummary {
  /**
   * Services whose new listeners open before anything changes, so that a
   * failure (a port in use) leaves the old configuration untouched.
   */
  listenBefore: string[];
  /**
   * Services whose new listeners open after the swap, once the old listener
   * holding their port (of a removed service, or of one that moves) has closed.
   */
  listenAfter: string[];
  /** Changed services whose old listeners close: their port or addresses changed. */
  relisten: string[];
}

/**
 * Plans a reload from the settings of the services running now (`current`)
 * to those of the new configuration (`next`), matching services by name.
 * A service whose listen address and port are unchanged keeps its listeners.
 */
export function planReload(current: ServiceConfig[], next: ServiceConfig[]): ReloadPlan {
  const old = new Map(current.map((service) => [service.name, service]));
  const fresh = new Map(next.map((service) => [service.name, service]));
  const plan: ReloadPlan = {
    added: [],
    removed: [],
    changed: [],
    unchanged: [],
    renamed: [],
    listenBefore: [],
    listenAfter: [],
    relisten: [],
  };
  // Each new service's predecessor: the old one of its name, or the one it renames.
  const leaving = current.filter((service) => !fresh.has(service.name));
  for (const service of next) {
    if (old.has(service.name)) continue;
    const from = leaving.find((gone) => isRename(gone, service));
    if (from === undefined) continue;
    leaving.splice(leaving.indexOf(from), 1);
    old.set(service.name, from);
    plan.renamed.push({ from: from.name, to: service.name });
  }
  plan.removed = leaving.map(({ name }) => name);
  const successor = new Map(
    [...old].filter(([name]) => fresh.has(name)).map((
      [name, before],
    ) => [before, fresh.get(name)!]),
  );
  /** Old listeners that close in the swap: of removed services and of services that move. */
  const closing = current.filter((service) => {
    const after = successor.get(service);
    return after === undefined || !sameListen(service, after);
  });
  for (const service of next) {
    const before = old.get(service.name);
    if (before === undefined) plan.added.push(service.name);
    else if (sameConfig(before, service)) plan.unchanged.push(service.name);
    else plan.changed.push(service.name);
    if (before !== undefined && sameListen(before, service)) continue;
    if (before !== undefined) plan.relisten.push(service.name);
    const ports = listenPorts(service).map(portKey);
    const held = closing.some((old) =>
      listenPorts(old).some((port) => ports.includes(portKey(port)))
    );
    (held ? plan.listenAfter : plan.listenBefore).push(service.name);
  }
  return plan;
}

/**
 * Whether two services run the same commands as the same user: they wake and
 * stop the same backend, unless their commands tell them apart by the
 * variables that differ (`SLEEPINGD_SERVICE`, `SLEEPINGD_PORT`).
 */
export function sameCommands(a: ServiceConfig, b: ServiceConfig): boolean {
  const text = (config: ServiceConfig) =>
    JSON.stringify([config.checkCmd?.text, config.startCmd?.text, config.stopCmd?.text]);
  return text(a) === text(b) && a.user === b.user;
}

/**
 * Whether `added` is `removed` under a new name: the same commands, which do
 * not read the name (nor the port, when it changed), so the same backend.
 */
function isRename(removed: ServiceConfig, added: ServiceConfig): boolean {
  if (!sameCommands(removed, added)) return false;
  const commands = [added.checkCmd, added.startCmd, added.stopCmd].map((spec) => spec?.text ?? "");
  const reads = (variable: string) => commands.some((text) => text.includes(variable));
  return !reads("SLEEPINGD_SERVICE") && (removed.port === added.port || !reads("SLEEPINGD_PORT"));
}

/** Whether two settings of a service are the same, wherever in the files they were written. */
function sameConfig(a: ServiceConfig, b: ServiceConfig): boolean {
  // Where a setting was written (`source`, `portSource`, ...) is no setting: lines may move.
  const withoutSources = (key: string, value: unknown) =>
    /^source$|Source$/.test(key) ? undefined : value;
  return JSON.stringify(a, withoutSources) === JSON.stringify(b, withoutSources);
}

/**
 * Whether two settings listen on the same ports (each mapped alike) and
 * addresses, their PORT alike routed by name or not.
 */
function sameListen(a: ServiceConfig, b: ServiceConfig): boolean {
  const ports = (config: ServiceConfig) => JSON.stringify(listenPorts(config));
  return ports(a) === ports(b) && a.listenAddresses.join(" ") === b.listenAddresses.join(" ") &&
    routedByName(a) === routedByName(b);
}

/** `8080/tcp`: what two services may not both listen on. */
function portKey(port: PortMapping): string {
  return `${port.listen}/${port.protocol}`;
}
