/**
 * A client connection whose first bytes were read already (to choose its
 * service by name): reads give them first, then go to the connection.
 *
 * @module
 */

import type { Stream } from "./forward.ts";

/** A connection that reads `first`, then itself. */
export class Prefixed implements Stream {
  readonly #conn: Deno.Conn;
  #first?: Uint8Array;

  /** Reads `first` from `conn` before anything `conn` reads. */
  constructor(conn: Deno.Conn, first: Uint8Array) {
    this.#conn = conn;
    if (first.length > 0) this.#first = first;
  }

  /** Reads what is left of the first bytes, then from the connection. */
  read(buffer: Uint8Array): Promise<number | null> {
    const first = this.#first;
    if (first === undefined) return this.#conn.read(buffer);
    const n = Math.min(first.length, buffer.length);
    buffer.set(first.subarray(0, n));
    this.#first = n < first.length ? first.subarray(n) : undefined;
    return Promise.resolve(n);
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
}
