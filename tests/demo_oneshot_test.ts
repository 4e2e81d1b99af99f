/**
 * The demo backend `examples/demo/oneshot.ts`, run as a real process.
 */
import assert from "node:assert/strict";
import { REPO } from "./_helpers.ts";
import { freePort, readAll } from "./_net.ts";

/** Starts the oneshot backend on `port`; the caller awaits its status. */
function startOneshot(port: number, text?: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-net",
      `${REPO}examples/demo/oneshot.ts`,
      String(port),
      ...(text === undefined ? [] : [text]),
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  }).spawn();
}

/** Connects to 127.0.0.1:port, retrying for up to 10 seconds while the backend starts. */
async function connectSoon(port: number): Promise<Deno.TcpConn> {
  const deadline = Date.now() + 10_000;
  while (true) {
    try {
      return await Deno.connect({ hostname: "127.0.0.1", port });
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`Nothing listens on port ${port} after 10s`);
      if (!(error instanceof Deno.errors.ConnectionRefused)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** Sends `request`, reads the whole answer and checks the backend then exits 0. */
async function exchange(child: Deno.ChildProcess, port: number, request: string) {
  const conn = await connectSoon(port);
  await conn.write(new TextEncoder().encode(request));
  const answer = new TextDecoder().decode(await readAll(conn));
  conn.close();
  const { code } = await child.status;
  const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
  assert.equal(stderr, "");
  assert.equal(code, 0);
  return answer;
}

Deno.test("oneshot.ts answers one HTTP request and exits", async () => {
  const port = freePort();
  const answer = await exchange(startOneshot(port), port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  const [head, body] = answer.split("\r\n\r\n");
  assert.match(body, new RegExp(`^Response from ${port}: .+ GMT\\n$`));
  assert.equal(
    head,
    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n" +
      `Content-Length: ${body.length}\r\nConnection: close`,
  );
  await assert.rejects(
    Deno.connect({ hostname: "127.0.0.1", port }),
    Deno.errors.ConnectionRefused,
  );
});

Deno.test("oneshot.ts answers after a second of silence, with the given text", async () => {
  const port = freePort();
  const answer = await exchange(startOneshot(port, "Hello"), port, "not http");
  assert.match(answer, /\r\n\r\nHello: .+ GMT\n$/);
});
