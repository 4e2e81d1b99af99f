import assert from "node:assert/strict";
import {
  forward,
  forwardBuffers,
  type ForwardResult,
  trimForwardBuffers,
} from "../src/net/forward.ts";
import { listenLocal, randomBytes, readAll, readExactly, sha256, text, writeAll } from "./_net.ts";
import { bounded, waitFor } from "./_helpers.ts";

/**
 * Sets up client ⇄ proxy ⇄ backend on real sockets: `forward()` runs between
 * the proxy's accepted client socket and its connection to the backend.
 */
async function proxyPair(
  onBytes?: (bytes: number) => void,
  wrapBackend: (conn: Deno.TcpConn) => Deno.TcpConn = (conn) => conn,
) {
  const front = listenLocal();
  const back = listenLocal();
  const client = await Deno.connect({ port: front.addr.port });
  const accepted = await front.accept();
  const toBackend = await Deno.connect({ port: back.addr.port });
  const backend = await back.accept();
  front.close();
  back.close();
  const forwarding: Promise<ForwardResult> = forward(
    accepted,
    wrapBackend(toBackend),
    (_direction, bytes) => onBytes?.(bytes),
  );
  return { client, backend, forwarding };
}

Deno.test("forward() passes a half-close to the backend and still delivers the reply", async () => {
  const { client, backend, forwarding } = await proxyPair();
  await writeAll(client, new TextEncoder().encode("request then FIN"));
  await client.closeWrite();
  const request = await readAll(backend); // ends only if the FIN was passed on
  assert.equal(text(request), "request then FIN");
  await writeAll(backend, new TextEncoder().encode("the whole reply"));
  backend.close();
  assert.equal(text(await readAll(client)), "the whole reply");
  client.close();
  const result = await forwarding;
  assert.equal(result.bytesIn, 16);
  assert.equal(result.bytesOut, 15);
  assert.equal(result.error, undefined);
});

Deno.test("forward() moves 32 MiB each way at once byte-identical", async () => {
  const size = 32 * 1024 * 1024;
  const up = randomBytes(size);
  const down = randomBytes(size);
  const { client, backend, forwarding } = await proxyPair();
  const [receivedByBackend, receivedByClient] = await Promise.all([
    readAll(backend),
    readAll(client),
    writeAll(client, up).then(() => client.closeWrite()),
    writeAll(backend, down).then(() => backend.closeWrite()),
  ]);
  assert.equal(receivedByBackend.length, size);
  assert.equal(receivedByClient.length, size);
  assert.equal(await sha256(receivedByBackend), await sha256(up));
  assert.equal(await sha256(receivedByClient), await sha256(down));
  client.close();
  backend.close();
  const result = await forwarding;
  assert.equal(result.bytesIn, size);
  assert.equal(result.bytesOut, size);
});

/** Makes `conn` reset: bytes it never read are waiting when it closes, so the kernel sends RST. */
async function resetFrom(conn: Deno.Conn, peer: Deno.Conn, forwarded: () => number) {
  const before = forwarded();
  await writeAll(peer, new TextEncoder().encode("never read"));
  await waitFor("the unread bytes to reach the resetting side", () => forwarded() > before);
  conn.close();
}

Deno.test("forward() ends with ConnectionReset and closes the client when the backend resets", async () => {
  let forwarded = 0;
  const { client, backend, forwarding } = await proxyPair((bytes) => forwarded += bytes);
  await writeAll(client, new TextEncoder().encode("hello"));
  assert.equal(await backend.read(new Uint8Array(5)), 5);
  await resetFrom(backend, client, () => forwarded);
  const result = await bounded(forwarding, "forward() to end at the reset");
  assert.ok(
    result.error instanceof Deno.errors.ConnectionReset,
    `expected a reset, got ${result.error}`,
  );
  assert.equal((await readAll(client)).length, 0, "the client's side was closed");
  client.close();
});

Deno.test("forward() resolves with the first error even when closing a connection throws", async () => {
  let forwarded = 0;
  const { client, backend, forwarding } = await proxyPair(
    (bytes) => forwarded += bytes,
    // A connection whose close() fails after closing: forward() must still settle.
    (conn) =>
      new Proxy(conn, {
        get(target, property) {
          if (property === "close") {
            return () => {
              target.close();
              throw new Error("close failed");
            };
          }
          const value = Reflect.get(target, property);
          return typeof value === "function" ? value.bind(target) : value;
        },
      }),
  );
  await resetFrom(backend, client, () => forwarded);
  const result = await bounded(forwarding, "forward() to end at the reset");
  assert.ok(result.error instanceof Deno.errors.ConnectionReset, `got ${result.error}`);
  client.close();
});

