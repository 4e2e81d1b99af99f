/**
 * A small client of etcd's v3 API through its HTTP/JSON gateway (`fetch`):
 * leases, puts, gets, prefix ranges and transactions, over TLS with a client
 * certificate and as an etcd user when configured. Every call has a
 * time-out, tries the endpoints in turn, and reads at most a bounded answer
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

/** How to reach etcd beyond its URLs: TLS material and credentials, each optional. */
export interface EtcdAccess {
  /** PEM certificates of the authorities that sign etcd's certificate, beside the system's. */
  caCerts?: string[];
  /** A client certificate (PEM) and its key, for etcd's `--client-cert-auth`. */
  clientCert?: { cert: string; key: string };
  /** The etcd user and password, when etcd has authentication on. */
  user?: { name: string; password: string };
}

/** A condition of a transaction: the key's value is `value`, or the key does not exist. */
export type Compare = { key: string; value: string } | { key: string; absent: true };

/** An operation of a transaction. */
export type Operation =
  | { put: string; value: string; lease?: string }
  | { delete: string }
  | { get: string };

/** What a transaction did: which branch ran, and the value each `get` of it read. */
export interface TxnResult {
  /** Whether every comparison held (the `then` branch ran). */
  succeeded: boolean;
  /** The value each `get` of the branch that ran read, in order (undefined: no such key). */
  values: (string | undefined)[];
}

/** Milliseconds one call to one endpoint may take. */
const CALL_TIMEOUT_MS = 2_000;
/** The most of an answer read: etcd's contents are not this instance's to trust with its memory. */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;
/** The most keys a prefix range returns. */
export const MAX_RANGE_KEYS = 10_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function base64(text: string): string {
  return btoa(String.fromCharCode(...encoder.encode(text)));
}

function unbase64(text: unknown): string {
  if (typeof text !== "string") return "";
  try {
    return decoder.decode(Uint8Array.from(atob(text), (char) => char.charCodeAt(0)));
  } catch {
    return "";
  }
}

/** The key just after every key that starts with `prefix`, for a prefix range. */
function rangeEnd(prefix: string): string {
  const bytes = encoder.encode(prefix);
  bytes[bytes.length - 1]++;
  return btoa(String.fromCharCode(...bytes));
}

/** The values of the keys an answer's `kvs` holds, decoded. */
function keyValues(kvs: unknown): KeyValue[] {
  if (!Array.isArray(kvs)) return [];
  return kvs.map((kv) => ({ key: unbase64(kv?.key), value: unbase64(kv?.value) }));
}

/** Talks to one etcd cluster. */
export class Etcd {
  readonly #endpoints: string[];
  readonly #access: EtcdAccess;
  readonly #client?: Deno.HttpClient;
  #current = 0;
  /** The token etcd gave for the user, while it lasts. */
  #token?: string;

