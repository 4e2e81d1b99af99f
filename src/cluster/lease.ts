/**
 * The lease an instance holds in etcd for the keys that say it is alive and
 * busy: renewed by whoever asks (one renewal at a time, shared), granted
 * again once it expired (docs/ARCHITECTURE.md, "Several instances").
 *
 * @module
 */

import type { Etcd } from "./etcd.ts";

/** One lease of this instance. */
export class Lease {
  readonly #etcd: Etcd;
  readonly #ttl: number;
  #id?: string;
  /** The renewal (or grant) under way. */
  #renewing?: Promise<string>;

  /** A lease of `ttl` seconds, granted at the first {@linkcode current}. */
  constructor(etcd: Etcd, ttl: number) {
    this.#etcd = etcd;
    this.#ttl = ttl;
  }

  /** The lease's id as last granted, without asking etcd; undefined before the first grant. */
  get id(): string | undefined {
    return this.#id;
  }

  /**
   * The lease, renewed, or granted again when it expired (etcd was away
   * longer than its TTL); callers at once share one renewal or grant.
   *
   * @throws {EtcdError} when etcd cannot be reached
   */
  current(): Promise<string> {
    this.#renewing ??= (async () => {
      if (this.#id && await this.#etcd.keepAlive(this.#id)) return this.#id;
      this.#id = await this.#etcd.grant(this.#ttl);
      return this.#id;
    })().finally(() => this.#renewing = undefined);
    return this.#renewing;
  }

  /** Ends the lease, and with it every key put under it; etcd unreachable, it expires by itself. */
  async revoke(): Promise<void> {
    if (this.#id) await this.#etcd.revoke(this.#id).catch(() => {});
    this.#id = undefined;
  }
}
