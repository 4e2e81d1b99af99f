/**
 * Faults of the data path, on real sockets through a real service: a
 * half-close from either side, a reset from either side, and a backend that
 * dies mid-stream.
 */
import assert from "node:assert/strict";
import { captureLog, command, type Harness, startHarness } from "../_service.ts";
import { isAlive, randomBytes, readAll, readExactly, refuses, sha256, writeAll } from "../_net.ts";
import { bounded, waitFor } from "../_helpers.ts";
import { type OwnBackend, ownBackend, readEnd } from "./_faults.ts";

/** A service in front of a backend the test drives by hand: START_CMD only names it. */
function serviceFor(backend: OwnBackend): Promise<Harness> {
  return startHarness(() => ({
    startCmd: command(`echo "127.0.0.1 ${backend.port}"`),
    stopCmd: undefined,
  }));
}

/** Connects a client and takes the backend's end of its connection. */
async function connectThrough(harness: Harness, backend: OwnBackend) {
  const client = await Deno.connect({ hostname: "127.0.0.1", port: harness.port });
  const server = await backend.accept();
  return { client, server };
}

/** The connection's last log line ("closed after ...") once it has ended. */
async function closedLine(harness: Harness, lines: () => string[]): Promise<string> {
  await waitFor("the connection to end", () => harness.service.stats.openConnections === 0);
  let line: string | undefined;
  await waitFor("the connection's closing log line", () => {
    line = lines().find((text) => / closed after \d+\.\d+s, /.test(text));
    return line !== undefined;
  });
  return line!;
}

