/**
 * Property-based tests of the control socket: a real `serveControl()` server
 * on a temporary Unix socket gets random bytes, random lines, random JSON,
 * lines without a newline, lines of hundreds of KiB and lines with NUL, one
 * request per connection, alone and many at once. Every connection that
 * sends its request gets exactly one JSON line back, the answer to a known
 * command or `{ok: false, error}`; nothing crashes, and the server still
 * answers `status` after each run.
 *
 * fast-check prints the seed and the shrunk counterexample of a failure;
 * rerun it with `fc.assert(..., { seed, path })`.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { type ControlResponse, sendRequest } from "../src/control/protocol.ts";
import { serveControl } from "../src/control/server.ts";
import { Budget } from "../src/net/budget.ts";
import type { DaemonStatus } from "../src/control/status.ts";
import { isClosedError, writeAll } from "../src/net/conn.ts";
import { bounded } from "./_helpers.ts";

/** The commands the server passes to its handler. */
const COMMANDS = ["status", "reload", "stop"];

/** The smallest valid status: what the handler answers every known command with. */
const STATUS: DaemonStatus = {
  pid: Deno.pid,
  version: "0.0.0-fuzz",
  startedAt: new Date(0).toISOString(),
  configFiles: [],
  actions: false,
  services: [],
};

/** Seconds one exchange may take: a bound against hangs (the server's own is 5 s). */
const EXCHANGE_SECONDS = 15;

/** How a client ends its side once it has written its request. */
type Ending =
  /** Half-closes (the server reads to the end), then reads the answer. */
  | "half-close"
  /** Keeps writing open and reads the answer: only for requests with a newline. */
  | "keep-open"
  /** Closes the whole connection at once, without reading. */
  | "abandon";

/** One connection's request. */
interface Request {
  /** Every byte the client sends. */
  bytes: Uint8Array;
  ending: Ending;
}

/**
 * Runs a real control server on a temporary socket for `body`, counting the
 * commands its handler gets; closes it and removes the socket's folder after.
 */
async function withServer(body: (socket: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-fuzz-" });
  const socket = `${dir}/control.sock`;
  const close = serveControl(socket, new Budget(), (request): Promise<ControlResponse> => {
    assert.ok(COMMANDS.includes(request.command), `handler got ${JSON.stringify(request)}`);
    return Promise.resolve({ ok: true, status: STATUS, message: request.command });
  });
  try {
    await body(socket);
  } finally {
    close();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Sends `request` on a new connection and reads until the server closes it.
 *
 * @returns everything the server sent, or `null` for an abandoned connection
 */
async function exchange(socket: string, request: Request): Promise<string | null> {
  const conn = await bounded(
    Deno.connect({ transport: "unix", path: socket }),
    `a connection to ${socket}`,
    EXCHANGE_SECONDS,
  );
  // Write and read at once: the server may answer (and close) before it has
  // read a long request, which the client then sees as a broken pipe.
  const writing = (async () => {
    await writeAll(conn, request.bytes);
    if (request.ending === "half-close") await conn.closeWrite();
  })().catch(ignoreClosed);
  const reading = request.ending === "abandon" ? Promise.resolve(null) : (async () => {
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
        chunks.push(buffer.slice(0, n));
      }
    } catch (error) {
      // Linux resets a Unix socket closed with unread bytes, after what was sent.
      ignoreClosed(error);
    }
    return new TextDecoder().decode(concat(chunks));
  })();
  try {
    const [, answer] = await bounded(
      Promise.all([writing, reading]),
      `the answer to ${describe(request)}`,
      EXCHANGE_SECONDS,
    );
    return answer;
  } finally {
    conn.close(); // abandons the connection, or ends a read or write still waiting after a timeout
    await Promise.allSettled([writing, reading]);
  }
}

/** Lets errors that only say the peer closed the connection pass; throws any other. */
function ignoreClosed(error: unknown): void {
  if (!isClosedError(error)) throw error;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return all;
}

/** A request, short enough for an assertion message. */
function describe(request: Request): string {
  const text = new TextDecoder().decode(request.bytes.subarray(0, 200));
  return `${JSON.stringify(text)}${request.bytes.length > 200 ? "..." : ""} ` +
    `(${request.bytes.length} bytes, ${request.ending})`;
}

/**
 * The command the server should pass to its handler: the first line, read as
 * UTF-8 (a character cut by the end of the request is dropped, as a streaming
 * decoder does), as JSON, when it is an object whose `command` is known.
 */
function knownCommand(bytes: Uint8Array): string | undefined {
  const end = bytes.indexOf(0x0A);
  const line = new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end), {
    stream: end < 0,
  });
  let request: unknown;
  try {
    request = JSON.parse(line);
  } catch {
    return undefined;
  }
  const command = (request as { command?: unknown } | null)?.command;
  return typeof command === "string" && COMMANDS.includes(command) ? command : undefined;
}

