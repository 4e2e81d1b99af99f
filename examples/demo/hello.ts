/**
 * A small web server that stays up, for the README's "your own service":
 * sleepingd starts it in the background when a client connects and stops it
 * (by its pidfile) once it has been idle.
 *
 * ```sh
 * deno run --allow-net examples/demo/hello.ts 8001
 * ```
 *
 * It listens on 127.0.0.1:PORT and answers every request with `Hello from
 * PORT: <date>`, until it is killed.
 *
 * @module
 */

if (import.meta.main) {
  const port = Number(Deno.args[0]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error("Usage: hello.ts PORT   (PORT from 1 to 65535)");
    Deno.exit(2);
  }
  Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, () => {
    return new Response(`Hello from ${port}: ${new Date().toUTCString()}\n`);
  });
}
