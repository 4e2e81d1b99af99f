/**
 * A small HTTP/1.1 server, bounded in everything a client can make it hold:
 * its own accept loop (which backs off when descriptors run out), a cap on
 * connections and on event streams ({@linkcode HttpSlots}), a time limit on
 * each phase of a request (the head, the body, an idle keep-alive, each
 * write), and caps on the size of the head and the body. A client past any
 * bound is answered with the matching status (400, 408, 411, 413, 431, 503)
 * or cut off; nothing a client does ends the process (docs/ARCHITECTURE.md,
 * "HTTP server").
 *
 * Requests reach the handler as web `Request`s; a `Response` whose type is
 * `text/event-stream` is streamed until either side ends it, every other one
 * is sent whole with its length, on a connection kept alive for the next.
 *
 * @module
 */

import { log } from "../log.ts";
import { acceptConnections } from "./accept.ts";
import { formatAddr, formatTarget } from "./address.ts";
import { closeQuietly, writeAll } from "./conn.ts";
import { HttpSlots } from "./http_slots.ts";

/** How long each phase may take and how large a request may be. */
export interface HttpLimits {
  /** Milliseconds from a new connection, or from a request's first byte, to the end of its head. */
  headMs: number;
  /** Milliseconds a request's body may take once its head is in. */
  bodyMs: number;
  /** Milliseconds a kept-alive connection may wait for its next request. */
  idleMs: number;
  /** Milliseconds one write may wait for a client that does not read. */
  writeMs: number;
  /** Bytes a request's head (request line and headers) may hold. */
  maxHeadBytes: number;
  /** Bytes a request's body may hold. */
  maxBodyBytes: number;
}

/** The bounds unless told otherwise. */
export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headMs: 10_000,
  bodyMs: 10_000,
  idleMs: 30_000,
  writeMs: 30_000,
  maxHeadBytes: 32 * 1024,
  maxBodyBytes: 8 * 1024,
};

/** Answers one request; `peer` is the client's address. */
export type HttpHandler = (request: Request, peer: Deno.NetAddr) => Response | Promise<Response>;

/** How to serve. */
export interface HttpServerOptions {
  /** Where connections and streams are counted; the default caps otherwise. */
  slots?: HttpSlots;
  /** Bounds that differ from {@linkcode DEFAULT_HTTP_LIMITS}. */
  limits?: Partial<HttpLimits>;
  /** The answer when the handler throws (after logging it, say); a bare 500 otherwise. */
  onError?: (error: unknown, request: Request) => Response;
}

/** A request the server answers itself, then closes the connection. */
class Refused extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** The phase of a connection that ran out of time: it is closed without an answer. */
class TimedOut extends Error {}

/** Pauses after which an episode of refused connections counts as over (as in accept.ts). */
const QUIET_MS = 2_000;

/** Reason phrases of the statuses the daemon answers with. */
const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  411: "Length Required",
  413: "Content Too Large",
  421: "Misdirected Request",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const REQUEST_LINE = new RegExp(`^(${TOKEN}) (\\S+) HTTP/1\\.([01])$`);
const HEADER_LINE = new RegExp(`^(${TOKEN}):[ \\t]*(.*?)[ \\t]*$`);

/** Connections refused in a row past the cap: logged when it begins and when it is over. */
interface RefusalEpisode {
  since: number;
  count: number;
  last: number;
  timer?: ReturnType<typeof setTimeout>;
}

/** One request as read from the connection. */
interface Incoming {
  request: Request;
  /** The client asked to close after this answer (or speaks HTTP/1.0). */
  close: boolean;
}

/** An HTTP/1.1 server on one listening address, bounded as the module says. */
export class HttpServer {
  /** The address it listens on (the port the kernel picked, when asked for port 0). */
  readonly addr: Deno.NetAddr;
  readonly #listener: Deno.TcpListener;
  readonly #handler: HttpHandler;
  readonly #slots: HttpSlots;
  readonly #limits: HttpLimits;
  readonly #onError: (error: unknown, request: Request) => Response;
  /** Each open connection, and whether it waits for a request (idle) or serves one. */
  readonly #connections = new Map<Deno.TcpConn, { idle: boolean }>();
  readonly #served: Promise<void>;
  #closing = false;
  #refused?: RefusalEpisode;
  readonly #log = log("http");

