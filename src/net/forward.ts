/**
 * Forwarding bytes between a client and its backend, both ways at once.
 *
 * Each direction is a plain `read`/`write` loop (`pump`): only such a loop
 * keeps half-close — `readable.pipeTo()` closes the whole connection at the
 * reader's end of stream and loses the reply. A write finishes before the next
 * read starts, so a slow reader holds back its writer (backpressure) and memory
 * stays bounded by one buffer per direction.
 *
 * @module
 */

/** Smallest read buffer: an idle connection holds no more than this per direction. */
const FIRST_BUFFER_BYTES = 4 * 1024;
/** Largest read buffer, reached by growing ×4 each time a read fills the buffer. */
const LAST_BUFFER_BYTES = 256 * 1024;

/** Bytes moved by {@linkcode forward}, per direction. */
export interface ForwardResult {
  /** Bytes read from the client and written to the backend. */
  clientToBackend: number;
  /** Bytes read from the backend and written to the client. */
  backendToClient: number;
  /** The first error that broke the connection, if any (e.g. a reset). */
  error?: unknown;
}

/** Called after every chunk forwarded, with its direction and size. */
export type OnBytes = (direction: "clientToBackend" | "backendToClient", bytes: number) => void;

/**
 * Forwards bytes between `client` and `backend` until both directions end,
 * then closes both connections.
 *
 * The end of one direction (EOF) is passed on as a half-close (`closeWrite`)
 * while the other direction keeps flowing. An error in either direction
 * closes both connections. Never throws: the first error is in the result.
 */
export async function forward(
  client: Deno.Conn,
  backend: Deno.Conn,
  onBytes?: OnBytes,
): Promise<ForwardResult> {
  const result: ForwardResult = { clientToBackend: 0, backendToClient: 0 };
  const closeBoth = (error: unknown) => {
    result.error ??= error;
    closeQuietly(client);
    closeQuietly(backend);
  };
  const count = (direction: "clientToBackend" | "backendToClient") => (bytes: number) => {
    result[direction] += bytes;
    onBytes?.(direction, bytes);
  };
  await Promise.all([
    pump(client, backend, count("clientToBackend")).catch(closeBoth),
    pump(backend, client, count("backendToClient")).catch(closeBoth),
  ]);
  closeQuietly(client);
  closeQuietly(backend);
  return result;
}

/**
 * Copies `src` to `dst` until `src` ends, then half-closes `dst`.
 * Throws on a read or write error.
 */
async function pump(src: Deno.Conn, dst: Deno.Conn, counted: (bytes: number) => void) {
  let buffer = new Uint8Array(FIRST_BUFFER_BYTES);
  while (true) {
    const read = await src.read(buffer);
    if (read === null) break;
    await writeAll(dst, buffer.subarray(0, read));
    counted(read);
    if (read === buffer.length && buffer.length < LAST_BUFFER_BYTES) {
      buffer = new Uint8Array(buffer.length * 4);
    }
  }
  await dst.closeWrite().catch(ignoreClosed);
}

/** Writes every byte of `chunk`, looping over short writes. */
export async function writeAll(conn: Deno.Conn, chunk: Uint8Array) {
  let written = 0;
  while (written < chunk.length) {
    written += await conn.write(chunk.subarray(written));
  }
}

/** Closes a connection or listener, ignoring that it may be closed already. */
export function closeQuietly(resource: { close(): void }) {
  try {
    resource.close();
  } catch (error) {
    ignoreClosed(error);
  }
}

/** Swallows the errors that only say a connection is already closed or gone. */
function ignoreClosed(error: unknown) {
  if (
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionReset
  ) {
    return;
  }
  throw error;
}
