/**
 * The first bytes of a connection on a port routed by name: TLS ClientHellos
 * (built here, and the real ones of curl and openssl s_client) in one record,
 * many records and odd segmentations; HTTP/1.x request heads, well-formed and
 * not; other protocols; and readFirstBytes() on real sockets: a stall, a
 * client that leaves, the size bound.
 */
import assert from "node:assert/strict";
import {
  type FirstBytesOutcome,
  FirstBytesReader,
  MAX_FIRST_BYTES,
  readFirstBytes,
} from "../src/net/first_bytes.ts";
import { type RequestHead, wantsHtml } from "../src/net/http_head.ts";
import { bounded, runProgram } from "./_helpers.ts";
import { listenLocal } from "./_net.ts";
import { serverTest } from "./_servers.ts";
import { clientHello, helloMessage, inRecords } from "./_tls.ts";

const encode = (text: string) => new TextEncoder().encode(text);

/** What the reader says of `bytes` given whole, and given in `pieces` of that size. */
function read(bytes: Uint8Array, pieces = bytes.length): FirstBytesOutcome | undefined {
  const reader = new FirstBytesReader();
  let outcome: FirstBytesOutcome | undefined;
  for (
    let end = Math.min(pieces, bytes.length);
    !outcome;
    end = Math.min(end + pieces, bytes.length)
  ) {
    outcome = reader.update(bytes.subarray(0, end));
    if (end === bytes.length) break;
  }
  return outcome;
}

/** The same outcome whatever the segmentation: whole, byte by byte, 7 by 7, 100 by 100. */
function readEveryWay(bytes: Uint8Array): FirstBytesOutcome | undefined {
  const whole = read(bytes);
  for (const pieces of [1, 7, 100]) assert.deepEqual(read(bytes, pieces), whole, `by ${pieces}`);
  return whole;
}

Deno.test("a ClientHello's server name is read in one record, in many, and byte by byte", () => {
  const message = helloMessage({ name: "app.example.com" });
  for (const size of [16_384, 100, 7, 1]) {
    assert.deepEqual(readEveryWay(inRecords(message, size)), {
      kind: "tls",
      name: "app.example.com",
    });
  }
});

Deno.test("a server name past the first record of 16 KiB is read from the second", () => {
  const hello = clientHello({ name: "late.example.com", before: [[21, new Uint8Array(17_000)]] });
  assert.ok(hello.length > 16_384 + 5 && hello.length < MAX_FIRST_BYTES);
  assert.deepEqual(readEveryWay(hello), { kind: "tls", name: "late.example.com" });
});

Deno.test("a ClientHello is decided once its server_name has come, before the rest", () => {
  const hello = clientHello({ name: "a.test", after: [[21, new Uint8Array(4000)]] });
  const reader = new FirstBytesReader();
  const nameEnds = hello.indexOf(0x74, 100) + "test".length; // the last "t" of a.test, and past it
  assert.deepEqual(reader.update(hello.subarray(0, nameEnds + 1)), { kind: "tls", name: "a.test" });
});

Deno.test("a ClientHello without a server name, or without extensions, says no name", () => {
  assert.deepEqual(readEveryWay(clientHello({ after: [[10, new Uint8Array(8)]] })), {
    kind: "tls",
  });
  const bare = helloMessage();
  // The same message cut before its (empty) extensions: TLS 1.0 allows none at all.
  const short = bare.slice(0, bare.length - 2);
  short[3] -= 2;
  assert.deepEqual(readEveryWay(inRecords(short)), { kind: "tls" });
});

