/**
 * Server-Sent Events to every open dashboard: each message written once, to
 * every stream; streams end when their client leaves or the feed closes.
 *
 * @module
 */

/** While a client listens, the feed's `poll` runs this often. */
const POLL_MS = 2_000;

/** A comment sent every this many polls keeps proxies from closing a quiet stream. */
const KEEPALIVE_POLLS = 10;

/** Bytes a client may leave unread before its stream is ended (it reconnects and starts afresh). */
const UNREAD_LIMIT = 1024 * 1024;

/** The streams of the open dashboards. */
export class LiveFeed {
  readonly #streams = new Set<ReadableStreamDefaultController<Uint8Array>>();
  #timer?: ReturnType<typeof setInterval>;
  #polls = 0;
  readonly #poll: () => void;
  readonly #encoder = new TextEncoder();

  /** Creates a feed; `poll` runs every 2 s while any client listens, e.g. to send what changed. */
  constructor(poll: () => void = () => {}) {
    this.#poll = poll;
  }

  /**
   * A response that streams every message sent from now on, after `first`
   * (e.g. the state now), until the client leaves or {@linkcode close}.
   */
  response(first: { event: string; data: unknown }[]): Response {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({
      start: (opened) => {
        controller = opened;
        for (const message of first) opened.enqueue(this.#encode(message.event, message.data));
        this.#streams.add(opened);
        this.#timer ??= setInterval(() => this.#tick(), POLL_MS);
      },
      cancel: () => this.#drop(controller),
    }, new ByteLengthQueuingStrategy({ highWaterMark: 0 }));
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
      },
    });
  }

  /** Sends `data` as JSON in an event named `event` to every client. */
  send(event: string, data: unknown): void {
    if (this.#streams.size > 0) this.#write(this.#encode(event, data));
  }

  /** Ends every stream, so that the HTTP server can shut down. */
  close(): void {
    for (const stream of this.#streams) this.#end(stream);
  }

  #end(stream: ReadableStreamDefaultController<Uint8Array>) {
    try {
      stream.close();
    } catch {
      // Already closed by its client.
    }
    this.#drop(stream);
  }

  #tick() {
    this.#poll();
    if (++this.#polls % KEEPALIVE_POLLS === 0) this.#write(": keepalive\n\n");
  }

  #encode(event: string, data: unknown): Uint8Array {
    return this.#encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  #write(message: Uint8Array | string) {
    const bytes = typeof message === "string" ? this.#encoder.encode(message) : message;
    for (const stream of this.#streams) {
      try {
        if ((stream.desiredSize ?? 0) < -UNREAD_LIMIT) throw new Error("too slow");
        stream.enqueue(bytes);
      } catch {
        this.#end(stream);
      }
    }
  }

  #drop(stream: ReadableStreamDefaultController<Uint8Array>) {
    this.#streams.delete(stream);
    if (this.#streams.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
