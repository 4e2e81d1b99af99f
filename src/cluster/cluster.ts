/**
 * Several sleepingd instances in front of the same backends, coordinated
 * through etcd (docs/ARCHITECTURE.md, "Several instances"). Under
 * `/sleepingd/CLUSTER_NAME/`:
 *
 * - `instances/ID`: each instance, under its lease (5 s, renewed every second);
 * - `services/NAME/lock`: the instance running START_CMD or STOP_CMD, under its lease;
 * - `services/NAME/state`: `awake` (and the target) or `asleep`, as the last one left it;
 * - `services/NAME/busy/ID`: each instance's open connections and last activity, under its lease.
 *
 * A crashed instance's keys go with its lease. When etcd cannot be reached,
 * a wake goes on alone (logged) and no backend is stopped on a guess.
 *
 * @module
 */

import { log } from "../log.ts";
import { parseTarget, type Target } from "../net/address.ts";
import type { Coordinator, WakeClaim } from "../service/coordinator.ts";
import type { StopReason } from "../service/recorder.ts";
import type { Service } from "../service/service.ts";
import { sleep } from "../timers.ts";
import { Etcd } from "./etcd.ts";

/** Seconds an instance's lease lasts without renewal: how soon a crashed instance is forgotten. */
const LEASE_TTL = 5;
/** Milliseconds between renewals, publications of what each service does, and reads of the others. */
const TICK_MS = 1_000;
/** Milliseconds between two looks at a lock another instance holds. */
const LOCK_POLL_MS = 200;

/** A service's state as the instances share it. */
interface SharedState {
  state: "awake" | "asleep";
  /** `IP PORT`, as START_CMD prints it. */
  target?: string;
  by: string;
  at: number;
}

/** What an instance publishes of one service. */
interface Busy {
  open: number;
  lastActivity: number;
}

/** Another instance, as `status` shows it. */
export interface InstanceInfo {
  /** `host:pid`. */
  id: string;
  /** ISO time it joined. */
  since: string;
}

/** This instance's membership of a cluster, and the coordinator its services use. */
export class Cluster implements Coordinator {
  /** This instance: `host:pid`. */
  readonly id = `${Deno.hostname()}:${Deno.pid}`;
  readonly #etcd: Etcd;
  readonly #prefix: string;
  readonly #services: () => readonly Service[];
  #lease?: string;
  #instances: InstanceInfo[] = [];
  /** The services whose lock this instance holds. */
  readonly #locks = new Set<string>();
  #reachable = true;
  /** The renewal (or grant) of the lease under way. */
  #renewing?: Promise<string>;
  /** A tick is under way (etcd may take up to its time-out to answer). */
  #ticking = false;
  #timer?: ReturnType<typeof setInterval>;
  readonly #since = new Date().toISOString();
  readonly #log = log("cluster");

  /** Joins cluster `name` at `endpoints`; `services` are this instance's, to publish. */
  constructor(endpoints: string[], name: string, services: () => readonly Service[]) {
    this.#etcd = new Etcd(endpoints);
    this.#prefix = `/sleepingd/${name}/`;
    this.#services = services;
  }

  /** The instances of the cluster, this one first, as last read. */
  get instances(): InstanceInfo[] {
    return this.#instances;
  }

  /** Joins (or says loudly that etcd cannot be reached, and keeps trying) and starts publishing. */
  async start(): Promise<void> {
    await this.#tick();
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
  }