  /** Uses `endpoints` (`https://10.0.0.5:2379`), the first that answers, as `access` says. */
  constructor(endpoints: string[], access: EtcdAccess = {}) {
    this.#endpoints = endpoints.map((endpoint) => endpoint.replace(/\/+$/, ""));
    this.#access = access;
    if (access.caCerts || access.clientCert) {
      this.#client = Deno.createHttpClient({
        ...(access.caCerts ? { caCerts: access.caCerts } : {}),
        ...(access.clientCert ?? {}),
      });
    }
  }

  /** Grants a lease of `ttl` seconds; returns its id. */
  async grant(ttl: number): Promise<string> {
    const answer = await this.#call("/v3/lease/grant", { TTL: ttl });
    if (typeof answer.ID !== "string" && typeof answer.ID !== "number") {
      throw new EtcdError("etcd granted a lease without an ID");
    }
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
    return keyValues(answer.kvs)[0]?.value;
  }

  /** The keys that start with `prefix` (at most {@linkcode MAX_RANGE_KEYS}), with their values. */
  async range(prefix: string): Promise<KeyValue[]> {
    const answer = await this.#call("/v3/kv/range", {
      key: base64(prefix),
      range_end: rangeEnd(prefix),
      limit: MAX_RANGE_KEYS,
    });
    return keyValues(answer.kvs);
  }

  /** Runs `then` if every comparison of `when` holds, else `otherwise`, as one step. */
  async txn(when: Compare[], then: Operation[], otherwise: Operation[] = []): Promise<TxnResult> {
    const answer = await this.#call("/v3/kv/txn", {
      compare: when.map((one) =>
        "absent" in one
          ? { key: base64(one.key), target: "CREATE", result: "EQUAL", create_revision: "0" }
          : { key: base64(one.key), target: "VALUE", result: "EQUAL", value: base64(one.value) }
      ),
      success: then.map(request),
      failure: otherwise.map(request),
    });
    const responses = Array.isArray(answer.responses) ? answer.responses : [];
    const values = responses
      .filter((response) => response?.response_range !== undefined)
      .map((response) => keyValues(response.response_range.kvs)[0]?.value);
    return { succeeded: answer.succeeded === true, values };
  }

  /** Lets go of the connections. */
  close(): void {
    this.#client?.close();
  }

  /**
   * POSTs `body` to `path` at the endpoint that answered last, then the
   * others; as the etcd user when there is one, authenticating first (and
   * again when etcd says the token expired).
   *
   * @throws {EtcdError} naming the last failure when none answered, or etcd's error
   */
  async #call(path: string, body: unknown): Promise<Record<string, unknown>> {
    let failure = "";
    for (let tried = 0; tried < this.#endpoints.length; tried++) {
      const endpoint = this.#endpoints[this.#current];
      // A connection that broke (etcd restarted, a proxy between) gets one more try on a new
      // one; every request here may be sent twice (see locks.ts).
      for (let attempt = 1; attempt <= 2; attempt++) {
        try {
          return await this.#callOnce(endpoint, path, body);
        } catch (error) {
          failure = `${endpoint}: ${describe(error)}`;
          if (!(error instanceof TypeError)) break; // an answer, or a time-out: no quick retry
        }
      }
      this.#current = (this.#current + 1) % this.#endpoints.length;
    }
    throw new EtcdError(`etcd did not answer ${path} (${failure})`);
  }

  /** One call to one endpoint, authenticating first when needed. */
  async #callOnce(endpoint: string, path: string, body: unknown) {
    if (this.#access.user && this.#token === undefined) await this.#authenticate(endpoint);
    let answer = await this.#post(endpoint, path, body);
    if (answer.status === 401 && this.#access.user) {
      // The token expired (or etcd restarted): once more with a new one.
      await this.#authenticate(endpoint);
      answer = await this.#post(endpoint, path, body);
    }
    if (answer.status !== 200) throw new Error(answer.error);
    return answer.json;
  }

  async #authenticate(endpoint: string) {
    this.#token = undefined;
    const { name, password } = this.#access.user!;
    const answer = await this.#post(endpoint, "/v3/auth/authenticate", { name, password });
    if (answer.status !== 200) throw new Error(`as user ${name}: ${answer.error}`);
    if (typeof answer.json.token !== "string") throw new Error("etcd gave no token");
    this.#token = answer.json.token;
  }

  /** One POST; the answer's JSON (at most {@linkcode MAX_ANSWER_BYTES}), or etcd's error in words. */
  async #post(
    endpoint: string,
    path: string,
    body: unknown,
  ): Promise<{ status: number; json: Record<string, unknown>; error: string }> {
    const response = await fetch(endpoint + path, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(this.#token ? { authorization: this.#token } : {}),
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      ...(this.#client ? { client: this.#client } : {}),
    });
    const text = await readBounded(response);
    let json: Record<string, unknown> = {};
    try {
      const parsed = JSON.parse(text);
      if (parsed && typeof parsed === "object") json = parsed;
    } catch {
      // Not JSON (an error page, or etcd's plain-text refusals): said below.
    }
    const error = typeof json.message === "string"
      ? json.message
      : `HTTP ${response.status}${text ? `: ${text.trim().slice(0, 200)}` : ""}`;
    if (response.status === 200 && text !== "" && Object.keys(json).length === 0) {
      return { status: 502, json, error: "etcd's answer is not JSON" };
    }
    return { status: response.status, json, error };
  }
}

/** What went wrong, in words: a failed fetch by what broke underneath. */
function describe(error: unknown): string {
  const { message, cause } = error as Error;
  if (!(cause instanceof Error)) return message;
  // "error sending request for url (...): client error (Connect): tcp connect error: ..."
  return cause.message.split(": ").slice(-1)[0] || message;
}

/** An operation as the gateway writes it. */
function request(operation: Operation): Record<string, unknown> {
  if ("put" in operation) {
    return {
      requestPut: {
        key: base64(operation.put),
        value: base64(operation.value),
        lease: operation.lease,
      },
    };
  }
  if ("delete" in operation) return { requestDeleteRange: { key: base64(operation.delete) } };
  return { requestRange: { key: base64(operation.get) } };
}

/** The body of `response` as text, refused past {@linkcode MAX_ANSWER_BYTES}. */
async function readBounded(response: Response): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_ANSWER_BYTES) {
      await reader.cancel().catch(() => {});
      throw new Error(`its answer is larger than ${MAX_ANSWER_BYTES} bytes`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return decoder.decode(all);
}