Deno.test("a malformed ClientHello is refused with where it breaks", () => {
  const good = clientHello({ name: "a.test" });
  const cases: [string, Uint8Array, RegExp][] = [
    [
      "application data inside the ClientHello",
      Uint8Array.of(...inRecords(helloMessage().subarray(0, 10)), 0x17, 3, 3, 0, 2, 1, 2),
      /a record of type 23 came before the ClientHello ended/,
    ],
    ["a zero-length record", Uint8Array.of(0x16, 3, 1, 0, 0), /record of 0 bytes/],
    ["a record too large", Uint8Array.of(0x16, 3, 1, 0x48, 1), /record of 18433 bytes/],
    ["SSL 2 version", Uint8Array.of(0x16, 2, 0, 0, 4, 1, 0, 0, 0), /record version 2\.0/],
    ["a ServerHello", inRecords(Uint8Array.of(2, 0, 0, 2, 3, 3)), /first message is of type 2/],
  ];
  const overrun = good.slice();
  overrun[5 + 4 + 2 + 32] = 200; // a session id longer than 32 bytes
  cases.push(["a session id of 200 bytes", overrun, /200 bytes of session id/]);
  const short = good.slice();
  short.set([0, 0, 10], 6); // the handshake claims 10 bytes: it ends in its random
  cases.push(["a message that ends early", short, /ends before its session id/]);
  for (const [what, bytes, reason] of cases) {
    const outcome = readEveryWay(bytes);
    assert.equal(outcome?.kind, "malformed", what);
    assert.match((outcome as { reason: string }).reason, reason, what);
  }
});

/** An HTTP head's outcome. */
function head(text: string): FirstBytesOutcome | undefined {
  return readEveryWay(encode(text));
}

Deno.test("an HTTP/1.x head gives its Host without the port, or the target's authority", () => {
  const of = (text: string) => {
    const outcome = head(text);
    assert.equal(outcome?.kind, "http", text);
    return (outcome as { head: RequestHead }).head;
  };
  assert.equal(of("GET / HTTP/1.1\r\nHost: App.Example.com:8080\r\n\r\n").host, "App.Example.com");
  assert.equal(of("GET / HTTP/1.1\nhost: a.test\n\n").host, "a.test"); // bare LF lines
  assert.equal(of("\r\nGET / HTTP/1.1\r\nHost: a.test\r\n\r\n").host, "a.test");
  assert.equal(of("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n").host, "[::1]");
  assert.equal(of("GET http://b.test:81/x HTTP/1.1\r\nHost: a.test\r\n\r\n").host, "b.test");
  assert.equal(of("GET / HTTP/1.0\r\n\r\n").host, undefined);
  assert.equal(of("GET / HTTP/1.1\r\nHost:\r\n\r\n").host, undefined);
  const browser = of(
    "GET /p?q=1 HTTP/1.1\r\nHost: a.test\r\nAccept: text/html,application/xhtml+xml\r\n" +
      "Accept: */*;q=0.8\r\nUser-Agent: x\r\n\r\nbody",
  );
  assert.deepEqual(browser, {
    method: "GET",
    target: "/p?q=1",
    version: "1.1",
    host: "a.test",
    accept: "text/html,application/xhtml+xml, */*;q=0.8",
    upgrade: false,
  });
  // Undecided until the head ends: its Accept may come after its Host.
  assert.equal(
    new FirstBytesReader().update(encode("GET / HTTP/1.1\r\nHost: a.test\r\n")),
    undefined,
  );
});

Deno.test("a malformed HTTP head is refused, and another protocol is told apart", () => {
  const malformed: [string, RegExp][] = [
    ["GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", /more than one Host/],
    ["GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", /needs a Host/],
    ["GET / HTTP/1.1\r\nHost: a.test\r\n folded\r\n\r\n", /folded/],
    ["GET / HTTP/1.1\r\nHost : a.test\r\n\r\n", /NAME: value/],
    ["GET / HTTP/1.1\r\nHost: a test\r\n\r\n", /not host\[:port\]/],
    ["GET / HTTP/1.1\r\nHost: a.test\r\nX: a\0b\r\n\r\n", /CR or NUL/],
  ];
  for (const [text, reason] of malformed) {
    const outcome = head(text);
    assert.equal(outcome?.kind, "malformed", text);
    assert.match((outcome as { reason: string }).reason, reason);
  }
  const others = [
    "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
    "*1\r\n$4\r\nPING\r\n",
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "GET /\r\n", // HTTP/0.9
  ];
  for (const text of others) assert.equal(head(text)?.kind, "other", text);
  // A PostgreSQL startup packet: binary from its first byte.
  assert.deepEqual(read(Uint8Array.of(0, 0, 0, 8, 4, 210, 22, 47)), {
    kind: "other",
    reason: "its first byte is 0x00",
  });
});

