/**
 * Ownership of each service's lock (`services/NAME/lock`): who may run
 * START_CMD or STOP_CMD, and the publications of what came of it
 * (docs/ARCHITECTURE.md, "Several instances").
 *
 * - Each lock taken has a value no other lock ever had (`ID UUID`) and a
 *   lease of its own, renewed while it is held. A wake takes it only while
 *   the service's state is still the one it read. A request to take it whose
 *   outcome is unknown (no answer, an answer lost or late) is read back: the
 *   lock is held if etcd has this value; otherwise its lease is revoked, so
 *   that the request, should etcd apply it later, takes nothing lasting.
 * - Only the holder's value deletes a lock: the release is a transaction
 *   comparing the value, and it publishes the service's state in the same
 *   step. What does not land is tried again at every tick, until it lands or
 *   the lock is found gone (its lease ended: then nothing is published, as
 *   another instance may have acted since).
 * - A publication without the lock (a wake made alone while etcd was away, a
 *   backend found dead) lands only while no instance holds the lock and the
 *   state is still the one read before, and is tried again the same way.
 *
 * @module
 */

import { log } from "../log.ts";
import { type Compare, type Etcd, EtcdError } from "./etcd.ts";

/** A service's lock, held by this instance until released. */
export interface HeldLock {
  /** The service's name. */
  readonly service: string;
  /** The value that says the lock is this one. */
  readonly value: string;
  /** The lock's own lease. */
  readonly lease: string;
}

/** Where a service's keys are. */
export interface ServiceKeys {
  /** The key of the service's lock. */
  lock(service: string): string;
  /** The key of the service's shared state. */
  state(service: string): string;
}

/** A write to etcd not done yet: a release (with its publication), or a publication alone. */
type Pending =
  | { release: HeldLock; state?: string }
  | { service: string; state: string; expected: string | null };

/** The instance id in a lock's value (`ID UUID`). */
function holderOf(value: string): string {
  return value.split(" ")[0];
}

/** The locks of one instance, and what it has still to publish. */
export class Locks {
  readonly #etcd: Etcd;
  readonly #keys: ServiceKeys;
  readonly #id: string;
  readonly #ttl: number;
  readonly #onUnreachable: (error: EtcdError) => void;
  /** The locks held now, renewed at each {@linkcode maintain}. */
  readonly #held = new Set<HeldLock>();
  /** Writes to do, in order. */
  #pending: Pending[] = [];
  /** The pass over {@linkcode #pending} under way. */
  #flushing?: Promise<void>;
  readonly #log = log("cluster");

  /**
   * Locks of the instance `id`, each under a lease of `ttl` seconds;
   * `onUnreachable` hears of a write that must wait for etcd.
   */
  constructor(
    etcd: Etcd,
    keys: ServiceKeys,
    id: string,
    ttl: number,
    onUnreachable: (error: EtcdError) => void,
  ) {
    this.#etcd = etcd;
    this.#keys = keys;
    this.#id = id;
    this.#ttl = ttl;
    this.#onUnreachable = onUnreachable;
  }

  /**
   * The instance holding `service`'s lock now, or undefined when none does.
   *
   * @throws {EtcdError} when etcd cannot be reached
   */
  async holder(service: string): Promise<string | undefined> {
    const value = await this.#etcd.get(this.#keys.lock(service));
    return value === undefined ? undefined : holderOf(value);
  }