  /**
   * Listens on `address` and serves `handler` until {@linkcode shutdown}.
   *
   * @throws {Deno.errors.AddrInUse} and the other errors of `Deno.listen`
   */
  constructor(
    address: { hostname: string; port: number },
    handler: HttpHandler,
    options: HttpServerOptions = {},
  ) {
    this.#listener = Deno.listen({ ...address, transport: "tcp" });
    this.addr = this.#listener.addr;
    this.#handler = handler;
    this.#slots = options.slots ?? new HttpSlots();
    this.#limits = { ...DEFAULT_HTTP_LIMITS, ...options.limits };
    this.#onError = options.onError ??
      (() => Response.json({ error: "Internal server error" }, { status: 500 }));
    this.#served = acceptConnections(this.#listener, "http", (conn) => this.#take(conn));
  }

  /**
   * Stops accepting, closes idle connections at once, lets the requests under
   * way finish for up to `graceMs`, then closes what is left. Streams end when
   * their source ends them (or now, at the grace's end).
   */
  async shutdown(graceMs = 2_000): Promise<void> {
    this.#closing = true;
    closeQuietly(this.#listener);
    await this.#served;
    clearTimeout(this.#refused?.timer);
    for (const [conn, state] of this.#connections) if (state.idle) closeQuietly(conn);
    const deadline = Date.now() + graceMs;
    while (this.#connections.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const conn of this.#connections.keys()) closeQuietly(conn);
  }

  /** Takes a connection the accept loop handed over, or closes it at once past the cap. */
  #take(conn: Deno.TcpConn) {
    if (this.#closing || !this.#slots.tryAcquire("connection")) {
      closeQuietly(conn);
      if (!this.#closing) this.#countRefused();
      return;
    }
    this.#connections.set(conn, { idle: true });
    this.#serve(conn).finally(() => {
      this.#connections.delete(conn);
      closeQuietly(conn);
      this.#slots.release("connection");
    });
  }

  /** Logs an episode of refused connections once when it begins, once when it is over. */
  #countRefused() {
    const now = Date.now();
    if (this.#refused) {
      this.#refused.count++;
      this.#refused.last = now;
      return;
    }
    this.#log.warn("refusing HTTP connections on {address}: {reason}", {
      address: formatTarget(this.addr),
      reason: this.#slots.full("connection"),
    });
    const episode: RefusalEpisode = { since: now, count: 1, last: now };
    this.#refused = episode;
    const check = () => {
      const quiet = Date.now() - episode.last;
      if (quiet < QUIET_MS) {
        episode.timer = setTimeout(check, QUIET_MS - quiet);
        return;
      }
      this.#log.warn("taking HTTP connections again after refusing {count} in {seconds}s", {
        count: episode.count,
        seconds: ((episode.last - episode.since) / 1000).toFixed(1),
      });
      this.#refused = undefined;
    };
    episode.timer = setTimeout(check, QUIET_MS);
  }

  /** Serves the requests of one connection until it closes, times out or errs. */
  async #serve(conn: Deno.TcpConn): Promise<void> {
    const reader = new ConnReader(conn, this.#limits);
    const state = this.#connections.get(conn)!;
    let fresh = true;
    try {
      while (!this.#closing) {
        state.idle = true;
        const incoming = await reader.request(fresh, this.addr, () => state.idle = false);
        if (incoming === undefined) return; // the client closed between requests
        fresh = false;
        state.idle = false;
        const keepAlive = await this.#answer(conn, incoming, reader);
        if (!keepAlive) return;
      }
    } catch (error) {
      if (error instanceof Refused) {
        await writeWithin(conn, refusal(error.status, error.message), this.#limits.writeMs)
          .catch(() => {});
        return;
      }
      if (error instanceof TimedOut) {
        this.#log.debug("closed the HTTP connection of {peer}: {phase}", {
          peer: formatAddr(conn.remoteAddr),
          phase: error.message,
        });
        return;
      }
      // The client went away, or a write failed: the connection ends here.
      this.#log.debug("the HTTP connection of {peer} ended: {error}", {
        peer: formatAddr(conn.remoteAddr),
        error,
      });
    }
  }

  /** Answers one request; returns whether the connection may serve another. */
  async #answer(conn: Deno.TcpConn, incoming: Incoming, reader: ConnReader): Promise<boolean> {
    const { request } = incoming;
    let response: Response;
    try {
      response = await this.#handler(request, conn.remoteAddr);
    } catch (error) {
      response = this.#onError(error, request);
    }
    const head = request.method === "HEAD";
    if (isEventStream(response) && !head) return await this.#stream(conn, response, reader);
    const close = incoming.close || this.#closing;
    if (isEventStream(response)) {
      await response.body?.cancel();
      await writeWithin(conn, encodeResponse(response, { close }), this.#limits.writeMs);
      return !close;
    }
    const body = new Uint8Array(await response.arrayBuffer());
    // HEAD: the length GET would send, without the body.
    const bytes = encodeResponse(response, {
      close,
      body: head ? undefined : body,
      length: body.length,
    });
    await writeWithin(conn, bytes, this.#limits.writeMs);
    return !close;
  }

  /** Streams an event stream until its source or the client ends it; the connection ends too. */
  async #stream(conn: Deno.TcpConn, response: Response, reader: ConnReader): Promise<false> {
    if (!this.#slots.tryAcquire("stream")) {
      await response.body?.cancel();
      const message = `Too many live streams are open (${this.#slots.cap("stream")}): ` +
        "try again later";
      await writeWithin(conn, refusal(503, message, { "retry-after": "10" }), this.#limits.writeMs);
      return false;
    }
    const source = response.body!.getReader();
    // Whatever the client sends now is not read as requests; its end ends the stream.
    reader.drain().finally(() => source.cancel().catch(() => {}));
    try {
      await writeWithin(conn, encodeResponse(response, { close: true }), this.#limits.writeMs);
      while (true) {
        const { value, done } = await source.read();
        if (done) break;
        await writeWithin(conn, value, this.#limits.writeMs);
      }
    } finally {
      await source.cancel().catch(() => {});
      this.#slots.release("stream");
    }
    return false;
  }
}

/** Reads requests from one connection, within the limits, keeping what a client sent ahead. */
class ConnReader {
  readonly #conn: Deno.TcpConn;
  readonly #limits: HttpLimits;
  /** Bytes read and not used yet (the start of the next request). */
  #pending: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  readonly #chunk = new Uint8Array(16 * 1024);

  constructor(conn: Deno.TcpConn, limits: HttpLimits) {
    this.#conn = conn;
    this.#limits = limits;
  }

  /**
   * The next request, or undefined when the client closed before sending one.
   * A new connection has `headMs` for its head; a kept-alive one `idleMs` for
   * its first byte (`onFirstByte` is told), then `headMs` for the rest.
   *
   * @throws {Refused} for a request to answer with an error, {TimedOut} past a time limit
   */
  async request(
    fresh: boolean,
    local: Deno.NetAddr,
    onFirstByte: () => void,
  ): Promise<Incoming | undefined> {
    const deadline = new Deadline(this.#conn);
    try {
      let end = headEnd(this.#pending);
      if (this.#pending.length === 0) {
        deadline.arm(fresh ? this.#limits.headMs : this.#limits.idleMs, "no request");
        if (!(await this.#fill(deadline))) return undefined;
        onFirstByte();
        end = headEnd(this.#pending);
      } else {
        onFirstByte();
      }
      deadline.arm(this.#limits.headMs, "the head of a request took too long");
      while (end === undefined) {
        if (this.#pending.length > this.#limits.maxHeadBytes) {
          throw new Refused(431, `A request's head may hold ${this.#limits.maxHeadBytes} bytes`);
        }
        if (!(await this.#fill(deadline))) {
          throw new TimedOut("the client closed in the middle of a request");
        }
        end = headEnd(this.#pending);
      }
      if (end.at > this.#limits.maxHeadBytes) {
        throw new Refused(431, `A request's head may hold ${this.#limits.maxHeadBytes} bytes`);
      }
      const head = parseHead(latin1(this.#pending.subarray(0, end.at)));
      this.#pending = this.#pending.slice(end.at + end.length);
      const length = bodyLength(head.headers);
      if (length > this.#limits.maxBodyBytes) {
        throw new Refused(413, `A request's body may hold ${this.#limits.maxBodyBytes} bytes`);
      }
      deadline.arm(this.#limits.bodyMs, "the body of a request took too long");
      while (this.#pending.length < length) {
        if (!(await this.#fill(deadline))) {
          throw new TimedOut("the client closed in the middle of a request");
        }
      }
      const body = this.#pending.slice(0, length);
      this.#pending = this.#pending.slice(length);
      return {
        request: toRequest(head, body, local),
        close: head.minor === 0 ||
          /(^|,)\s*close\s*(,|$)/i.test(head.headers.get("connection") ?? ""),
      };
    } finally {
      deadline.clear();
    }
  }

  /** Reads and drops what the client sends, until it closes (or the connection is closed). */
  async drain(): Promise<void> {
    try {
      while ((await this.#conn.read(this.#chunk)) !== null) {
        // Dropped: a client of an event stream has nothing more to say.
      }
    } catch {
      // Closed by either side.
    }
  }

  /** Reads more into `#pending`; false at the client's end. */
  async #fill(deadline: Deadline): Promise<boolean> {
    let n: number | null;
    try {
      n = await this.#conn.read(this.#chunk);
    } catch (error) {
      if (deadline.expired) throw new TimedOut(deadline.phase);
      throw error;
    }
    if (n === null) return false;
    const grown = new Uint8Array(this.#pending.length + n);
    grown.set(this.#pending);
    grown.set(this.#chunk.subarray(0, n), this.#pending.length);
    this.#pending = grown;
    return true;
  }
}

/** Closes a connection when a phase runs out of time; says so to the read that then fails. */
class Deadline {
  readonly #conn: Deno.Conn;
  #timer?: ReturnType<typeof setTimeout>;
  expired = false;
  phase = "";

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** (Re)starts the clock: `ms` from now, for `phase`. */
  arm(ms: number, phase: string) {
    this.clear();
    this.phase = phase;
    this.#timer = setTimeout(() => {
      this.expired = true;
      closeQuietly(this.#conn);
    }, ms);
  }

  clear() {
    clearTimeout(this.#timer);
  }
}

/** Writes all of `bytes`, closing the connection when the client reads none of it for `ms`. */
async function writeWithin(conn: Deno.Conn, bytes: Uint8Array, ms: number): Promise<void> {
  const deadline = new Deadline(conn);
  deadline.arm(ms, "the client did not read the answer");
  try {
    await writeAll(conn, bytes);
  } catch (error) {
    if (deadline.expired) throw new TimedOut(deadline.phase);
    throw error;
  } finally {
    deadline.clear();
  }
}

/** Where the head ends: the index of its blank line and the line break's length. */
function headEnd(bytes: Uint8Array): { at: number; length: number } | undefined {
  for (let i = 0; i + 1 < bytes.length; i++) {
    if (bytes[i] !== 0x0a) continue;
    if (bytes[i + 1] === 0x0a) return { at: i + 1, length: 1 };
    if (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a) return { at: i + 1, length: 2 };
  }
  return undefined;
}

/** Bytes as ISO-8859-1 text, as HTTP heads are. */
function latin1(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return text;
}

/** A request's head, parsed. */
interface Head {
  method: string;
  target: string;
  minor: number;
  headers: Headers;
}

/**
 * Parses a request line and its headers.
 *
 * @throws {Refused} (400) for anything that is not HTTP/1.x in origin form
 */
function parseHead(text: string): Head {
  const [line, ...fields] = text.replace(/\r?\n$/, "").split(/\r?\n/);
  const match = REQUEST_LINE.exec(line);
  if (!match) throw new Refused(400, "Not an HTTP/1.1 request line");
  const [, method, target, minor] = match;
  if (!target.startsWith("/")) throw new Refused(400, "The request target must be a path");
  const headers = new Headers();
  let hosts = 0;
  for (const field of fields) {
    const header = HEADER_LINE.exec(field);
    if (!header) throw new Refused(400, "A header line is malformed");
    if (header[1].toLowerCase() === "host") hosts++;
    try {
      headers.append(header[1], header[2]);
    } catch {
      throw new Refused(400, `The ${header[1]} header is malformed`);
    }
  }
  if (hosts > 1 || (hosts === 0 && minor === "1")) {
    throw new Refused(400, "An HTTP/1.1 request needs one Host header");
  }
  return { method, target, minor: Number(minor), headers };
}

/**
 * The length of a request's body, from Content-Length (0 without).
 *
 * @throws {Refused} for a chunked body (411) or a length that is not one number (400)
 */
function bodyLength(headers: Headers): number {
  if (headers.has("transfer-encoding")) {
    throw new Refused(411, "Send the body with Content-Length, not Transfer-Encoding");
  }
  const text = headers.get("content-length");
  if (text === null) return 0;
  const values = new Set(text.split(",").map((value) => value.trim()));
  const [value] = values;
  if (values.size !== 1 || !/^\d{1,15}$/.test(value)) {
    throw new Refused(400, "Content-Length must be one number");
  }
  return Number(value);
}

/** A web `Request` of a parsed head and its body. */
function toRequest(head: Head, body: Uint8Array<ArrayBuffer>, local: Deno.NetAddr): Request {
  let url: URL;
  try {
    url = new URL(`http://${formatTarget(local)}${head.target}`);
  } catch {
    throw new Refused(400, "The request target is not a valid path");
  }
  const bodyless = head.method === "GET" || head.method === "HEAD";
  return new Request(url, {
    method: head.method,
    headers: head.headers,
    body: bodyless || body.length === 0 ? undefined : body,
  });
}

/** Whether `response` is an event stream, sent as it comes rather than whole. */
function isEventStream(response: Response): boolean {
  return response.body !== null &&
    (response.headers.get("content-type") ?? "").startsWith("text/event-stream");
}

/**
 * The status line and headers of `response` (and `body`, when given), with
 * Content-Length when `length` (or `body`) gives it and Connection as `close` says.
 */
function encodeResponse(
  response: Response,
  options: { close: boolean; body?: Uint8Array; length?: number },
): Uint8Array {
  return encode(response.status, response.headers, options);
}

/** An error the server answers itself, closing the connection: JSON `{"error": ...}`. */
function refusal(status: number, message: string, headers: Record<string, string> = {}) {
  const fields = new Headers({
    "content-type": "application/json",
    "cache-control": "no-store",
    ...headers,
  });
  const body = new TextEncoder().encode(JSON.stringify({ error: message }));
  return encode(status, fields, { close: true, body });
}

function encode(
  status: number,
  headers: Headers,
  options: { close: boolean; body?: Uint8Array; length?: number },
): Uint8Array {
  const length = options.length ?? options.body?.length;
  const lines = [`HTTP/1.1 ${status} ${REASONS[status] ?? ""}`.trimEnd()];
  for (const [name, value] of headers) {
    if (name !== "content-length" && name !== "connection") lines.push(`${name}: ${value}`);
  }
  lines.push(`date: ${new Date().toUTCString()}`);
  if (length !== undefined) lines.push(`content-length: ${length}`);
  lines.push(`connection: ${options.close ? "close" : "keep-alive"}`);
  const head = new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n`);
  if (!options.body || options.body.length === 0) return head;
  const bytes = new Uint8Array(head.length + options.body.length);
  bytes.set(head);
  bytes.set(options.body, head.length);
  return bytes;
}
