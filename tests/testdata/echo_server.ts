/**
 * A test backend: listens on 127.0.0.1:PORT and echoes every connection's
 * bytes back, passing on the client's half-close. Writes its pid to PIDFILE
 * when given. With `once`, it accepts one connection, stops listening (later
 * connections are refused) and exits when that one ends.
 * Usage: deno run -A echo_server.ts PORT [PIDFILE] [once]
 */
const [port, pidfile, mode] = Deno.args;
const listener = Deno.listen({ hostname: "127.0.0.1", port: Number(port) });
if (pidfile) Deno.writeTextFileSync(pidfile, `${Deno.pid}\n`);
for await (const conn of listener) {
  if (mode === "once") listener.close();
  (async () => {
    const buffer = new Uint8Array(256 * 1024);
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
  })();
}