  /** Leaves: the lease goes, and with it this instance's keys. */
  async leave(): Promise<void> {
    clearInterval(this.#timer);
    if (this.#lease) await this.#etcd.revoke(this.#lease).catch(() => {});
  }

  async claimWake(service: string, signal: AbortSignal): Promise<WakeClaim> {
    while (true) {
      try {
        const lease = await this.#ensureLease();
        const shared = await this.#state(service);
        if (shared?.state === "awake" && shared.target && shared.by !== this.id) {
          return { target: parseTarget(shared.target), by: shared.by };
        }
        if (await this.#etcd.createIfAbsent(this.#key(service, "lock"), this.id, lease)) {
          this.#locks.add(service);
          return { run: true };
        }
      } catch (error) {
        this.#unreachable(`waking [${service}] alone`, error, true);
        return { run: true };
      }
      await sleep(LOCK_POLL_MS, signal);
    }
  }

  wakeEnded(service: string, target: Target | undefined): void {
    const publish = target
      ? this.#setState(service, { state: "awake", target: `${target.hostname} ${target.port}` })
      : Promise.resolve();
    publish.then(() => this.#unlock(service)).catch((error) =>
      this.#unreachable(`[${service}] is awake, unsaid`, error)
    );
  }

  async othersBusy(service: string, idleTime: number): Promise<string | undefined> {
    let entries;
    try {
      entries = await this.#etcd.range(this.#key(service, "busy/"));
    } catch (error) {
      this.#unreachable(`[${service}] not stopped`, error);
      return "etcd cannot be reached: no stop on a guess";
    }
    for (const { key, value } of entries) {
      const instance = key.slice(key.lastIndexOf("/") + 1);
      if (instance === this.id) continue;
      const busy = JSON.parse(value) as Busy;
      if (busy.open > 0) {
        return `instance ${instance} has ${busy.open} open connection${busy.open === 1 ? "" : "s"}`;
      }
      const ago = (Date.now() - busy.lastActivity) / 1000;
      if (ago < idleTime) return `instance ${instance} was active ${ago.toFixed(1)}s ago`;
    }
    return undefined;
  }

  async claimStop(service: string, reason: StopReason): Promise<string | undefined> {
    try {
      const lease = await this.#ensureLease();
      if (reason === "shutdown" || reason === "removed") {
        const others = (await this.#etcd.range(`${this.#prefix}instances/`))
          .filter(({ key }) => !key.endsWith(`/${this.id}`));
        if (others.length > 0) return "other instances go on: they stop it once it is idle";
      }
      if (!(await this.#etcd.createIfAbsent(this.#key(service, "lock"), this.id, lease))) {
        const holder = await this.#etcd.get(this.#key(service, "lock"));
        return `instance ${holder} is waking or stopping it`;
      }
      this.#locks.add(service);
      // Another instance may have stopped it since this one last looked: follow, stop nothing.
      const shared = await this.#state(service);
      const local = this.#services().find((one) => one.config.name === service);
      if (shared?.state === "asleep" && shared.by !== this.id && local) {
        if (shared.at > local.stateSince) {
          await this.#unlock(service);
          local.stoppedElsewhere(shared.by);
          return `stopped by ${shared.by} already`;
        }
      }
      return undefined;
    } catch (error) {
      this.#unreachable(`[${service}] not stopped`, error);
      return "etcd cannot be reached: no stop on a guess";
    }
  }

  stopEnded(service: string, stopped: boolean): void {
    if (!this.#locks.has(service)) return;
    const publish = stopped ? this.#setState(service, { state: "asleep" }) : Promise.resolve();
    publish.then(() => this.#unlock(service)).catch((error) =>
      this.#unreachable(`[${service}] is asleep, unsaid`, error)
    );
  }

  /**
   * Renews the lease, publishes what each service does, reads the others,
   * follows wakes and stops; skipped while the last one still waits on etcd.
   */
  async #tick() {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      const lease = await this.#ensureLease();
      const instance = JSON.stringify({ since: this.#since });
      await this.#etcd.put(`${this.#prefix}instances/${this.id}`, instance, lease);
      for (const service of this.#services()) {
        const { openConnections, openFlows, kernelConnections, lastActivity } = service.stats;
        const busy: Busy = { open: openConnections + openFlows + kernelConnections, lastActivity };
        await this.#etcd.put(
          this.#key(service.config.name, `busy/${this.id}`),
          JSON.stringify(busy),
          lease,
        );
        await this.#follow(service);
      }
      const members = await this.#etcd.range(`${this.#prefix}instances/`);
      const others = members.map(({ key, value }) => ({
        id: key.slice(key.lastIndexOf("/") + 1),
        since: (JSON.parse(value) as { since: string }).since,
      })).filter((member) => member.id !== this.id);
      this.#instances = [{ id: this.id, since: this.#since }, ...others];
      if (!this.#reachable) this.#log.info("etcd answers again: the instances coordinate again");
      this.#reachable = true;
    } catch (error) {
      this.#unreachable(
        "the instances do not coordinate: wakes go on alone, no backend is stopped until it answers",
        error,
      );
    } finally {
      this.#ticking = false;
    }
  }

  /**
   * Follows what another instance did to a service's backend: woken there,
   * it is awake here too (so that this instance's idle checks see to its stop,
   * should that one go); stopped there, it is asleep here.
   */
  async #follow(service: Service) {
    if (service.state !== "awake" && service.state !== "asleep") return;
    const shared = await this.#state(service.config.name);
    if (!shared || shared.by === this.id || shared.at <= service.stateSince) return;
    if (shared.state === "asleep" && service.state === "awake") service.stoppedElsewhere(shared.by);
    if (shared.state === "awake" && service.state === "asleep" && shared.target) {
      service.adopt(parseTarget(shared.target), `awake, woken by ${shared.by}`);
    }
  }

  /**
   * The lease, renewed, or granted again when it expired (etcd was away
   * longer than its TTL); callers at once share one renewal or grant.
   */
  #ensureLease(): Promise<string> {
    this.#renewing ??= (async () => {
      if (this.#lease && await this.#etcd.keepAlive(this.#lease)) return this.#lease;
      this.#lease = await this.#etcd.grant(LEASE_TTL);
      return this.#lease;
    })().finally(() => this.#renewing = undefined);
    return this.#renewing;
  }

  async #state(service: string): Promise<SharedState | undefined> {
    const text = await this.#etcd.get(this.#key(service, "state"));
    return text === undefined ? undefined : JSON.parse(text) as SharedState;
  }

  #setState(service: string, state: Omit<SharedState, "by" | "at">): Promise<void> {
    const value: SharedState = { ...state, by: this.id, at: Date.now() };
    return this.#etcd.put(this.#key(service, "state"), JSON.stringify(value));
  }

  async #unlock(service: string) {
    if (!this.#locks.delete(service)) return;
    await this.#etcd.delete(this.#key(service, "lock"));
  }

  #key(service: string, rest: string): string {
    return `${this.#prefix}services/${encodeURIComponent(service)}/${rest}`;
  }

  /**
   * Says loudly that etcd cannot be reached and what that means: once per
   * outage, or every time with `always` (a wake going on alone).
   */
  #unreachable(consequence: string, error: unknown, always = false) {
    if (this.#reachable || always) {
      this.#log.error("etcd cannot be reached ({error}): {consequence}", {
        error: (error as Error).message,
        consequence,
      });
    }
    this.#reachable = false;
  }
}