Deno.test("wantsHtml(): a browser's GET or HEAD for a page, not an API call nor a websocket", () => {
  const request = (method: string, accept: string, upgrade = false): RequestHead => ({
    method,
    target: "/",
    version: "1.1",
    host: "a.test",
    accept,
    upgrade,
  });
  const page = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
  assert.equal(wantsHtml(request("GET", page)), true);
  assert.equal(wantsHtml(request("HEAD", "TEXT/HTML")), true);
  assert.equal(wantsHtml(request("GET", "*/*")), false, "curl");
  assert.equal(wantsHtml(request("GET", "application/json")), false);
  assert.equal(wantsHtml(request("GET", "text/html;q=0, */*")), false);
  assert.equal(wantsHtml(request("GET", "text/html;level=1;q=0.5")), true);
  assert.equal(wantsHtml(request("POST", page)), false);
  assert.equal(wantsHtml(request("GET", page, true)), false, "a websocket");
});

/** A connected pair of real sockets on 127.0.0.1: the client's end and the server's. */
async function socketPair(): Promise<{ client: Deno.TcpConn; server: Deno.TcpConn }> {
  const listener = listenLocal();
  const [client, server] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  listener.close();
  return { client, server };
}

Deno.test("readFirstBytes(): half a head then silence times out, with what came", async () => {
  const { client, server } = await socketPair();
  try {
    await client.write(encode("GET / HTTP/1.1\r\nHost: a.te"));
    const first = await bounded(readFirstBytes(server, { timeoutMs: 200 }), "the timeout");
    assert.deepEqual(first.outcome, { kind: "timeout" });
    assert.equal(new TextDecoder().decode(first.bytes), "GET / HTTP/1.1\r\nHost: a.te");
  } finally {
    client.close();
    server.close();
  }
});

Deno.test("readFirstBytes(): a client that leaves is said to have left", async () => {
  const { client, server } = await socketPair();
  try {
    await client.write(encode("GET / HT"));
    await client.closeWrite();
    const first = await bounded(readFirstBytes(server, { timeoutMs: 20_000 }), "the close");
    assert.deepEqual(first.outcome, { kind: "closed", reason: "it closed its side after 8 bytes" });
  } finally {
    client.close();
    server.close();
  }
});

Deno.test("readFirstBytes(): no name in 32 KiB stops at 32 KiB exactly", async () => {
  const { client, server } = await socketPair();
  try {
    const endless = "GET / HTTP/1.1\r\nX-Long: " + "a".repeat(64 * 1024);
    const writing = client.write(encode(endless)).catch(() => 0);
    const first = await bounded(readFirstBytes(server, { timeoutMs: 20_000 }), "the bound");
    assert.deepEqual(first.outcome, { kind: "too-long", protocol: "http" });
    assert.equal(first.bytes.length, MAX_FIRST_BYTES);
    client.close();
    await writing;
  } finally {
    server.close();
  }
});