/** Asserts that `answer` is exactly one JSON line, the right one for `request`. */
function assertAnswer(request: Request, answer: string | null): void {
  if (answer === null) return; // abandoned: nothing to read
  const what = `answer ${JSON.stringify(answer.slice(0, 300))} to ${describe(request)}`;
  assert.ok(
    answer.endsWith("\n") && answer.indexOf("\n") === answer.length - 1,
    `not one line: ${what}`,
  );
  const response = JSON.parse(answer) as ControlResponse;
  const command = knownCommand(request.bytes);
  if (command !== undefined) {
    assert.deepEqual(response, { ok: true, status: STATUS, message: command }, what);
  } else {
    assert.equal(response.ok, false, what);
    assert.deepEqual(Object.keys(response).sort(), ["error", "ok"], what);
    assert.ok(!response.ok && typeof response.error === "string" && response.error !== "", what);
  }
}

/** Asserts that the server still answers a valid `status` request. */
async function assertAlive(socket: string): Promise<void> {
  const response = await bounded(
    sendRequest(socket, { command: "status" }),
    "the answer to a status request",
    EXCHANGE_SECONDS,
  );
  assert.deepEqual(response, { ok: true, status: STATUS, message: "status" });
}

const encoder = new TextEncoder();

/** JSON text of any value; `String()` of what JSON cannot hold. */
function stringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** A JSON object with a `command` of every sort: known, near-known, or anything. */
const commandObject = fc.record({
  command: fc.oneof(
    fc.constantFrom(...COMMANDS),
    fc.constantFrom(
      "Status",
      "status ",
      "",
      "start",
      "STOP",
      "reload\n",
      "__proto__",
      "constructor",
    ),
    fc.anything(),
  ),
  extra: fc.option(fc.jsonValue()),
}, { requiredKeys: [] }).map(stringify);

/** One line of a very long request: a run of one character, alone or padding a command. */
const longLine = fc.record({
  length: fc.integer({ min: 64 * 1024 - 8, max: 400 * 1024 }),
  char: fc.constantFrom("x", " ", "{", '"', "\0", "é", "€", "𝄞", "\\"),
  asPadding: fc.boolean(),
}).map(({ length, char, asPadding }) => {
  const run = char.repeat(Math.ceil(length / char.length));
  return asPadding ? JSON.stringify({ command: "status", pad: run }) : run;
});

/** The text of a request, with or without its newline. */
const requestText = fc.tuple(
  fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom(...COMMANDS).map((command) => stringify({ command })) },
    { weight: 3, arbitrary: commandObject },
    { weight: 2, arbitrary: fc.json() },
    { weight: 2, arbitrary: fc.anything().map(stringify) },
    { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 300 }) },
    { weight: 1, arbitrary: fc.constantFrom("", " ", "null", "[]", "{}", '"status"', "\0") },
    { weight: 1, arbitrary: commandObject.map((json) => `\0${json}`) },
    { weight: 1, arbitrary: commandObject.map((json) => `${json}\0`) },
    { weight: 1, arbitrary: fc.tuple(commandObject, fc.json()).map((lines) => lines.join("\n")) },
    { weight: 1, arbitrary: longLine },
  ),
  fc.constantFrom("\n", "\n", "\r\n", ""),
).map(([text, end]) => encoder.encode(text + end));

/** Any bytes: invalid UTF-8, stray newlines, NUL. */
const requestBytes = fc.uint8Array({ maxLength: 2048 });

/** A request and how its client ends. */
const request: fc.Arbitrary<Request> = fc.record({
  bytes: fc.oneof({ weight: 4, arbitrary: requestText }, { weight: 1, arbitrary: requestBytes }),
  ending: fc.constantFrom<Ending>("half-close", "half-close", "keep-open", "abandon"),
}).map(({ bytes, ending }) => {
  const request: Request = {
    bytes,
    // Without a newline the server waits for the end: a client that keeps writing open waits 5 s.
    ending: ending === "keep-open" && !bytes.includes(0x0A) ? "half-close" : ending,
  };
  // fast-check shows a counterexample this way, not as every byte of it.
  return Object.assign(request, { [fc.toStringMethod]: () => describe(request) });
});

Deno.test("serveControl() answers every random request with one JSON line and stays up", async () => {
  // A server per request: a request that breaks the server fails alone, and shrinks.
  await fc.assert(
    fc.asyncProperty(request, (request) =>
      withServer(async (socket) => {
        assertAnswer(request, await exchange(socket, request));
        await assertAlive(socket);
      })),
    { numRuns: 300 },
  );
});

Deno.test("serveControl() answers random requests sent at once, each on its own connection", async () => {
  // One server for the whole run: what requests leave behind adds up.
  await withServer(async (socket) => {
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 2, maxLength: 8 }), async (requests) => {
        const answers = await Promise.all(requests.map((request) => exchange(socket, request)));
        requests.forEach((request, i) => assertAnswer(request, answers[i]));
        await assertAlive(socket);
      }),
      { numRuns: 100 },
    );
    await assertAlive(socket);
  });
});

Deno.test("serveControl() closes a connection whose request line is longer than 16 MiB, and stays up", async () => {
  await withServer(async (socket) => {
    const pad = "x".repeat(17 * 1024 * 1024);
    const request: Request = {
      bytes: encoder.encode(JSON.stringify({ command: "status", pad }) + "\n"),
      ending: "half-close",
    };
    assert.equal(await exchange(socket, request), "", "expected the connection closed unanswered");
    await assertAlive(socket);
  });
});
