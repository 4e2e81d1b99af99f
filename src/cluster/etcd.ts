/**
 * A small client of etcd's v3 API through its HTTP/JSON gateway (`fetch`):
 * leases, puts, gets, prefix ranges, deletes and a create-if-absent
 * transaction. Every call has a time-out and tries the endpoints in turn
 * (docs/ARCHITECTURE.md, "Several instances").
 *
 * @module
 */

/** etcd could not be reached at any endpoint, or answered with an error. */
export class EtcdError extends Error {
  /** Creates the error naming what failed. */
  constructor(message: string) {
    super(message);
    this.name = "EtcdError";
  }
}

/** One key and its value. */
export interface KeyValue {
  /** The key. */
  key: string;
  /** The value. */
  value: string;
}

/** Milliseconds one call to one endpoint may take. */
const CALL_TIMEOUT_MS = 2_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function base64(text: string): string {
  return btoa(String.fromCharCode(...encoder.encode(text)));
}

function unbase64(text: string): string {
  return decoder.decode(Uint8Array.from(atob(text), (char) => char.charCodeAt(0)));
}

/** The key just after every key that starts with `prefix`, for a prefix range. */
function rangeEnd(prefix: string): string {
  const bytes = encoder.encode(prefix);
  bytes[bytes.length - 1]++;
  return btoa(String.fromCharCode(...bytes));
}

/** Talks to one etcd cluster. */
export class Etcd {
  readonly #endpoints: string[];
  #current = 0;

  /** Uses `endpoints` (`http://127.0.0.1:2379`), the first that answers. */
  constructor(endpoints: string[]) {
    this.#endpoints = endpoints.map((endpoint) => endpoint.replace(/\/+$/, ""));
  }

  /** Grants a lease of `ttl` seconds; returns its id. */
  async grant(ttl: number): Promise<string> {
    const answer = await this.#call("/v3/lease/grant", { TTL: ttl });
    return String(answer.ID);
  }

  /** Renews a lease; false when it has expired. */
  async keepAlive(lease: string): Promise<boolean> {
    const answer = await this.#call("/v3/lease/keepalive", { ID: lease });
    const result = answer.result as { TTL?: string } | undefined;
    return Number(result?.TTL ?? 0) > 0;
  }

  /** Ends a lease: the keys put with it go. */
  async revoke(lease: string): Promise<void> {
    await this.#call("/v3/lease/revoke", { ID: lease });
  }

  /** Sets `key` to `value`, bound to `lease` when given. */
  async put(key: string, value: string, lease?: string): Promise<void> {
    await this.#call("/v3/kv/put", { key: base64(key), value: base64(value), lease });
  }

  /** The value of `key`, or undefined. */
  async get(key: string): Promise<string | undefined> {
    const answer = await this.#call("/v3/kv/range", { key: base64(key) });
    const kvs = answer.kvs as { value?: string }[] | undefined;
    return kvs?.[0] ? unbase64(kvs[0].value ?? "") : undefined;
  }

  /** Every key that starts with `prefix`, with its value. */
  async range(prefix: string): Promise<KeyValue[]> {
    const answer = await this.#call("/v3/kv/range", {
      key: base64(prefix),
      range_end: rangeEnd(prefix),
    });
    const kvs = (answer.kvs ?? []) as { key: string; value?: string }[];
    return kvs.map((kv) => ({ key: unbase64(kv.key), value: unbase64(kv.value ?? "") }));
  }

  /** Deletes `key`. */
  async delete(key: string): Promise<void> {
    await this.#call("/v3/kv/deleterange", { key: base64(key) });
  }

  /** Sets `key` to `value` with `lease` only if no one has: whether this call did. */
  async createIfAbsent(key: string, value: string, lease: string): Promise<boolean> {
    const answer = await this.#call("/v3/kv/txn", {
      compare: [{ key: base64(key), target: "CREATE", create_revision: "0" }],
      success: [{ requestPut: { key: base64(key), value: base64(value), lease } }],
    });
    return answer.succeeded === true;
  }

  /**
   * POSTs `body` to `path` at the endpoint that answered last, then the others.
   *
   * @throws {EtcdError} naming the last failure when none answered
   */
  async #call(path: string, body: unknown): Promise<Record<string, unknown>> {
    let failure = "";
    for (let tried = 0; tried < this.#endpoints.length; tried++) {
      const endpoint = this.#endpoints[this.#current];
      try {
        const response = await fetch(endpoint + path, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
        });
        const answer = await response.json();
        if (!response.ok) throw new Error(answer?.message ?? `HTTP ${response.status}`);
        return answer;
      } catch (error) {
        failure = `${endpoint}: ${(error as Error).message}`;
        this.#current = (this.#current + 1) % this.#endpoints.length;
      }
    }
    throw new EtcdError(`etcd did not answer ${path} (${failure})`);
  }
}
