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
 * small buffer (1 KiB). A read that fills its buffer means more is waiting, and
 * the direction borrows a larger one: 16 KiB, then 256 KiB (at once when its
 * last burst filled more than 16 KiB); a read that comes back short (the
 * socket is drained) gives the borrowed one back. So a small answer costs no
 * large buffer, a stream gets the large one, and after a burst an idle SSH or
 * database session holds only its small buffers again. Every buffer comes from
 * a pool, so that a connection allocates none while the daemon is busy; the
 * pools shrink when it is quiet ({@linkcode trimForwardBuffers}).
 *
 * @module
 */

import { closeQuietly, isClosedError, writeAll } from "./conn.ts";

/** The buffer a direction holds while it waits for bytes: what an idle connection costs. */
const SMALL_BUFFER_BYTES = 1024;
/** The buffer a direction borrows when its small one fills: an answer of a few KiB. */
const MEDIUM_BUFFER_BYTES = 16 * 1024;
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
    const small = pools.small.borrow();
    /** A medium or large buffer, while bytes keep coming. */
    let borrowed: Uint8Array | undefined;
    /** Whether the last burst filled more than a medium buffer. */
    let streaming = false;
    try {
      while (true) {
        const buffer = borrowed ?? small;
        const read = await src.read(buffer);
        if (read === null) break;
        await writeAll(dst, buffer.subarray(0, read));
        this.#count(direction, read);
        if (read === buffer.length) {
          if (buffer.length === LARGE_BUFFER_BYTES) continue;
          const larger = buffer === small && !streaming ? pools.medium : pools.large;
          if (borrowed) poolOf(borrowed).giveBack(borrowed);
          borrowed = larger.borrow();
        } else {
          streaming = read > MEDIUM_BUFFER_BYTES;
          if (borrowed) poolOf(borrowed).giveBack(borrowed);
          borrowed = undefined;
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
      pools.small.giveBack(small);
      if (borrowed) poolOf(borrowed).giveBack(borrowed);
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
 * a connection allocates none: as many as were held at once, until
 * {@linkcode trimForwardBuffers}.
 */
class BufferPool {
  readonly #free: Uint8Array[] = [];
  #borrowed = 0;

  /** Creates a pool of buffers of `bytesEach`, keeping `keepWhenQuiet` once trimmed. */
  constructor(readonly bytesEach: number, readonly keepWhenQuiet: number) {}

  /** A buffer of the pool's size, reused or new. */
  borrow(): Uint8Array {
    this.#borrowed++;
    return this.#free.pop() ?? new Uint8Array(this.bytesEach);
  }

  /** Gives back a buffer from {@linkcode borrow} once nothing reads into it. */
  giveBack(buffer: Uint8Array) {
    this.#borrowed--;
    this.#free.push(buffer);
  }

  /** Leaves the garbage collector what is kept beyond `keepWhenQuiet`. */
  trim() {
    if (this.#free.length > this.keepWhenQuiet) this.#free.length = this.keepWhenQuiet;
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

/** Every size of buffer forwarding uses, each with its pool. */
const pools = {
  small: new BufferPool(SMALL_BUFFER_BYTES, 256),
  medium: new BufferPool(MEDIUM_BUFFER_BYTES, 16),
  large: new BufferPool(LARGE_BUFFER_BYTES, 4),
};

function poolOf(buffer: Uint8Array): BufferPool {
  return buffer.length === LARGE_BUFFER_BYTES ? pools.large : pools.medium;
}

/** The buffers of all forwarding in this process, by size: held by a direction, or pooled. */
export function forwardBuffers(): Record<keyof typeof pools, BufferUsage> {
  return {
    small: pools.small.usage(),
    medium: pools.medium.usage(),
    large: pools.large.usage(),
  };
}

/**
 * Shrinks the pools to a few buffers of each size (256 small, 16 medium, 4
 * large): while busy they keep every buffer given back, as many as were held
 * at once; the daemon calls this once it is quiet.
 */
export function trimForwardBuffers(): void {
  for (const pool of Object.values(pools)) pool.trim();
}