Deno.test("a half-close from the client reaches the backend, and the reply still flows in full", async () => {
  await using log = await captureLog("info");
  using backend = ownBackend();
  const harness = await serviceFor(backend);
  try {
    const { client, server } = await connectThrough(harness, backend);
    const request = randomBytes(1024 * 1024);
    const [received] = await bounded(
      Promise.all([readAll(server), writeAll(client, request).then(() => client.closeWrite())]),
      "the backend's read to EOF (the FIN passed on)",
    );
    assert.equal(await sha256(received), await sha256(request));
    // The client has finished sending; the reply goes on for a while, in pieces.
    const reply = randomBytes(8 * 1024 * 1024);
    const replying = (async () => {
      for (let at = 0; at < reply.length; at += 1024 * 1024) {
        await writeAll(server, reply.subarray(at, at + 1024 * 1024));
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await server.closeWrite();
    })();
    const [answer] = await bounded(
      Promise.all([readAll(client), replying]),
      "the whole reply after the client's half-close",
    );
    assert.equal(answer.length, reply.length);
    assert.equal(await sha256(answer), await sha256(reply));
    client.close();
    server.close();
    const line = await closedLine(harness, log.lines);
    assert.match(line, new RegExp(`, ${request.length} bytes in, ${reply.length} bytes out$`));
  } finally {
    await harness.close();
  }
});

Deno.test("a half-close from the backend reaches the client, and the client's upload still flows in full", async () => {
  await using log = await captureLog("info");
  using backend = ownBackend();
  const harness = await serviceFor(backend);
  try {
    const { client, server } = await connectThrough(harness, backend);
    const greeting = randomBytes(1024 * 1024);
    const [got] = await bounded(
      Promise.all([readAll(client), writeAll(server, greeting).then(() => server.closeWrite())]),
      "the client's read to EOF (the FIN passed on)",
    );
    assert.equal(await sha256(got), await sha256(greeting));
    const upload = randomBytes(8 * 1024 * 1024);
    const [received] = await bounded(
      Promise.all([readAll(server), writeAll(client, upload).then(() => client.closeWrite())]),
      "the whole upload after the backend's half-close",
    );
    assert.equal(received.length, upload.length);
    assert.equal(await sha256(received), await sha256(upload));
    client.close();
    server.close();
    const line = await closedLine(harness, log.lines);
    assert.match(line, new RegExp(`, ${upload.length} bytes in, ${greeting.length} bytes out$`));
  } finally {
    await harness.close();
  }
});

Deno.test("a reset from the backend closes the client promptly and ends the forward with ConnectionReset", async () => {
  await using log = await captureLog("info");
  using backend = ownBackend();
  const harness = await serviceFor(backend);
  try {
    const { client, server } = await connectThrough(harness, backend);
    await writeAll(client, new TextEncoder().encode("hello"));
    assert.equal((await bounded(readExactly(server, 5), "the bytes sent")).length, 5);
    // Bytes the backend never reads: its close is then a reset (RST), not a FIN.
    await writeAll(client, new TextEncoder().encode("never read"));
    await waitFor(
      "the unread bytes to reach the backend",
      () => harness.service.stats.bytesIn >= 15,
    );
    server.close();
    const end = await bounded(readEnd(client), "the client's side to close after the reset");
    assert.ok(end === "eof" || end === "reset", `the client saw ${end}`);
    console.log(`the client saw ${end}`);
    client.close();
    const line = await closedLine(harness, log.lines);
    assert.match(line, /, 15 bytes in, 0 bytes out: Connection reset by peer/, line);
  } finally {
    await harness.close();
  }
});

Deno.test("a reset from the client closes the backend's side promptly and ends the forward with ConnectionReset", async () => {
  await using log = await captureLog("info");
  using backend = ownBackend();
  const harness = await serviceFor(backend);
  try {
    const { client, server } = await connectThrough(harness, backend);
    await writeAll(server, new TextEncoder().encode("hello"));
    assert.equal((await bounded(readExactly(client, 5), "the bytes sent")).length, 5);
    await writeAll(server, new TextEncoder().encode("never read"));
    await waitFor(
      "the unread bytes to reach the client",
      () => harness.service.stats.bytesOut >= 15,
    );
    client.close();
    const end = await bounded(readEnd(server), "the backend's side to close after the reset");
    assert.ok(end === "eof" || end === "reset", `the backend saw ${end}`);
    console.log(`the backend saw ${end}`);
    server.close();
    const line = await closedLine(harness, log.lines);
    assert.match(line, /, 0 bytes in, 15 bytes out: Connection reset by peer/, line);
  } finally {
    await harness.close();
  }
});

Deno.test("a backend killed mid-stream ends the client's connection, and the next client wakes it again", async () => {
  await using log = await captureLog("info");
  const harness = await startHarness();
  try {
    const client = await Deno.connect({ hostname: "127.0.0.1", port: harness.port });
    const data = randomBytes(64 * 1024 * 1024);
    const writing = writeAll(client, data).then(() => "written", (error) => error.name);
    const reading = readEnd(client);
    await waitFor("a few MiB echoed", () => harness.service.stats.bytesOut > 4 * 1024 * 1024);
    const pid = harness.backendPid()!;
    Deno.kill(pid, "SIGKILL");
    const end = await bounded(reading, "the client's connection to end after the backend died");
    assert.match(end, /^(eof|eof after \d+ bytes|reset)$/, `the client saw ${end}`);
    console.log(
      `backend killed after ${harness.service.stats.bytesOut} bytes echoed: client saw ${end}`,
    );
    const wrote = await bounded(writing, "the client's write to end");
    assert.notEqual(wrote, "written", "the client could not send all 64 MiB to a dead backend");
    client.close();
    await waitFor("the connection to end", () => harness.service.stats.openConnections === 0);
    assert.ok(harness.service.stats.bytesOut < data.length);
    await waitFor(
      "the backend to be gone",
      async () => !isAlive(pid) && await refuses(harness.backendPort),
    );
    assert.equal(harness.service.state, "awake", "nothing told the service yet");
    await Deno.remove(`${harness.dir}/backend.pid`);

    // The next client's connection is refused: the service knows the backend is gone and wakes it.
    const again = await Deno.connect({ hostname: "127.0.0.1", port: harness.port });
    await writeAll(again, new TextEncoder().encode("are you back?"));
    await again.closeWrite();
    const answer = new TextDecoder().decode(
      await bounded(readAll(again), "the answer after the second wake"),
    );
    again.close();
    assert.equal(answer, "are you back?");
    assert.equal(harness.starts(), 2);
    assert.equal(harness.service.stats.wakes, 2);
    assert.ok(
      log.lines().some((line) => / awake -> asleep: 127\.0\.0\.1:\d+ is gone: /.test(line)),
      log.lines().join("\n"),
    );
  } finally {
    await harness.close();
  }
});

// While the service wakes, such a client counts as gone (docs/ARCHITECTURE.md, "Admission and
// holding"): tests/service_admission_test.ts proves that side.
Deno.test("a client that half-closes before sending anything still gets the reply of an awake service", async () => {
  await using log = await captureLog("info");
  using backend = ownBackend();
  const harness = await serviceFor(backend);
  try {
    const first = await connectThrough(harness, backend);
    first.client.close();
    first.server.close();
    await waitFor(
      "the service awake and quiet",
      () => harness.service.state === "awake" && harness.service.stats.openConnections === 0,
    );
    // A server-speaks-first protocol: the client sends nothing, half-closes, and reads.
    const client = await Deno.connect({ hostname: "127.0.0.1", port: harness.port });
    await client.closeWrite();
    const server = await backend.accept("the client's backend connection");
    await writeAll(server, new TextEncoder().encode("a greeting"));
    await server.closeWrite();
    const got = await bounded(readAll(client), "the greeting at the client");
    assert.equal(new TextDecoder().decode(got), "a greeting", log.lines().join("\n"));
    assert.equal((await bounded(readAll(server), "the client's FIN at the backend")).length, 0);
    client.close();
    server.close();
  } finally {
    await harness.close();
  }
});
