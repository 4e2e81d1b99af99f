/**
 * The bounded HTTP/1.1 server on real sockets, with short time limits: each
 * phase of a request that takes too long is cut (slowloris), heads and bodies
 * past their caps are answered 431 and 413, malformed requests 400, chunked
 * bodies 411, connections past the cap are closed at once and streams past
 * theirs answered 503; keep-alive, pipelining and HEAD work.
 */
import assert from "node:assert/strict";
import { HttpServer } from "../src/net/http_server.ts";
import { HttpSlots } from "../src/net/http_slots.ts";
import { bounded } from "./_helpers.ts";
import { readAll, text, writeAll } from "./_net.ts";

/** Short limits, so that the time limits are reached in a test; the sizes are the defaults'. */
const LIMITS = { headMs: 300, bodyMs: 300, idleMs: 300, writeMs: 300 };

/** A server answering `hello PATH` (and streaming at /live) on 127.0.0.1, and its slots. */
function startServer(caps = { connection: 8, stream: 2 }) {
  const slots = new HttpSlots(caps);
  const streams: ReadableStreamDefaultController<Uint8Array>[] = [];
  const server = new HttpServer({ hostname: "127.0.0.1", port: 0 }, (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/live") {
      return new Response(
        new ReadableStream<Uint8Array>({
          start: (controller) => {
            streams.push(controller);
            controller.enqueue(new TextEncoder().encode("event: hello\n\n"));
          },
        }),
        { headers: { "content-type": "text/event-stream" } },
      );
    }
    if (path === "/echo") return request.text().then((body) => new Response(`got ${body}`));
    if (path === "/throw") throw new Error("boom");
    return new Response(`hello ${path}`);
  }, { slots, limits: LIMITS });
  return { server, slots, streams, port: server.addr.port };
}

async function connect(port: number): Promise<Deno.TcpConn> {
  return await Deno.connect({ hostname: "127.0.0.1", port });
}

async function send(conn: Deno.Conn, data: string): Promise<void> {
  await writeAll(conn, new TextEncoder().encode(data));
}

/** Everything the server sends until it closes the connection. */
async function untilClosed(conn: Deno.Conn): Promise<string> {
  try {
    return text(await bounded(readAll(conn), "the server to close the connection"));
  } finally {
    conn.close();
  }
}

/** Reads from `conn` until `count` whole answers (head and body by Content-Length) are in. */
async function answers(conn: Deno.Conn, count: number): Promise<string[]> {
  let data = "";
  const buffer = new Uint8Array(4096);
  const found: string[] = [];
  while (found.length < count) {
    const n = await bounded(conn.read(buffer), "an answer");
    if (n === null) throw new Error(`closed after ${found.length} answers: ${data}`);
    data += text(buffer.subarray(0, n));
    while (true) {
      const end = data.indexOf("\r\n\r\n");
      const length = Number(/content-length: (\d+)/.exec(data.slice(0, end))?.[1] ?? NaN);
      if (end < 0 || data.length < end + 4 + length) break;
      found.push(data.slice(0, end + 4 + length));
      data = data.slice(end + 4 + length);
    }
  }
  return found;
}

