/**
 * A fault proxy between sleepingd instances and etcd's HTTP/JSON gateway:
 * it forwards each request as it is, or, on command, fails it with a 503,
 * drops it, loses etcd's answer after etcd applied it, delays it, or
 * black-holes the connection. Faults are set for every request from now on,
 * or once for the first request that matches (e.g. the one that deletes a
 * given key), so that a test hits the very step it means to.
 *
 * @module
 */

import { closeQuietly, writeAll } from "../src/net/conn.ts";
import { listenLocal } from "./_net.ts";

/**
 * What the proxy does to a request:
 * - `fail`: answers 503 without forwarding it (etcd never sees it)
 * - `drop`: closes the connection without forwarding it
 * - `lose`: forwards it (etcd applies it), then closes the connection without the answer
 * - `delay`: waits `ms`, then forwards it (the client may have given up: etcd applies it all the same)
 * - `blackhole`: neither forwards nor answers, and keeps the connection open until the fault ends
 * - `hold`: waits until `until` settles, then forwards it (a gate: the test decides when)
 */
export type FaultKind = "fail" | "drop" | "lose" | "delay" | "blackhole" | "hold";

/** A fault, with its delay for `delay` and its gate for `hold`. */
export interface Fault {
  /** What to do. */
  kind: FaultKind;
  /** Milliseconds, for `delay`. */
  ms?: number;
  /** For `hold`: the request goes on once this settles. */
  until?: Promise<unknown>;
}

/** One request as the proxy read it. */
export interface EtcdRequest {
  /** The gateway path, e.g. `/v3/kv/txn`. */
  path: string;
  /** The JSON body. */
  body: Record<string, unknown>;
  /** The keys it puts (a transaction's, whichever branch runs), decoded. */
  puts: string[];
  /** The keys it deletes (a transaction's, whichever branch runs), decoded. */
  deletes: string[];
}

/** A running proxy. */
export interface EtcdProxy extends AsyncDisposable {
  /** The URL to give sleepingd as ETCD_ENDPOINTS. */
  url: string;
  /** Applies `fault` to every request from now on; undefined forwards them again. */
  set(fault?: Fault): void;
  /** Applies `fault` to the first request `match` accepts; resolves once it was applied. */
  once(match: (request: EtcdRequest) => boolean, fault: Fault): Promise<EtcdRequest>;
  /** How many requests each kind of fault hit. */
  counts(): Record<FaultKind, number>;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();
/** Bounds a request's head and body: the gateway's requests are small. */
const MAX_REQUEST_BYTES = 1024 * 1024;

/** Starts a proxy in front of the etcd at `upstream` (its client URL). */
export function startEtcdProxy(upstream: string, options: { client?: Deno.HttpClient } = {}) {
  const listener = listenLocal();
  const open = new Set<Deno.Conn>();
  let standing: Fault | undefined;
  let lifted = Promise.withResolvers<void>();
  const pending: {
    match: (request: EtcdRequest) => boolean;
    fault: Fault;
    done: (r: EtcdRequest) => void;
  }[] = [];
  const counts: Record<FaultKind, number> = {
    fail: 0,
    drop: 0,
    lose: 0,
    delay: 0,
    blackhole: 0,
    hold: 0,
  };

  const faultFor = (request: EtcdRequest): Fault | undefined => {
    const index = pending.findIndex((one) => one.match(request));
    if (index >= 0) {
      const [one] = pending.splice(index, 1);
      one.done(request);
      return one.fault;
    }
    return standing;
  };

  const forward = async (request: EtcdRequest, headers: Headers) => {
    const response = await fetch(upstream + request.path, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(headers.has("authorization") ? { authorization: headers.get("authorization")! } : {}),
      },
      body: JSON.stringify(request.body),
      client: options.client,
    });
    return { status: response.status, body: new Uint8Array(await response.arrayBuffer()) };
  };

  const answer = (conn: Deno.Conn, status: number, body: Uint8Array) =>
    writeAll(
      conn,
      concat(
        encoder.encode(
          `HTTP/1.1 ${status} ${status === 200 ? "OK" : "Error"}\r\n` +
            `content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`,
        ),
        body,
      ),
    );

  const serve = async (conn: Deno.Conn) => {
    const reader = new RequestReader(conn);
    try {
      while (true) {
        const read = await reader.next();
        if (!read) return;
        const { path, headers, body } = read;
        const request: EtcdRequest = { path, body, ...writtenKeys(path, body) };
        const fault = faultFor(request);
        if (fault) counts[fault.kind]++;
        switch (fault?.kind) {
          case "fail": {
            const text = '{"error":"fault injected","message":"fault injected","code":14}';
            await answer(conn, 503, encoder.encode(text));
            continue;
          }
          case "drop":
            return;
          case "blackhole":
            await lifted.promise;
            return;
          case "lose":
            await forward(request, headers).catch(() => {});
            return;
          case "delay":
            await new Promise((resolve) => setTimeout(resolve, fault.ms ?? 0));
            break;
          case "hold":
            await fault.until?.catch(() => {});
        }
        const response = await forward(request, headers).catch(() => undefined);
        if (!response) return; // etcd is away: the client sees the connection close
        await answer(conn, response.status, response.body);
      }
    } catch {
      // The client went away.
    } finally {
      open.delete(conn);
      closeQuietly(conn);
    }
  };

  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        open.add(conn);
        serve(conn);
      }
    } catch {
      // Closed.
    }
  })();

  const proxy: EtcdProxy = {
    url: `http://127.0.0.1:${listener.addr.port}`,
    set(fault) {
      if (standing?.kind === "blackhole" && fault?.kind !== "blackhole") {
        lifted.resolve();
        lifted = Promise.withResolvers();
      }
      standing = fault;
    },
    once(match, fault) {
      const { promise, resolve } = Promise.withResolvers<EtcdRequest>();
      pending.push({ match, fault, done: resolve });
      return promise;
    },
    counts: () => ({ ...counts }),
    async close() {
      closeQuietly(listener);
      lifted.resolve();
      for (const conn of open) closeQuietly(conn);
      await accepting;
    },
    [Symbol.asyncDispose]() {
      return proxy.close();
    },
  };
  return proxy;
}

