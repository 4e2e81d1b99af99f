/**
 * A test backend: listens on 127.0.0.1:PORT and echoes every connection's
 * bytes back, passing on the client's half-close. Writes its pid to PIDFILE
 * when given. Usage: deno run -A echo_server.ts PORT [PIDFILE]
 *
 * @module
 */

/** Echoes `conn` until its end, passes the half-close on, and closes it. */
export async function echo(conn: Deno.Conn, bufferBytes = 256 * 1024): Promise<void> {
  const buffer = new Uint8Array(bufferBytes);
  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      let written = 0;
      while (written < n) written += await conn.write(buffer.subarray(written, n));
    }
    await conn.closeWrite();
  } catch {
    // The client went away.
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

if (import.meta.main) {
  const [port, pidfile] = Deno.args;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: Number(port) });
  if (pidfile) Deno.writeTextFileSync(pidfile, `${Deno.pid}\n`);
  for await (const conn of listener) echo(conn);
}