const GET = (path: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: a\r\n${extra}\r\n`;

Deno.test("keep-alive serves several requests on one connection, pipelined too, and HEAD has no body", async () => {
  const { server, port } = startServer();
  const conn = await connect(port);
  try {
    await send(conn, GET("/a") + GET("/b"));
    const [a, b] = await answers(conn, 2);
    assert.match(a, /^HTTP\/1\.1 200 OK\r\n[^]*connection: keep-alive[^]*\r\n\r\nhello \/a$/);
    assert.match(b, /\r\n\r\nhello \/b$/);
    // HEAD: GET's length, and no body: the next answer follows its head at once.
    await send(conn, `HEAD /c HTTP/1.1\r\nHost: a\r\n\r\n` + GET("/e"));
    let both = "";
    const buffer = new Uint8Array(4096);
    while (!both.endsWith("hello /e")) {
      const n = await bounded(conn.read(buffer), "the answers to HEAD and GET");
      if (n === null) throw new Error(`closed after: ${both}`);
      both += text(buffer.subarray(0, n));
    }
    assert.match(
      both,
      /^HTTP\/1\.1 200 OK\r\n[^]*content-length: 8\r\n[^]*?\r\n\r\nHTTP\/1\.1 200 OK/,
    );
    await send(conn, `POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcde`);
    const [echo] = await answers(conn, 1);
    assert.match(echo, /\r\n\r\ngot abcde$/);
    await send(conn, GET("/d", "Connection: close\r\n"));
    assert.match(await untilClosed(conn), /connection: close[^]*hello \/d$/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("each phase that takes too long is cut: the head (slowloris), the body, an idle keep-alive", async () => {
  const { server, slots, port } = startServer();
  try {
    // Nothing at all, then a head sent a byte at a time: both cut without an answer.
    const silent = await connect(port);
    const trickle = await connect(port);
    const trickling = (async () => {
      for (const byte of "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: 1") {
        await send(trickle, byte).catch(() => {});
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    assert.equal(await untilClosed(silent), "");
    assert.equal(await untilClosed(trickle), "");
    await trickling;
    // A body that never comes in full.
    const body = await connect(port);
    await send(body, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    assert.equal(await untilClosed(body), "");
    // A kept-alive connection that asks nothing more.
    const idle = await connect(port);
    await send(idle, GET("/x"));
    assert.match(await untilClosed(idle), /hello \/x$/);
    await waitForSlots(slots, 0);
  } finally {
    await server.shutdown();
  }
});

Deno.test("bad requests are answered with their status and the connection closed", async () => {
  const { server, port } = startServer();
  const ask = async (request: string) => {
    const conn = await connect(port);
    await send(conn, request);
    return await untilClosed(conn);
  };
  try {
    const big = await ask(`GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${"x".repeat(40_000)}\r\n\r\n`);
    assert.match(big, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n[^]*"error":/);
    const body = await ask("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 50000000\r\n\r\n");
    assert.match(body, /^HTTP\/1\.1 413 Content Too Large\r\n[^]*may hold 8192 bytes/);
    const chunked = await ask(
      "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
    );
    assert.match(chunked, /^HTTP\/1\.1 411 Length Required\r\n/);
    assert.match(await ask("GET / HTTP/1.1\r\n\r\n"), /^HTTP\/1\.1 400 [^]*one Host header/);
    assert.match(await ask("BLAH\r\n\r\n"), /^HTTP\/1\.1 400 [^]*request line/);
    assert.match(await ask("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n"), /^HTTP\/1\.1 400 /);
    assert.match(
      await ask("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\nab"),
      /^HTTP\/1\.1 400 [^]*Content-Length must be one number/,
    );
    // A handler that throws answers 500 and the server goes on.
    assert.match(await ask(GET("/throw", "Connection: close\r\n")), /^HTTP\/1\.1 500 /);
    assert.match(await ask(GET("/after", "Connection: close\r\n")), /hello \/after$/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("connections past the cap are closed at once, streams past theirs answered 503", async () => {
  const { server, slots, streams, port } = startServer({ connection: 4, stream: 2 });
  const open: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const conn = await connect(port);
      await send(conn, GET("/live"));
      const buffer = new Uint8Array(1024);
      const n = await bounded(conn.read(buffer), "the stream's head");
      assert.match(text(buffer.subarray(0, n!)), /^HTTP\/1\.1 200 OK\r\n[^]*text\/event-stream/);
      open.push(conn);
    }
    const third = await connect(port);
    await send(third, GET("/live"));
    assert.match(
      await untilClosed(third),
      /^HTTP\/1\.1 503 [^]*Too many live streams are open \(2\)/,
    );
    // Two streams and two idle connections fill the four slots: a fifth is closed unanswered.
    for (let i = 0; i < 2; i++) open.push(await connect(port));
    await waitForSlots(slots, 4);
    const fifth = await connect(port);
    await send(fifth, GET("/x")).catch(() => {});
    assert.equal(await untilClosed(fifth), "");
    // A stream whose source ends closes its connection; a client that leaves ends its stream.
    streams[0].close();
    await untilClosed(open.shift()!); // bounded: fails if the server keeps it open
    open.shift()!.close();
    await bounded(
      (async () => {
        while (slots.held("stream") > 0) await new Promise((resolve) => setTimeout(resolve, 10));
      })(),
      "the streams to be released",
    );
  } finally {
    for (const conn of open) conn.close();
    await server.shutdown();
  }
});

/** Waits (bounded) until the server holds `count` connections. */
async function waitForSlots(slots: HttpSlots, count: number): Promise<void> {
  await bounded(
    (async () => {
      while (slots.held("connection") !== count) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })(),
    `${count} connections held`,
  );
}
