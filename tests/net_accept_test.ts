import assert from "node:assert/strict";
import { acceptConnections } from "../src/net/accept.ts";
import { closeQuietly } from "../src/net/conn.ts";
import { bounded } from "./_helpers.ts";
import { listenLocal, readAll, text, writeAll } from "./_net.ts";

Deno.test("acceptConnections() closes a connection its handler threw for, and keeps accepting", async () => {
  const listener = listenLocal();
  let calls = 0;
  const loop = acceptConnections(listener, "test", (conn) => {
    if (++calls === 1) throw new Error("setup failed");
    (async () => {
      await writeAll(conn, new TextEncoder().encode("served"));
      closeQuietly(conn);
    })();
  });
  try {
    const first = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    assert.equal(
      (await bounded(readAll(first), "the first connection to close")).length,
      0,
      "the first connection was closed",
    );
    first.close();
    const second = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    assert.equal(text(await bounded(readAll(second), "the second connection's answer")), "served");
    second.close();
    assert.equal(calls, 2);
  } finally {
    listener.close();
    await loop;
  }
});

Deno.test("acceptConnections() returns once its listener is closed", async () => {
  const listener = listenLocal();
  const loop = acceptConnections(listener, "test", closeQuietly);
  listener.close();
  assert.equal(await loop, undefined);
});
