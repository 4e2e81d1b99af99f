/**
 * The services a reload removed, draining: their connections get up to
 * SHUTDOWN_GRACE to finish, then the service closes (STOP_CMD for an awake
 * backend). A service added with the name or the commands of one still
 * draining wakes only after that drain, whose STOP_CMD would stop what it
 * woke (docs/ARCHITECTURE.md, "Reload and shutdown").
 *
 * @module
 */

import type { Connections } from "./connections.ts";
import { sameCommands } from "./reload_plan.ts";
import type { Service } from "./service.ts";

/** The drains of removed services under way. */
export class Drains {
  readonly #connections: Connections;
  readonly #grace: () => number;
  /** Removed services finishing their connections and stopping their backend. */
  readonly #drains = new Map<Service, Promise<void>>();

  /** Drains the services' `connections` within `grace()` seconds (SHUTDOWN_GRACE). */
  constructor(connections: Connections, grace: () => number) {
    this.#connections = connections;
    this.#grace = grace;
  }

  /** Every drain under way, each resolved once its service is closed. */
  all(): Promise<void>[] {
    return [...this.#drains.values()];
  }

  /** Begins draining `service`, which a reload removed (it no longer listens). */
  start(service: Service): void {
    const drain = this.#drain(service).finally(() => this.#drains.delete(service));
    this.#drains.set(service, drain);
  }

  /**
   * Makes an added service's wakes wait for the drains of removed services
   * with its name or its commands: their STOP_CMD would stop the backend it
   * wakes (a section removed, then added back while it drained).
   */
  wakeAfterDrains(added: Service): void {
    const { name } = added.config;
    const same = [...this.#drains].filter(([removed]) =>
      removed.config.name === name || sameCommands(removed.config, added.config)
    );
    if (same.length === 0) return;
    const what = same.map(([removed]) => `the removed [${removed.config.name}]`).join(", ");
    added.wakeAfter(Promise.all(same.map(([, drain]) => drain)).then(() => {}), what);
  }

  /** Lets a removed service's connections finish (up to SHUTDOWN_GRACE), then stops its backend. */
  async #drain(service: Service) {
    const name = service.config.name;
    await this.#connections.finish(
      this.#connections.of(service),
      `[${name}] removed:`,
      this.#grace(),
      () => service.cancelWakes("removed"),
    );
    await service.close("removed");
  }
}
