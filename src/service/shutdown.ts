/**
 * Shutting a supervisor's services down, in order: stop accepting (and the
 * kernel forwarding), let the open connections finish for SHUTDOWN_GRACE,
 * cancel the wakes still under way and close what is left, then close every
 * service, those that others need (DEPENDS_ON) after those others, so that
 * stops run in the reverse order of wakes (docs/ARCHITECTURE.md, "Reload and
 * shutdown").
 *
 * @module
 */

import type { Connections } from "./connections.ts";
import type { Drains } from "./drains.ts";
import type { Listening } from "./listening.ts";
import type { Service } from "./service.ts";
import type { SharedPorts } from "./shared_ports.ts";

/** What a shutdown closes. */
export interface ShutdownParts {
  /** The services, in configuration order. */
  services: readonly Service[];
  /** Their listeners and UDP sockets. */
  listening: Listening;
  /** The ports routed by name. */
  shared: SharedPorts;
  /** The connections open. */
  connections: Connections;
  /** The drains of services an earlier reload removed. */
  drains: Drains;
  /** SHUTDOWN_GRACE, in seconds. */
  grace: number;
}

/**
 * Stops accepting, lets open connections finish for up to SHUTDOWN_GRACE
 * seconds, closes what is left, then stops every awake backend with its
 * STOP_CMD; resolves once the drains under way have ended too.
 */
export async function shutDown(parts: ShutdownParts): Promise<void> {
  const { services, listening, connections } = parts;
  for (const service of services) service.stopForwarding();
  const sharedClosed = parts.shared.close();
  listening.closeAll();
  await connections.finish(connections.all(), "shutting down:", parts.grace, () => {
    for (const service of services) service.cancelWakes("shutdown");
  });
  await closeInOrder(services);
  await Promise.all([
    sharedClosed,
    ...parts.drains.all(),
    ...connections.all().map((entry) => entry.done),
  ]);
}

/**
 * Closes every service for the shutdown, those that others need (DEPENDS_ON)
 * after those others: stops run in the reverse order of wakes.
 */
async function closeInOrder(services: readonly Service[]) {
  const left = new Set(services);
  while (left.size > 0) {
    const needed = (service: Service) =>
      [...left].some((other) => other.config.dependsOn.includes(service.config.name));
    const free = [...left].filter((service) => !needed(service));
    // Validation refuses cycles; should one come anyway, the rest closes together.
    const closing = free.length > 0 ? free : [...left];
    for (const service of closing) left.delete(service);
    await Promise.all(closing.map((service) => service.close("shutdown")));
  }
}
