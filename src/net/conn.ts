/**
 * Small helpers every connection user needs: write a whole chunk, close
 * without caring whether it is closed already.
 *
 * @module
 */

/** Writes every byte of `chunk`, looping over short writes. */
export async function writeAll(conn: Pick<Deno.Conn, "write">, chunk: Uint8Array): Promise<void> {
  let written = 0;
  while (written < chunk.length) {
    written += await conn.write(chunk.subarray(written));
  }
}

/**
 * Closes a connection or listener and never throws: closing one that is
 * closed already, or whose peer is gone, is what the caller wanted anyway,
 * and no other error of `close()` leaves anything for the caller to do.
 */
export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Closed already, or closed by the failure itself.
  }
}

/** Whether an error only says that a connection is closed or its peer went away. */
export function isClosedError(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted;
}
