/**
 * Forwarding bytes between a client and its backend, both ways at once.
 *
 * Each direction is a plain `read`/`write` loop (`pump`): only such a loop
 * keeps half-close — `readable.pipeTo()` closes the whole connection at the
 * reader's end of stream and loses the reply. A write finishes before the next
 * read starts, so a slow reader holds back its writer (backpressure) and memory
 * stays bounded by one buffer per direction.
 *
 * Buffers follow the traffic: a quiet direction waits for its next bytes in a
 * small buffer (1 KiB); a read that fills it means more is waiting, and the
 * direction borrows a large buffer (256 KiB) until a read comes back short
 * (the socket is drained), when it gives the large one back. So after a burst
 * an idle SSH or database session holds only the small buffers again. Both
 * sizes come from pools, so that a connection allocates no buffer.
 *
 * @module
 */

import { closeQuietly, isClosedError, writeAll } from "./conn.ts";

/** The buffer a direction holds while it waits for bytes: what an idle connection costs. */
const SMALL_BUFFER_BYTES = 1024;
/** The buffer a direction borrows while bytes keep coming. */
const LARGE_BUFFER_BYTES = 256 * 1024;

/**
 * Which way bytes go, in every count sleepingd keeps (forward results,
 * status, metrics, logs): `in` from the client to the backend, `out` from
 * the backend to the client.
 */
export type Direction = "in" | "out";

/** What forwarding needs of a connection: a client may be a held one (`hold.ts`). */
export type Stream = Pick<Deno.Conn, "read" | "write" | "closeWrite" | "close">;

/** Bytes moved by {@linkcode forward}, per direction. */
export interface ForwardResult {
  /** Bytes read from the client and written to the backend. */
  bytesIn: number;
  /** Bytes read from the backend and written to the client. */
  bytesOut: number;
  /** The first error that broke the connection, if any (e.g. a reset). */
  error?: unknown;
}

/** Called after every chunk forwarded, with its direction and size. */
export type OnBytes = (direction: Direction, bytes: number) => void;

/**
 * Forwards bytes between `client` and `backend` until both directions end,
 * then closes both connections.
 *
 * The end of one direction (EOF) is passed on as a half-close (`closeWrite`)
 * while the other direction keeps flowing. An error in either direction
 * closes both connections. Never throws: the first error is in the result.
 */
export function forward(
  client: Stream,
  backend: Stream,
  onBytes?: OnBytes,
): Promise<ForwardResult> {
  return new Forwarding(client, backend, onBytes).run();
}

/**
 * One connection's forwarding. A class rather than closures: thousands of
 * quiet connections each hold one, and every closure, promise and suspended
 * function they hold counts (docs/ARCHITECTURE.md, "Performance").
 */
class Forwarding {
  readonly #client: Stream;
  readonly #backend: Stream;
  readonly #onBytes?: OnBytes;
  readonly #result: ForwardResult = { bytesIn: 0, bytesOut: 0 };
  /** The socket the direction that ended first half-closed. */
  #halfClosed?: Stream;

  constructor(client: Stream, backend: Stream, onBytes?: OnBytes) {
    this.#client = client;
    this.#backend = backend;
    this.#onBytes = onBytes;
  }

  async run(): Promise<ForwardResult> {
    const inbound = this.#pump(this.#client, this.#backend, "in");
    const outbound = this.#pump(this.#backend, this.#client, "out");
    // Neither rejects; awaited one after the other, the connection holds one waiting promise.
    await inbound;
    await outbound;
    closeQuietly(this.#client);
    closeQuietly(this.#backend);
    return this.#result;
  }

  /**
   * Copies `src` to `dst` until `src` ends, then half-closes `dst`. On a read
   * or write error, or when the end of `src` was a reset rather than a FIN,
   * keeps the error and closes both connections.
   */
  async #pump(src: Stream, dst: Stream, direction: Direction) {
    const small = smallBuffers.borrow();
    let large: Uint8Array | undefined;
    try {
      while (true) {
        const buffer = large ?? small;
        const read = await src.read(buffer);
        if (read === null) break;
        await writeAll(dst, buffer.subarray(0, read));
        this.#count(direction, read);
        if (read === buffer.length) {
          large ??= largeBuffers.borrow();
        } else if (large) {
          largeBuffers.giveBack(large);
          large = undefined;
        }
      }
      if (this.#halfClosed !== src) await throwIfReset(src);
      this.#halfClosed ??= dst;
      await dst.closeWrite().catch((error) => {
        if (!isClosedError(error)) throw error;
      });
    } catch (error) {
      this.#result.error ??= error;
      closeQuietly(this.#client);
      closeQuietly(this.#backend);
    } finally {
      // Only now: the read that used them has ended.
      smallBuffers.giveBack(small);
      if (large) largeBuffers.giveBack(large);
    }
  }

  #count(direction: Direction, bytes: number) {
    if (direction === "in") this.#result.bytesIn += bytes;
    else this.#result.bytesOut += bytes;
    this.#onBytes?.(direction, bytes);
  }
}

const NO_BYTES = new Uint8Array(0);

/**
 * A read that waited when the peer reset the connection ends as if at a FIN.
 * They differ in what an empty write then says: nothing after a FIN (the
 * socket may still send), a broken pipe after a reset.
 *
 * @throws {Deno.errors.ConnectionReset} when the peer reset the connection
 */
async function throwIfReset(conn: Stream) {
  try {
    await conn.write(NO_BYTES);
  } catch (error) {
    if (!isClosedError(error)) throw error;
    throw new Deno.errors.ConnectionReset("Connection reset by peer", { cause: error });
  }
}

/**
 * Buffers of one size, kept for reuse when no direction holds them, so that
 * a connection allocates none: up to `keep` of them (the rest go to the
 * garbage collector).
 */
class BufferPool {
  readonly #free: Uint8Array[] = [];
  #borrowed = 0;

  /** Creates a pool of buffers of `bytesEach`. */
  constructor(readonly bytesEach: number, readonly keep: number) {}

  /** A buffer of the pool's size, reused or new. */
  borrow(): Uint8Array {
    this.#borrowed++;
    return this.#free.pop() ?? new Uint8Array(this.bytesEach);
  }

  /** Gives back a buffer from {@linkcode borrow} once nothing reads into it. */
  giveBack(buffer: Uint8Array) {
    this.#borrowed--;
    if (this.#free.length < this.keep) this.#free.push(buffer);
  }

  /** How many buffers directions hold, and how many are kept for reuse. */
  usage(): BufferUsage {
    return { borrowed: this.#borrowed, pooled: this.#free.length, bytesEach: this.bytesEach };
  }
}

/** The buffers of one size that all forwarding in this process holds or keeps. */
export interface BufferUsage {
  /** Held by a direction now. */
  borrowed: number;
  /** Kept for reuse. */
  pooled: number;
  /** The size of each, in bytes. */
  bytesEach: number;
}

/** Every direction's own buffer, kept for reuse up to 1 MiB. */
const smallBuffers = new BufferPool(SMALL_BUFFER_BYTES, 1024);
/** The buffers of directions with bytes coming, kept for reuse up to 4 MiB. */
const largeBuffers = new BufferPool(LARGE_BUFFER_BYTES, 16);

/** The buffers of all forwarding in this process: held by a direction, or pooled. */
export function forwardBuffers(): { small: BufferUsage; large: BufferUsage } {
  return { small: smallBuffers.usage(), large: largeBuffers.usage() };
}
