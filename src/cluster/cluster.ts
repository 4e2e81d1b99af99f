/**
 * Several sleepingd instances in front of the same backends, coordinated
 * through etcd (docs/ARCHITECTURE.md, "Several instances"). Under
 * `/sleepingd/CLUSTER_NAME/`:
 *
 * - `instances/ID`: each instance, under its lease (5 s, renewed every second);
 * - `services/NAME/lock`: the instance running START_CMD or STOP_CMD (`locks.ts`);
 * - `services/NAME/state`: `awake` (and the target) or `asleep`, as the last one left it;
 * - `services/NAME/busy/ID`: each instance's open connections, last activity
 *   and state of the service, under its lease.
 *
 * A crashed instance's keys go with its leases. When etcd cannot be reached,
 * a wake goes on alone (logged) and no backend is stopped on a guess. What
 * etcd holds is read as anyone who can write it may have written it
 * (`records.ts`), and a published target is used only if the service trusts it.
 *
 * @module
 */

import { log } from "../log.ts";
import type { Target } from "../net/address.ts";
import type {
  Claim,
  Coordinator,
  Outcome,
  StopClaim,
  TrustTarget,
  WakeClaim,
} from "../service/coordinator.ts";
import type { StopReason } from "../service/recorder.ts";
import type { Service } from "../service/service.ts";
import { sleep } from "../timers.ts";
import { Etcd, type EtcdAccess, EtcdError } from "./etcd.ts";
import { Lease } from "./lease.ts";
import { type HeldLock, Locks } from "./locks.ts";
import {
  type Busy,
  type InstanceRecord,
  MalformedValues,
  readBusy,
  readInstance,
  readState,
  type SharedState,
  targetOf,
} from "./records.ts";

/** Seconds an instance's (or a lock's) lease lasts without renewal: how soon a crashed instance is forgotten. */
export const LEASE_TTL = 5;
/** Milliseconds between renewals, publications of what each service does, and reads of the others. */
const TICK_MS = 1_000;
/** Milliseconds between two looks at a lock another instance holds. */
const LOCK_POLL_MS = 200;

/** Another instance, as `status` shows it. */
export interface InstanceInfo {
  /** `host:pid`. */
  id: string;
  /** ISO time it joined. */
  since: string;
}

/** Where and how to join a cluster. */
export interface ClusterOptions {
  /** etcd's URLs. */
  endpoints: string[];
  /** CLUSTER_NAME. */
  name: string;
  /** TLS material and credentials for etcd. */
  access?: EtcdAccess;
  /** This instance's services, to publish. */
  services: () => readonly Service[];
}

/** This instance's membership of a cluster, and the coordinator its services use. */
export class Cluster implements Coordinator {
  /** This instance: `host:pid`. */
  readonly id = `${Deno.hostname()}:${Deno.pid}`;
  readonly #etcd: Etcd;
  readonly #prefix: string;
  readonly #services: () => readonly Service[];
  readonly #lease: Lease;
  readonly #locks: Locks;
  readonly #malformed = new MalformedValues();
  #instances: InstanceInfo[] = [];
  #reachable = true;
  /** Set once the instance shuts down: the others no longer count on it. */
  #leaving = false;
  /** A tick is under way (etcd may take up to its time-out to answer). */
  #ticking = false;
  #timer?: ReturnType<typeof setInterval>;
  /** The shared state last read or written, by service (null: there was none). */
  readonly #seen = new Map<string, string | null>();
  /** The published state whose wake each service last judged whether to follow. */
  readonly #judged = new Map<string, string>();
  readonly #since = new Date().toISOString();
  readonly #log = log("cluster");

  /** Joins the cluster `options` name; nothing is sent before {@linkcode start}. */
  constructor(options: ClusterOptions) {
    this.#etcd = new Etcd(options.endpoints, options.access);
    this.#prefix = `/sleepingd/${options.name}/`;
    this.#services = options.services;
    this.#lease = new Lease(this.#etcd, LEASE_TTL);
    this.#locks = new Locks(
      this.#etcd,
      {
        lock: (service) => this.#key(service, "lock"),
        state: (service) => this.#key(service, "state"),
      },
      this.id,
      LEASE_TTL,
      (error) => this.#unreachable("what this instance did waits to be published", error),
    );
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

