/**
 * A one-shot HTTP backend for the demo: answers one request, then exits.
 *
 * It stands in for the seed's `echo ... | nc -l -p 8080 -w 1`, so that every request
 * through sleepingd after the backend went away shows a wake:
 *
 * ```sh
 * deno run --allow-net examples/demo/oneshot.ts 8080 "Response from the demo"
 * ```
 *
 * It listens on 127.0.0.1:PORT, accepts one connection, reads the request (up to the end
 * of the HTTP headers, a second of silence or 64 KiB), answers `HTTP/1.0 200 OK` with
 * `TEXT: <date>` (TEXT defaults to "Response from PORT") and exits. If nobody connects
 * within 10 seconds it exits anyway, with code 1, so it never lingers.
 *
 * @module
 */

/** How long to wait for the one connection before giving up. */
const ACCEPT_TIMEOUT_MS = 10_000;
/** A client that sends nothing more for this long has sent its whole request. */
const SILENCE_MS = 1_000;
/** The most of a request that is read; the rest is ignored. */
const MAX_REQUEST_BYTES = 64 * 1024;
/** Ends the HTTP headers (a GET has no body to wait for). */
const END_OF_HEADERS = /\r?\n\r?\n/;

/** Reads the request until the headers end, the client goes silent or the bound is hit. */
async function readRequest(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(4096);
  const decoder = new TextDecoder();
  let request = "";
  let total = 0;
  while (total < MAX_REQUEST_BYTES && !END_OF_HEADERS.test(request)) {
    const read = conn.read(buffer);
    // A read left pending at the timeout fails when the connection closes: ignore it.
    read.catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const silence = new Promise<"silence">((resolve) => {
      timer = setTimeout(() => resolve("silence"), SILENCE_MS);
    });
    const count = await Promise.race([read, silence]).finally(() => clearTimeout(timer));
    if (count === null || count === "silence") return;
    total += count;
    request += decoder.decode(buffer.subarray(0, count), { stream: true });
  }
}

/** Writes all of `bytes`, however many calls it takes. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/** Parses the arguments, serves one connection and returns the exit code. */
async function main(args: string[]): Promise<number> {
  const port = Number(args[0]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error("Usage: oneshot.ts PORT [TEXT]   (PORT from 1 to 65535)");
    return 2;
  }
  const prefix = args[1] ?? `Response from ${port}`;
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => listener.close(), ACCEPT_TIMEOUT_MS);
  let conn: Deno.Conn;
  try {
    conn = await listener.accept();
  } catch {
    console.error(`oneshot: nobody connected to port ${port} within 10 seconds`);
    return 1;
  } finally {
    clearTimeout(timer);
  }
  listener.close();
  try {
    await readRequest(conn);
    const body = `${prefix}: ${new Date().toUTCString()}\n`;
    const response = "HTTP/1.0 200 OK\r\n" +
      "Content-Type: text/plain\r\n" +
      `Content-Length: ${new TextEncoder().encode(body).length}\r\n` +
      "Connection: close\r\n" +
      "\r\n" +
      body;
    await writeAll(conn, new TextEncoder().encode(response));
    return 0;
  } catch (error) {
    console.error(`oneshot: cannot answer the client: ${(error as Error).message}`);
    return 1;
  } finally {
    conn.close();
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