Deno.test("readFirstBytes(): asks for its buffer's room before taking it, and stops at a refusal", async () => {
  const { client, server } = await socketPair();
  try {
    const endless = "GET / HTTP/1.1\r\nX-Long: " + "a".repeat(64 * 1024);
    const writing = client.write(encode(endless)).catch(() => 0);
    const asked: number[] = [];
    const room = (bytes: number) => {
      asked.push(bytes);
      return asked.length < 3; // 4 KiB, then 4 KiB more; the next 8 KiB are refused
    };
    const first = await bounded(readFirstBytes(server, { timeoutMs: 20_000, room }), "the refusal");
    assert.deepEqual(first.outcome, { kind: "no-room" });
    assert.deepEqual(asked, [4096, 4096, 8192]);
    assert.equal(first.bytes.length, 8192, "every byte the room allowed was read");
    assert.equal(new TextDecoder().decode(first.bytes), endless.slice(0, 8192));
    // Refused from the start: nothing is read.
    const none = await readFirstBytes(server, { timeoutMs: 20_000, room: () => false });
    assert.deepEqual([none.outcome, none.bytes.length], [{ kind: "no-room" }, 0]);
    client.close();
    await writing;
  } finally {
    server.close();
  }
});

/**
 * Reads the first bytes a real TLS client sends to a listener, asking for `name`,
 * while `run` runs it; the client then fails (nothing answers), as expected.
 */
async function realHello(run: (port: number) => Promise<unknown>): Promise<FirstBytesOutcome> {
  const listener = listenLocal();
  const client = run(listener.addr.port);
  const conn = await bounded(listener.accept(), "the TLS client");
  try {
    const first = await readFirstBytes(conn, { timeoutMs: 20_000 });
    return first.outcome;
  } finally {
    conn.close();
    listener.close();
    await client;
  }
}

serverTest(
  "the ClientHellos of curl and openssl s_client give their server name",
  [{ binary: "curl", package: "curl" }, { binary: "openssl", package: "openssl" }],
  async (paths) => {
    assert.deepEqual(
      await realHello((port) =>
        runProgram(paths.curl, [
          "-sS",
          "--max-time",
          "20",
          "--resolve",
          `app.example.test:${port}:127.0.0.1`,
          `https://app.example.test:${port}/`,
        ])
      ),
      { kind: "tls", name: "app.example.test" },
    );
    assert.deepEqual(
      await realHello((port) =>
        runProgram(paths.openssl, [
          "s_client",
          "-connect",
          `127.0.0.1:${port}`,
          "-servername",
          "db.example.test",
        ])
      ),
      { kind: "tls", name: "db.example.test" },
    );
  },
);

Deno.test("a ClientHello malformed by its own bytes says so, whatever the cut, before a broken record after it", () => {
  // Found by the fuzz test: 4-byte records of a ClientHello (the name "aaa000") whose fields
  // run past its declared 96 bytes, then a record whose length (86) swallows the headers that
  // follow, so that a record of type 3 comes next. Read whole, the broken record used to be
  // reported; read in two pieces, the ClientHello's fields: the reason depended on the cut.
  const records = [
    [1, 0, 0, 92],
    [3, 3, 7, 7],
    [7, 7, 7, 7],
    [7, 7, 7, 7],
    [7, 7, 7, 7],
    [7, 7, 7, 7],
    [7, 7, 7, 7],
    [7, 7, 7, 7],
    [7, 7, 32, 9],
    [9, 9, 9, 9],
    [9, 9, 9, 9],
    [9, 9, 9, 9],
    [9, 9, 9, 9],
    [9, 9, 9, 9],
    [9, 9, 9, 9],
    [9, 9, 9, 9],
    [9, 9, 9, 0],
    [4, 19, 1, 19],
    [2, 1, 0, 0],
    [15, 0, 0, 0],
    [11, 0, 9, 0],
    [0, 6, 97, 97],
    [97, 48, 48, 48],
  ];
  const bytes = Uint8Array.from(records.flatMap((payload) => [0x16, 3, 1, 0, 4, ...payload]));
  bytes[76] = 86;
  const whole = new FirstBytesReader().update(bytes);
  assert.equal(whole?.kind, "malformed");
  for (let cut = 1; cut < bytes.length; cut++) {
    const reader = new FirstBytesReader();
    const outcome = reader.update(bytes.subarray(0, cut)) ?? reader.update(bytes);
    assert.deepEqual(outcome, whole, `cut at ${cut}`);
  }
});
