/**
 * Holding a client while its backend wakes: its bytes are read and kept (up
 * to a bound), so that a client that leaves is noticed at once, and a client
 * that speaks first can be told from one that only connects; the bytes reach
 * the backend first, intact, when the hold ends.
 *
 * @module
 */

import type { Stream } from "./forward.ts";

/** Bytes kept for a held client; past them it is no longer read (the kernel holds the rest). */
const HOLD_LIMIT_BYTES = 64 * 1024;
/** The buffer each read of a held client fills. */
const READ_BYTES = 4 * 1024;

/** A client connection that is read, and kept, while it waits. */
export class ClientHold implements Stream {
  readonly #conn: Deno.Conn;
  readonly #chunks: Uint8Array[] = [];
  #held = 0;
  /** The read under way, if any: it belongs to whoever reads next. */
  #pending?: Promise<void>;
  #ended = false;
  #error?: Error;
  #holding = true;
  /** Whether the client has sent a byte (whoever has read it since). */
  #sent = false;
  readonly #data = Promise.withResolvers<void>();
  readonly #gone = Promise.withResolvers<string>();

  /**
   * Starts reading `conn` and keeping what it sends, after `first`: bytes
   * read from it already (the first bytes of a port routed by name).
   */
  constructor(conn: Deno.Conn, first?: Uint8Array) {
    this.#conn = conn;
    if (first && first.length > 0) {
      this.#chunks.push(first);
      this.#held = first.length;
      this.#sent = true;
      this.#data.resolve();
    }
    this.#readAhead();
  }

  /** Resolves once the client has sent its first byte. */
  get data(): Promise<void> {
    return this.#data.promise;
  }

  /**
   * Resolves, with why, when the client has left while held: it closed its
   * side before sending anything (nothing to forward), or its connection
   * broke. A client that sent bytes and then closed its side is not gone: the
   * bytes are forwarded and the half-close passed on.
   */
  get gone(): Promise<string> {
    return this.#gone.promise;
  }

  /**
   * Ends the hold: no more reading ahead. Reads then return the held bytes,
   * the read under way, and go to the connection itself after that.
   */
  release(): this {
    this.#holding = false;
    return this;
  }

  /** Reads the held bytes first, then the read under way, then the connection itself. */
  async read(buffer: Uint8Array): Promise<number | null> {
    if (this.#chunks.length === 0 && this.#pending) await this.#pending;
    const chunk = this.#chunks.shift();
    if (chunk === undefined) {
      if (this.#error) throw this.#error;
      return this.#ended ? null : await this.#conn.read(buffer);
    }
    const n = Math.min(chunk.length, buffer.length);
    buffer.set(chunk.subarray(0, n));
    if (n < chunk.length) this.#chunks.unshift(chunk.subarray(n));
    this.#held -= n;
    return n;
  }

  /** Writes to the client. */
  write(chunk: Uint8Array): Promise<number> {
    return this.#conn.write(chunk);
  }

  /** Half-closes the client's side. */
  closeWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }

  /** Closes the client. */
  close(): void {
    this.#conn.close();
  }

  /** Reads while held, one read at a time, until the bound, the end, or an error. */
  #readAhead() {
    if (!this.#holding || this.#held >= HOLD_LIMIT_BYTES || this.#ended || this.#error) return;
    const buffer = new Uint8Array(READ_BYTES);
    const pending = this.#conn.read(buffer).then(
      (n) => {
        this.#pending = undefined;
        if (n === null) {
          this.#ended = true;
          if (!this.#sent) this.#gone.resolve("it closed the connection before sending anything");
          return;
        }
        const chunk = buffer.subarray(0, n);
        this.#chunks.push(chunk);
        this.#held += n;
        this.#sent = true;
        this.#data.resolve();
        this.#readAhead();
      },
      (error: Error) => {
        this.#pending = undefined;
        this.#error = error;
        this.#gone.resolve(`its connection broke: ${error.message}`);
      },
    );
    this.#pending = pending;
  }
}
