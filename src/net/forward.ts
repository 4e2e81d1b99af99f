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
 * small buffer of its own; a read that fills it means more is waiting, and the
 * direction borrows a large buffer from a shared pool until a read comes back
 * short (the socket is drained), when it gives the large one back. So after a
 * burst an idle SSH or database session holds only the small buffers again.
 *
 * @module
 */

import { closeQuietly, isClosedError, writeAll } from "./conn.ts";

/** The buffer a direction holds while it waits for bytes: what an idle connection costs. */
const SMALL_BUFFER_BYTES = 4 * 1024;
/** The buffer a direction borrows while bytes keep coming. */
const LARGE_BUFFER_BYTES = 256 * 1024;
/** Large buffers kept for reuse when no direction borrows them (at most 4 MiB). */
const POOL_LIMIT = 16;

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
export async function forward(
  client: Stream,
  backend: Stream,
  onBytes?: OnBytes,
): Promise<ForwardResult> {
  const result: ForwardResult = { bytesIn: 0, bytesOut: 0 };
  const fail = (error: unknown) => {
    result.error ??= error;
    closeQuietly(client);
    closeQuietly(backend);
  };
  const count = (direction: Direction) => {
    const field = direction === "in" ? "bytesIn" : "bytesOut";
    return (bytes: number) => {
      result[field] += bytes;
      onBytes?.(direction, bytes);
    };
  };
  const writeClosed = new Set<Stream>();
  await Promise.all([
    pump(client, backend, count("in"), writeClosed).catch(fail),
    pump(backend, client, count("out"), writeClosed).catch(fail),
  ]);
  closeQuietly(client);
  closeQuietly(backend);
  return result;
}

/**
 * Copies `src` to `dst` until `src` ends, then half-closes `dst` (and notes
 * it in `writeClosed`). Throws on a read or write error, and when the end of
 * `src` was a reset rather than a FIN.
 */
async function pump(
  src: Stream,
  dst: Stream,
  counted: (bytes: number) => void,
  writeClosed: Set<Stream>,
) {
  const small = new Uint8Array(SMALL_BUFFER_BYTES);
  let large: Uint8Array | undefined;
  try {
    while (true) {
      const buffer = large ?? small;
      const read = await src.read(buffer);
      if (read === null) break;
      await writeAll(dst, buffer.subarray(0, read));
      counted(read);
      if (read === buffer.length) {
        large ??= borrowLarge();
      } else if (large) {
        giveBack(large);
        large = undefined;
      }
    }
  } finally {
    if (large) giveBack(large);
  }
  if (!writeClosed.has(src)) await throwIfReset(src);
  writeClosed.add(dst);
  await dst.closeWrite().catch((error) => {
    if (!isClosedError(error)) throw error;
  });
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

/** Large buffers no direction uses now. */
const pool: Uint8Array[] = [];
/** Large buffers directions hold now. */
let borrowed = 0;

function borrowLarge(): Uint8Array {
  borrowed++;
  return pool.pop() ?? new Uint8Array(LARGE_BUFFER_BYTES);
}

function giveBack(buffer: Uint8Array) {
  borrowed--;
  if (pool.length < POOL_LIMIT) pool.push(buffer);
}

/** The large buffers of all forwarding in this process: held by a direction, or pooled. */
export function largeBuffers(): { borrowed: number; pooled: number; bytesEach: number } {
  return { borrowed, pooled: pool.length, bytesEach: LARGE_BUFFER_BYTES };
}