/** The keys a request puts and deletes, decoded: of a put, a delete, or either branch of a txn. */
function writtenKeys(
  path: string,
  body: Record<string, unknown>,
): { puts: string[]; deletes: string[] } {
  const key = (value: unknown) => typeof value === "string" ? unbase64(value) : "";
  if (path === "/v3/kv/put") return { puts: [key(body.key)], deletes: [] };
  if (path === "/v3/kv/deleterange") return { puts: [], deletes: [key(body.key)] };
  if (path !== "/v3/kv/txn") return { puts: [], deletes: [] };
  const ops = [...(body.success as unknown[] ?? []), ...(body.failure as unknown[] ?? [])]
    .map((op) => op as Record<string, { key?: string } | undefined>);
  return {
    puts: ops.filter((op) => op.requestPut).map((op) => key(op.requestPut!.key)),
    deletes: ops.filter((op) => op.requestDeleteRange).map((op) => key(op.requestDeleteRange!.key)),
  };
}

function unbase64(text: string): string {
  try {
    return decoder.decode(Uint8Array.from(atob(text), (char) => char.charCodeAt(0)));
  } catch {
    return "";
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const all = new Uint8Array(a.length + b.length);
  all.set(a);
  all.set(b, a.length);
  return all;
}

/** Reads HTTP/1.1 requests with a Content-Length body, one after the other, from one connection. */
class RequestReader {
  readonly #conn: Deno.Conn;
  #buffered = new Uint8Array(0);

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The next request, or undefined at the end of the connection. */
  async next(): Promise<
    { path: string; headers: Headers; body: Record<string, unknown> } | undefined
  > {
    let end;
    while ((end = indexOfBlankLine(this.#buffered)) < 0) {
      if (!(await this.#fill())) return undefined;
    }
    const [requestLine, ...lines] = decoder.decode(this.#buffered.subarray(0, end)).split("\r\n");
    const headers = new Headers();
    for (const line of lines) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    const length = Number(headers.get("content-length") ?? 0);
    if (!Number.isSafeInteger(length) || length > MAX_REQUEST_BYTES) return undefined;
    this.#buffered = this.#buffered.subarray(end + 4);
    while (this.#buffered.length < length) {
      if (!(await this.#fill())) return undefined;
    }
    const text = decoder.decode(this.#buffered.subarray(0, length));
    this.#buffered = this.#buffered.subarray(length);
    const path = requestLine.split(" ")[1] ?? "/";
    return { path, headers, body: text ? JSON.parse(text) : {} };
  }

  async #fill(): Promise<boolean> {
    if (this.#buffered.length > MAX_REQUEST_BYTES) return false;
    const chunk = new Uint8Array(16 * 1024);
    const n = await this.#conn.read(chunk);
    if (n === null) return false;
    this.#buffered = concat(this.#buffered, chunk.subarray(0, n));
    return true;
  }
}

function indexOfBlankLine(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}
