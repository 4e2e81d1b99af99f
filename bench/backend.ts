/**
 * The bench's backend: an echo/sink server on 127.0.0.1 (see `protocol.ts`).
 *
 * Run as its own process so it does not share the bench client's event loop:
 * `deno run --allow-net bench/backend.ts [PORT]`. It prints its port on the first
 * stdout line once it listens, and exits when its stdin ends, so it never
 * outlives the bench that started it.
 *
 * @module
 */

import { ECHO, LENGTH_BYTES, SINK, writeAll } from "./protocol.ts";

/** Read buffer per connection: large reads keep the per-byte overhead low. */
const BUFFER_BYTES = 256 * 1024;

/** Serves one connection in the mode its header byte picks. */
async function serve(conn: Deno.TcpConn): Promise<void> {
  const buffer = new Uint8Array(BUFFER_BYTES);
  try {
    conn.setNoDelay(true);
    const first = await conn.read(buffer);
    if (first === null || first === 0) return;
    const mode = buffer[0];
    const rest = buffer.subarray(1, first);
    if (mode === SINK) await sink(conn, buffer, rest.slice());
    else if (mode === ECHO) await echo(conn, buffer, rest);
  } catch {
    // A reset by the client or the proxy ends this connection, nothing else.
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

/** Reads the length, discards that many bytes, then answers how many it got. */
async function sink(conn: Deno.Conn, buffer: Uint8Array, rest: Uint8Array): Promise<void> {
  let head = rest;
  while (head.length < LENGTH_BYTES) {
    const read = await conn.read(buffer);
    if (read === null) return;
    head = new Uint8Array([...head, ...buffer.subarray(0, read)]);
  }
  const length = Number(new DataView(head.buffer, head.byteOffset).getBigUint64(0));
  let total = head.length - LENGTH_BYTES;
  while (total < length) {
    const read = await conn.read(buffer);
    if (read === null) break;
    total += read;
  }
  await writeAll(conn, new TextEncoder().encode(`${total}\n`));
}

/** Sends every byte back until the client's end of stream, then half-closes. */
async function echo(conn: Deno.Conn, buffer: Uint8Array, rest: Uint8Array): Promise<void> {
  if (rest.length > 0) await writeAll(conn, rest);
  while (true) {
    const read = await conn.read(buffer);
    if (read === null) break;
    await writeAll(conn, buffer.subarray(0, read));
  }
  await conn.closeWrite();
}

if (import.meta.main) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: Number(Deno.args[0] ?? 0) });
  console.log((listener.addr as Deno.NetAddr).port);
  // Exit when the bench goes away, even if it was killed without cleaning up.
  Deno.stdin.readable.pipeTo(new WritableStream()).finally(() => Deno.exit(0));
  while (true) {
    let conn: Deno.TcpConn;
    try {
      conn = await listener.accept();
    } catch (error) {
      // A connection reset while it waited in the accept queue (a readiness probe,
      // a proxy that stops) fails this accept only; any other error ends the backend.
      if (error instanceof Deno.errors.BadResource) throw error;
      continue;
    }
    serve(conn);
  }
}