  /** Leaves: what is left to publish is tried once, then the leases go, and with them this instance's keys. */
  async leave(): Promise<void> {
    clearInterval(this.#timer);
    await this.#locks.flush();
    this.#locks.revokeAll();
    await this.#lease.revoke();
    this.#etcd.close();
  }

  async claimWake(service: string, signal: AbortSignal, trust: TrustTarget): Promise<WakeClaim> {
    /** The published state this wait judged last, and the target it trusted there. */
    let judged: { raw: string; target?: Target } | undefined;
    while (true) {
      /** The state read this time (null: none); undefined until read. */
      let read: string | null | undefined;
      try {
        const raw = await this.#etcd.get(this.#key(service, "state"));
        read = raw ?? null;
        this.#seen.set(service, read);
        const shared = this.#readState(service, raw);
        if (shared?.state === "awake" && shared.by !== this.id) {
          // Judged once per published state: CHECK_CMD need not run at each look.
          const target = judged && judged.raw === raw
            ? judged.target
            : await trust(targetOf(shared)!, shared.by);
          judged = { raw: raw!, target };
          if (target) return { target, by: shared.by };
        }
        if ((await this.#locks.holder(service)) === undefined) {
          // Only while the state is still the one read: the holder before may have released the
          // lock since, publishing its wake with it.
          const taken = await this.#locks.take(service, read);
          if ("value" in taken) return { run: true, claim: this.#lockClaim(taken) };
        }
      } catch (error) {
        if (!(error instanceof EtcdError)) throw error;
        this.#unreachable(`waking [${service}] alone`, error, true);
        return { run: true, claim: this.#aloneClaim(service, read) };
      }
      await sleep(LOCK_POLL_MS, signal);
    }
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
      const busy = this.#malformed.read(key, value, readBusy);
      if (!busy) continue;
      if (busy.open > 0) {
        return `instance ${instance} has ${busy.open} open connection${busy.open === 1 ? "" : "s"}`;
      }
      const ago = (Date.now() - busy.lastActivity) / 1000;
      if (ago < idleTime) return `instance ${instance} was active ${ago.toFixed(1)}s ago`;
    }
    return undefined;
  }

  async claimStop(service: string, reason: StopReason): Promise<StopClaim> {
    let lock: HeldLock | undefined;
    try {
      if (reason === "shutdown") await this.#markLeaving();
      if (reason === "shutdown" || reason === "removed") {
        const keeper = await this.#keeper(service);
        if (keeper) return { refusal: `instance ${keeper} has it awake: it stops it once idle` };
      }
      const taken = await this.#locks.take(service);
      if (!("value" in taken)) {
        return taken.holder
          ? { refusal: `instance ${taken.holder} is waking or stopping it` }
          : { refusal: "etcd did not say whether the lock was taken", unreachable: true };
      }
      lock = taken;
      // Another instance may have stopped it since this one last looked: follow, stop nothing.
      const raw = await this.#etcd.get(this.#key(service, "state"));
      this.#seen.set(service, raw ?? null);
      const shared = this.#readState(service, raw);
      const local = this.#services().find((one) => one.config.name === service);
      if (shared?.state === "asleep" && shared.by !== this.id && local) {
        if (shared.at > local.stateSince) {
          this.#locks.release(lock);
          local.stoppedElsewhere(shared.by);
          return { refusal: `stopped by ${shared.by} already` };
        }
      }
      return { claim: this.#lockClaim(lock) };
    } catch (error) {
      if (!(error instanceof EtcdError)) throw error;
      if (lock) this.#locks.release(lock);
      this.#unreachable(`[${service}] not stopped`, error);
      return { refusal: "etcd cannot be reached: no stop on a guess", unreachable: true };
    }
  }

  gone(service: string, target: Target): void {
    // Only the state this instance read, with this very target, is taken back.
    const raw = this.#seen.get(service);
    if (!raw) return;
    const shared = readState(raw);
    if (typeof shared === "string" || shared.state !== "awake") return;
    const published = targetOf(shared)!;
    if (published.hostname !== target.hostname || published.port !== target.port) return;
    this.#publish(service, { state: "asleep" }, raw);
  }

  firstClient(service: string): void {
    const local = this.#services().find((one) => one.config.name === service);
    const lease = this.#lease.id;
    if (!local || lease === undefined) return;
    // Not waited for, and not tried again: the tick publishes it within a second anyway.
    this.#etcd.put(this.#key(service, `busy/${this.id}`), this.#busy(local), lease)
      .catch(() => {});
  }

  /** What this instance publishes of a service. */
  #busy(service: Service): string {
    const { openConnections, openFlows, kernelConnections, lastActivity } = service.stats;
    const open = openConnections + openFlows + kernelConnections;
    const busy: Busy = { open, lastActivity, state: service.state };
    return JSON.stringify(busy);
  }

  /**
   * Renews the lease, publishes what each service does, reads the others,
   * follows wakes and stops, and does the writes not done yet; skipped while
   * the last one still waits on etcd.
   */
  async #tick() {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      const lease = await this.#lease.current();
      await this.#etcd.put(`${this.#prefix}instances/${this.id}`, this.#record(), lease);
      for (const service of this.#services()) {
        await this.#etcd.put(
          this.#key(service.config.name, `busy/${this.id}`),
          this.#busy(service),
          lease,
        );
        await this.#follow(service);
      }
      const others = [...(await this.#members())]
        .filter(([id]) => id !== this.id)
        .map(([id, { since }]) => ({ id, since }));
      this.#instances = [{ id: this.id, since: this.#since }, ...others];
      await this.#locks.maintain();
      if (!this.#reachable) this.#log.info("etcd answers again: the instances coordinate again");
      this.#reachable = true;
    } catch (error) {
      if (!(error instanceof EtcdError)) throw error;
      this.#unreachable(
        "the instances do not coordinate: wakes go on alone, no backend is stopped until it answers",
        error,
      );
    } finally {
      this.#ticking = false;
    }
  }

  /**
   * Follows what another instance did to a service's backend: woken there
   * (at a target the service trusts), it is awake here too, so that this
   * instance's idle checks see to its stop should that one go; stopped
   * there, it is asleep here.
   */
  async #follow(service: Service) {
    if (service.state !== "awake" && service.state !== "asleep") return;
    const name = service.config.name;
    const raw = await this.#etcd.get(this.#key(name, "state"));
    this.#seen.set(name, raw ?? null);
    const shared = this.#readState(name, raw);
    if (!shared || shared.by === this.id || shared.at <= service.stateSince) return;
    if (shared.state === "asleep" && service.state === "awake") service.stoppedElsewhere(shared.by);
    if (shared.state === "awake" && service.state === "asleep" && this.#judged.get(name) !== raw) {
      this.#judged.set(name, raw!);
      // It may run CHECK_CMD: not waited for.
      service.followWake(targetOf(shared)!, shared.by).catch((error) =>
        this.#log.error("[{service}] cannot follow the wake of {by}: {error}", {
          service: name,
          by: shared.by,
          error: (error as Error).message,
        })
      );
    }
  }

  /** The instances whose record reads, by id. */
  async #members(): Promise<Map<string, InstanceRecord>> {
    const members = new Map<string, InstanceRecord>();
    for (const { key, value } of await this.#etcd.range(`${this.#prefix}instances/`)) {
      const record = this.#malformed.read(key, value, readInstance);
      if (record) members.set(key.slice(key.lastIndexOf("/") + 1), record);
    }
    return members;
  }

  /**
   * Another instance, alive and not leaving, that has `service` in any
   * state but asleep (it then looks after its stop), or undefined.
   */
  async #keeper(service: string): Promise<string | undefined> {
    const members = await this.#members();
    for (const { key, value } of await this.#etcd.range(this.#key(service, "busy/"))) {
      const instance = key.slice(key.lastIndexOf("/") + 1);
      const member = members.get(instance);
      if (instance === this.id || !member || member.leaving) continue; // gone, or going
      const busy = this.#malformed.read(key, value, readBusy);
      if (busy && busy.state !== "asleep") return instance; // no state: an older instance, awake
    }
    return undefined;
  }

  /** Says in etcd that this instance leaves, so that no other counts on it to stop a backend. */
  async #markLeaving() {
    if (this.#leaving) return;
    this.#leaving = true;
    const lease = await this.#lease.current();
    await this.#etcd.put(`${this.#prefix}instances/${this.id}`, this.#record(), lease);
  }

  #record(): string {
    return JSON.stringify({ since: this.#since, ...(this.#leaving ? { leaving: true } : {}) });
  }

  /** The claim of a lock: ending it publishes the outcome and releases the lock, as one step. */
  #lockClaim(lock: HeldLock): Claim {
    let ended = false;
    return {
      end: (outcome) => {
        if (ended) return;
        ended = true;
        const state = outcome === undefined ? undefined : this.#stateValue(outcome);
        if (state !== undefined) this.#seen.set(lock.service, state);
        this.#locks.release(lock, state);
      },
    };
  }

  /**
   * The claim of a wake that went on alone: its outcome is published once
   * etcd answers, if the state is still the one read before (none read: nothing is).
   */
  #aloneClaim(service: string, read: string | null | undefined): Claim {
    const expected = read !== undefined ? read : this.#seen.get(service);
    let ended = false;
    return {
      end: (outcome) => {
        if (ended || outcome === undefined || expected === undefined) return;
        ended = true;
        this.#publish(service, outcome, expected);
      },
    };
  }

  #publish(service: string, outcome: Outcome, expected: string | null) {
    const state = this.#stateValue(outcome);
    this.#seen.set(service, state);
    this.#locks.publish(service, state, expected);
  }

  #stateValue(outcome: Outcome): string {
    const value: SharedState = {
      state: outcome.state,
      ...(outcome.state === "awake"
        ? { target: `${outcome.target.hostname} ${outcome.target.port}` }
        : {}),
      by: this.id,
      at: Date.now(),
    };
    return JSON.stringify(value);
  }

  /** The shared state in `raw`; undefined when there is none, or it is malformed (said once). */
  #readState(service: string, raw: string | undefined): SharedState | undefined {
    return raw === undefined
      ? undefined
      : this.#malformed.read(this.#key(service, "state"), raw, readState);
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
