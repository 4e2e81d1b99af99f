/**
 * Listening on a port that a listener of this process is giving up: a reload
 * moving a port waits for it (up to 2 s), and a port that stays in use still
 * fails, saying so.
 */
import assert from "node:assert/strict";
import { listenAll, listenAllWhenFreed } from "../src/net/listen.ts";
import { listenLocal } from "./_net.ts";

Deno.test("listenAllWhenFreed() takes a port once the listener holding it closes", async () => {
  const holder = listenLocal();
  const { port } = holder.addr;
  const accepting = holder.accept().catch(() => {});
  assert.throws(() => listenAll(["127.0.0.1"], port), /address already in use/);
  // The holder lets go while the new listener waits for the port.
  setTimeout(() => holder.close(), 100);
  const [listener] = await listenAllWhenFreed(["127.0.0.1"], port);
  await accepting;
  assert.equal(listener.addr.port, port);
  listener.close();
});

Deno.test("listenAllWhenFreed() gives up on a port that stays in use, with the reason", async () => {
  const holder = listenLocal();
  try {
    await assert.rejects(
      listenAllWhenFreed(["127.0.0.1"], holder.addr.port),
      new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${holder.addr.port}: address already in use`),
    );
  } finally {
    holder.close();
  }
});
