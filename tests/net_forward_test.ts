import assert from "node:assert/strict";
import { forward, type ForwardResult } from "../src/net/forward.ts";
import { listenLocal, randomBytes, readAll, sha256, text, waitFor, writeAll } from "./_net.ts";

/**
 * Sets up client ⇄ proxy ⇄ backend on real sockets: `forward()` runs between
 * the proxy's accepted client socket and its connection to the backend.
 */
async function proxyPair(onBytes?: (bytes: number) => void) {
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
    toBackend,
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
  assert.equal(result.clientToBackend, 16);
  assert.equal(result.backendToClient, 15);
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
  assert.equal(result.clientToBackend, size);
  assert.equal(result.backendToClient, size);
});

Deno.test("forward() closes the client when the backend resets", async () => {
  const { client, backend, forwarding } = await proxyPair();
  await writeAll(client, new TextEncoder().encode("hello"));
  const buffer = new Uint8Array(5);
  assert.equal(await backend.read(buffer), 5);
  // Closing with unread data makes the kernel send a reset instead of a FIN.
  await writeAll(client, new TextEncoder().encode("unread"));
  await new Promise((resolve) => setTimeout(resolve, 100)); // let them reach the backend
  backend.close();
  const rest = await readAll(client);
  assert.equal(rest.length, 0);
  client.close();
  await forwarding;
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