  /**
   * Tries to take `service`'s lock; with `state`, only while the service's
   * state is still that (null: there is none), so that a state published
   * since it was read (the holder before released the lock with it) is
   * read before anything is run.
   *
   * @returns the lock; or, when it is not taken, the instance holding it
   * (none: the state changed, or the attempt's outcome was unknown and was
   * undone: ask again)
   * @throws {EtcdError} when etcd cannot be reached
   */
  async take(service: string, state?: string | null): Promise<HeldLock | { holder?: string }> {
    const key = this.#keys.lock(service);
    const stateKey = this.#keys.state(service);
    const lease = await this.#etcd.grant(this.#ttl);
    const lock: HeldLock = { service, value: `${this.#id} ${crypto.randomUUID()}`, lease };
    const unchanged: Compare[] = state === undefined
      ? []
      : [state === null ? { key: stateKey, absent: true } : { key: stateKey, value: state }];
    let taken;
    try {
      taken = await this.#etcd.txn(
        [{ key, absent: true }, ...unchanged],
        [{ put: key, value: lock.value, lease }],
        [{ get: key }],
      );
    } catch (error) {
      // Unknown: etcd may have applied it. Read it back; not there (yet), undo it for good.
      let now;
      try {
        now = await this.#etcd.get(key);
      } catch {
        this.#revoke(lease);
        throw error;
      }
      if (now === lock.value) return this.#hold(lock);
      this.#revoke(lease);
      return now === undefined ? {} : { holder: holderOf(now) };
    }
    // A request retried on a new connection may find that its first try took the lock.
    const now = taken.succeeded ? lock.value : taken.values[0];
    if (now === lock.value) return this.#hold(lock);
    this.#revoke(lease);
    return now === undefined ? {} : { holder: holderOf(now) };
  }

  /**
   * Releases `lock`, publishing `state` as the service's state in the same
   * step when given; tried again until it lands or the lock is found gone.
   */
  release(lock: HeldLock, state?: string): void {
    this.#pending.push({ release: lock, state });
    this.flush();
  }

  /**
   * Publishes `state` as `service`'s state if no instance holds its lock and
   * the state is still `expected` (null: there is none); tried again until it
   * lands or the state or lock is found otherwise. It replaces a publication
   * of the same service not done yet.
   */
  publish(service: string, state: string, expected: string | null): void {
    this.#pending = this.#pending.filter((one) => "release" in one || one.service !== service);
    this.#pending.push({ service, state, expected });
    this.flush();
  }

  /**
   * Renews the leases of the locks held and does the writes not done yet:
   * at each tick.
   *
   * @throws {EtcdError} when etcd cannot be reached
   */
  async maintain(): Promise<void> {
    for (const lock of this.#held) {
      if (!(await this.#etcd.keepAlive(lock.lease))) this.#held.delete(lock); // expired: it is gone
    }
    await this.flush();
  }

  /** Does the writes not done yet, in order, until one must wait for etcd. */
  flush(): Promise<void> {
    this.#flushing ??= (async () => {
      try {
        while (this.#pending.length > 0) {
          await this.#write(this.#pending[0]);
          this.#pending.shift();
        }
      } catch (error) {
        if (!(error instanceof EtcdError)) throw error;
        this.#onUnreachable(error);
      }
    })().finally(() => this.#flushing = undefined);
    return this.#flushing;
  }

  /** Revokes every lock's lease: for an instance that leaves. */
  revokeAll(): void {
    for (const lock of this.#held) this.#revoke(lock.lease);
    this.#held.clear();
  }

  #hold(lock: HeldLock): HeldLock {
    this.#held.add(lock);
    return lock;
  }

  /** Revokes a lease, in the background: etcd unreachable, it expires by itself. */
  #revoke(lease: string) {
    this.#etcd.revoke(lease).catch(() => {});
  }

  async #write(pending: Pending) {
    if ("release" in pending) {
      const { release: lock, state } = pending;
      const stateKey = this.#keys.state(lock.service);
      const done = await this.#etcd.txn(
        [{ key: this.#keys.lock(lock.service), value: lock.value }],
        [
          ...(state === undefined ? [] : [{ put: stateKey, value: state }]),
          { delete: this.#keys.lock(lock.service) },
        ],
        [{ get: stateKey }],
      );
      this.#held.delete(lock);
      this.#revoke(lock.lease);
      // Not held any more: released by an earlier try whose answer was lost, or gone with its lease.
      if (!done.succeeded && state !== undefined && done.values[0] !== state) {
        this.#log.warn("[{service}] not published: its lock went with its lease first", {
          service: lock.service,
        });
      }
      return;
    }
    const { service, state, expected } = pending;
    const stateKey = this.#keys.state(service);
    const done = await this.#etcd.txn(
      [
        { key: this.#keys.lock(service), absent: true },
        expected === null ? { key: stateKey, absent: true } : { key: stateKey, value: expected },
      ],
      [{ put: stateKey, value: state }],
      [{ get: stateKey }],
    );
    if (!done.succeeded && done.values[0] !== state) {
      this.#log.debug("[{service}] not published: another instance acted since", { service });
    }
  }
}