Deno.test("forward() holds a fast writer back while the backend does not read", async () => {
  const size = 64 * 1024 * 1024;
  let forwarded = 0;
  const { client, backend, forwarding } = await proxyPair((bytes) => forwarded += bytes);
  const data = randomBytes(size);
  const writing = writeAll(client, data).then(() => client.closeWrite());
  // Wait until the proxy stops making progress: the backend's kernel buffers are full.
  let last = -1;
  await waitFor("the proxy to stall", async () => {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const stalled = forwarded === last && forwarded > 0;
    last = forwarded;
    return stalled;
  });
  assert.ok(
    forwarded < size / 2,
    `forwarded ${forwarded} of ${size} bytes to a backend that never read`,
  );
  const [received] = await Promise.all([readAll(backend), writing]);
  assert.equal(await sha256(received), await sha256(data));
  backend.close();
  client.close();
  await forwarding;
});

Deno.test("forward() gives its large buffers back once a burst is over, while the connections stay open", async () => {
  const before = forwardBuffers();
  const pairs = await Promise.all(Array.from({ length: 20 }, () => proxyPair()));
  const burst = randomBytes(1024 * 1024);
  await Promise.all(pairs.map(async ({ client, backend }) => {
    const [received] = await Promise.all([
      readExactly(backend, burst.length),
      writeAll(client, burst),
    ]);
    assert.equal(await sha256(received), await sha256(burst));
  }));
  // Quiet now: every direction waits for its next bytes in its small buffer.
  const quiet = forwardBuffers();
  assert.equal(quiet.large.borrowed, before.large.borrowed);
  assert.equal(quiet.medium.borrowed, before.medium.borrowed);
  assert.ok(quiet.large.pooled > 0, "the burst's large buffers are kept for reuse");
  assert.equal(quiet.small.borrowed, before.small.borrowed + 40, "one per direction");
  for (const { client, backend, forwarding } of pairs) {
    client.close();
    backend.close();
    await forwarding;
  }
  const closed = forwardBuffers();
  assert.equal(closed.small.borrowed, before.small.borrowed, "closed connections give theirs back");
  assert.ok(closed.small.pooled >= 40, "and they are kept for the next connections");
  trimForwardBuffers();
  const trimmed = forwardBuffers();
  assert.ok(trimmed.large.pooled <= 4, `${trimmed.large.pooled} large buffers kept once trimmed`);
  assert.ok(trimmed.small.pooled <= 256, `${trimmed.small.pooled} small buffers kept once trimmed`);
});

Deno.test("forward() steps up from 1 KiB to 16 KiB to 256 KiB buffers as reads fill them, and back at a short read", async () => {
  const { client, backend, forwarding } = await proxyPair();
  const before = forwardBuffers();
  const held = () => {
    const now = forwardBuffers();
    return {
      medium: now.medium.borrowed - before.medium.borrowed,
      large: now.large.borrowed - before.large.borrowed,
    };
  };
  // The backend answers; each read of the client's side fills its buffer, or not, exactly.
  const answer = async (bytes: number, expected: { medium: number; large: number }) => {
    const data = randomBytes(bytes);
    const [received] = await Promise.all([readExactly(client, bytes), writeAll(backend, data)]);
    assert.equal(await sha256(received), await sha256(data));
    await waitFor(`${JSON.stringify(expected)} after ${bytes} bytes`, () => {
      const now = held();
      return now.medium === expected.medium && now.large === expected.large;
    });
  };
  await answer(1024, { medium: 1, large: 0 }); // filled the small one: waits in a medium one
  await answer(16 * 1024, { medium: 0, large: 1 }); // filled the medium one: waits in a large one
  await answer(20 * 1024, { medium: 0, large: 0 }); // short: back to the small one
  await answer(1024, { medium: 0, large: 1 }); // streaming (its last read had 20 KiB): large at once
  await answer(10, { medium: 0, large: 0 });
  await answer(1024, { medium: 1, large: 0 }); // a small answer since: medium again
  client.close();
  backend.close();
  await forwarding;
  assert.deepEqual(held(), { medium: 0, large: 0 }, "all given back at the end");
});
