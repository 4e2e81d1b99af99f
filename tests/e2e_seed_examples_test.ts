/**
 * The seed's two examples, end to end: the real CLI, real backends, curl.
 */
import assert from "node:assert/strict";
import { replaceLine, startDaemon } from "./_daemon.ts";
import { freePort, refuses } from "./_net.ts";
import { curl, REPO, waitFor } from "./_helpers.ts";

Deno.test("the shipped demo answers three requests in a row, each one waking it, on 127.0.0.1 only", async () => {
  const port = freePort();
  const backendPort = freePort();
  const shipped = await Deno.readTextFile(`${REPO}sleepingd.conf`);
  const config = replaceLine(shipped, /^PORT=10080$/m, `PORT=${port}`)
    .replaceAll("8080", `${backendPort}`);
  const file = await Deno.makeTempFile({ suffix: ".conf" });
  await Deno.writeTextFile(file, config);
  const daemon = await startDaemon(file);
  try {
    for (let i = 0; i < 3; i++) {
      assert.match(
        await curl(`http://127.0.0.1:${port}/`),
        new RegExp(`^Response from ${backendPort}: `),
      );
    }
    const wakes = daemon.lines.filter((line) => line.includes("asleep -> starting"));
    assert.equal(wakes.length, 3, daemon.lines.join("\n"));
    // A first run exposes nothing to the network: the loopback address alone.
    const listening = daemon.lines.filter((line) => / listening on /.test(line));
    assert.deepEqual(
      listening.map((line) => line.replace(/^.* listening on /, "")),
      [`127.0.0.1:${port}`],
    );
  } finally {
    assert.equal(await daemon.stop(), 0);
    await Deno.remove(file);
  }
});

Deno.test("the pool example routes each connection, stops once when idle, and leaves nothing running", async () => {
  const port = freePort();
  const pool = [freePort(), freePort()];
  const state = await Deno.makeTempDir({ prefix: "sleepingd-pool-" });
  const example = await Deno.readTextFile(`${REPO}examples/pool/sleepingd.conf`);
  let config = replaceLine(example, /^PORT=20080$/m, `PORT=${port}`);
  config = replaceLine(config, /^IDLE_TIME=20$/m, "IDLE_TIME=1");
  config = replaceLine(config, /^IDLE_CHECK_INTERVAL=5$/m, "IDLE_CHECK_INTERVAL=0.2");
  const file = `${state}/pool.conf`;
  await Deno.writeTextFile(file, config);
  const daemon = await startDaemon(file, {
    env: { POOL_PORTS: pool.join(" "), POOL_STATE_DIR: state },
  });
  try {
    // startserver picks one of the two at random per connection: 20 requests reach both
    // unless routing is per wake (the chance that 20 fair picks are all alike is 2 in a million).
    const seen = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const answer = await curl(`http://127.0.0.1:${port}/`);
      const match = answer.match(/^response from 127\.0\.0\.1:(\d+)\n$/);
      assert.ok(match && pool.includes(Number(match[1])), `unexpected answer ${answer}`);
      seen.add(Number(match[1]));
    }
    assert.deepEqual([...seen].sort(), [...pool].sort(), "both servers of the pool answered");
    assert.equal(await curl(`http://127.0.0.1:${port}/missing`), "Not found\n");
    await daemon.waitForLine(/stopping -> asleep/);
    const stops = daemon.lines.filter((line) => line.includes("awake -> stopping"));
    assert.equal(stops.length, 1, daemon.lines.join("\n"));
    for (const backend of pool) {
      await waitFor(`pool server on port ${backend} to be gone`, () => refuses(backend));
    }
    assert.deepEqual([...Deno.readDirSync(state)].map((entry) => entry.name), ["pool.conf"]);
  } finally {
    assert.equal(await daemon.stop(), 0);
    await Deno.remove(state, { recursive: true });
  }
});
