/**
 * Resources under faults: the daemon's memory while a slow reader is offered
 * 256 MiB, and the files, children and memory of a thousand wake/stop cycles.
 */
import assert from "node:assert/strict";
import { startDaemon } from "../_daemon.ts";
import { bounded, exists, waitFor } from "../_helpers.ts";
import { freePort, randomBytes, readExactly, sha256, writeAll } from "../_net.ts";
import { command, openGate, startHarness, waitForGate } from "../_service.ts";
import {
  closeQuietly,
  echoListener,
  mib,
  openFds,
  ownBackend,
  rssBytes,
  stopDaemon,
  talk,
  zombieChildren,
} from "./_faults.ts";

const OFFERED = 256 * 1024 * 1024;
/** The slow reader takes this much every quarter of a second: 64 KiB/s. */
const SLOW_READ = 16 * 1024;
const SLOW_SECONDS = 4;
/** The daemon's memory may grow by this much at most while 256 MiB are offered. */
const MAX_GROWTH = 64 * 1024 * 1024;

/**
 * Writes `data` to `conn` for as long as it takes the bytes; says how many it
 * took, and ends (without throwing) when the connection is closed under it.
 */
function offer(conn: Deno.Conn, data: Uint8Array) {
  let taken = 0;
  const done = (async () => {
    try {
      while (taken < data.length) taken += await conn.write(data.subarray(taken));
    } catch {
      // Closed at the end of the test.
    }
  })();
  return { taken: () => taken, done };
}

Deno.test("a slow reader offered 256 MiB through the real daemon keeps its memory bounded", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-slow-" });
  using backend = ownBackend();
  const port = freePort();
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `SHUTDOWN_GRACE=1
[slow]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
START_CMD='echo "127.0.0.1 ${backend.port}"'
`,
  );
  const daemon = await startDaemon(file);
  const open: Deno.Conn[] = [];
  try {
    // Warm up: wake, and send a few MiB each way, so that the baseline includes the code paths.
    {
      const client = await Deno.connect({ hostname: "127.0.0.1", port });
      const server = await backend.accept();
      const burst = randomBytes(4 * 1024 * 1024);
      await bounded(
        Promise.all([writeAll(client, burst), readExactly(server, burst.length)]),
        "the warm-up's burst in",
      );
      await bounded(
        Promise.all([writeAll(server, burst), readExactly(client, burst.length)]),
        "the warm-up's burst out",
      );
      client.close();
      server.close();
    }
    const data = randomBytes(OFFERED);
    for (const direction of ["out", "in"] as const) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const before = rssBytes(daemon.pid);
      const client = await Deno.connect({ hostname: "127.0.0.1", port });
      const server = await backend.accept();
      open.push(client, server);
      // out: the backend pushes to a slow client; in: the client pushes to a slow backend.
      const [writer, reader] = direction === "out" ? [server, client] : [client, server];
      const offered = offer(writer, data);
      let peak = before;
      let read = 0;
      const started = Date.now();
      while (Date.now() - started < SLOW_SECONDS * 1000) {
        read += (await bounded(readExactly(reader, SLOW_READ), "a slow read")).length;
        for (let i = 0; i < 5; i++) {
          peak = Math.max(peak, rssBytes(daemon.pid));
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      const growth = peak - before;
      console.log(
        `slow reader (${direction}): daemon RSS ${mib(before)} before, ${mib(peak)} at most ` +
          `while offered ${mib(OFFERED)} (growth ${mib(growth)}); the writer got ` +
          `${mib(offered.taken())} in, the reader read ${mib(read)} in ${SLOW_SECONDS}s`,
      );
      assert.ok(growth < MAX_GROWTH, `the daemon grew by ${mib(growth)}`);
      assert.ok(offered.taken() < OFFERED / 4, "the writer was held back");
      client.close();
      server.close();
      await bounded(offered.done, "the writer to end once the connection is closed");
    }
  } finally {
    for (const conn of open) closeQuietly(conn);
    assert.equal(await stopDaemon(daemon), 0, daemon.lines.join("\n"));
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a client offering 256 MiB while it waits for a wake is held with bounded memory, then served whole", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-held-" });
  using backend = ownBackend();
  const port = freePort();
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `SHUTDOWN_GRACE=1
[held]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
START_CMD='${waitForGate(dir)}
echo "127.0.0.1 ${backend.port}"'
`,
  );
  const daemon = await startDaemon(file);
  const open: Deno.Conn[] = [];
  try {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = rssBytes(daemon.pid);
    const client = await Deno.connect({ hostname: "127.0.0.1", port });
    open.push(client);
    const data = randomBytes(OFFERED);
    const offered = offer(client, data);
    await daemon.waitForLine(/\[held\] asleep -> starting/);
    let peak = before;
    const started = Date.now();
    while (Date.now() - started < SLOW_SECONDS * 1000) {
      peak = Math.max(peak, rssBytes(daemon.pid));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const growth = peak - before;
    console.log(
      `held client: daemon RSS ${mib(before)} before, ${mib(peak)} at most while a waiting ` +
        `client offered ${mib(OFFERED)} (growth ${mib(growth)}); the client got ` +
        `${mib(offered.taken())} in`,
    );
    assert.ok(growth < MAX_GROWTH, `the daemon grew by ${mib(growth)}`);
    assert.ok(offered.taken() < OFFERED / 4, "the waiting client was held back");
    await openGate(dir);
    const server = await backend.accept();
    open.push(server);
    const received = await bounded(readExactly(server, OFFERED), "all 256 MiB at the backend", 60);
    await bounded(offered.done, "the client's write to end");
    assert.equal(await sha256(received), await sha256(data), "the held bytes came first, intact");
  } finally {
    for (const conn of open) closeQuietly(conn);
    assert.equal(await stopDaemon(daemon), 0, daemon.lines.join("\n"));
    await Deno.remove(dir, { recursive: true });
  }
});

/** The largest number of wake/stop cycles the test runs; it stops earlier past its time budget. */
const CYCLES = 1000;

Deno.test("1000 wake/stop cycles leave no zombie, no file descriptor and no memory behind", async () => {
  using backend = echoListener();
  const harness = await startHarness((dir) => ({
    startCmd: command(`echo start >> '${dir}/starts'; echo "127.0.0.1 ${backend.port}"`),
    stopCmd: command(`echo stop >> '${dir}/stops'`),
  }));
  try {
    const cycle = async (i: number) => {
      assert.equal(await talk(harness.port, `cycle ${i}`), `cycle ${i}`);
      await bounded(harness.service.stop("requested"), `the stop of cycle ${i}`);
      assert.equal(harness.service.state, "asleep");
    };
    for (let i = 0; i < 20; i++) await cycle(i); // warm up
    await waitFor(
      "the warm-up's connections to end",
      () => harness.service.stats.openConnections === 0,
    );
    const fdsBefore = openFds();
    const rssBefore = rssBytes();
    const heapBefore = Deno.memoryUsage().heapUsed;
    const samples: string[] = [];
    let fdsMost = fdsBefore;
    const started = Date.now();
    for (let i = 0; i < CYCLES; i++) {
      await cycle(i);
      fdsMost = Math.max(fdsMost, openFds());
      if ((i + 1) % 250 === 0) samples.push(`${i + 1}: ${mib(rssBytes())}`);
    }
    const seconds = (Date.now() - started) / 1000;
    await waitFor("every connection to end", () => harness.service.stats.openConnections === 0);
    const fdsAfter = openFds();
    const rssAfter = rssBytes();
    const heapAfter = Deno.memoryUsage().heapUsed;
    const zombies = zombieChildren();
    console.log(
      `${CYCLES} wake/stop cycles in ${seconds.toFixed(1)}s ` +
        `(${(seconds / CYCLES * 1000).toFixed(1)} ms each): fds ${fdsBefore} -> ${fdsAfter} ` +
        `(${fdsMost} at most), RSS ${mib(rssBefore)} -> ${mib(rssAfter)} (${
          samples.join(", ")
        }), ` +
        `JS heap used ${mib(heapBefore)} -> ${mib(heapAfter)}, zombie children ${zombies.length}`,
    );
    assert.equal(harness.starts(), CYCLES + 20);
    assert.equal(harness.stops(), CYCLES + 20);
    assert.equal(harness.service.stats.wakes, CYCLES + 20);
    assert.equal(backend.connections(), CYCLES + 20, "one backend connection per cycle");
    assert.deepEqual(zombies, [], "no zombie children");
    assert.ok(fdsAfter <= fdsBefore + 5, `fds ${fdsBefore} -> ${fdsAfter}`);
    assert.ok(fdsMost <= fdsBefore + 10, `fds ${fdsBefore}, ${fdsMost} at most`);
    // Memory: the garbage of 2000 commands (their output buffers) waits for the collector, so RSS
    // rises for a while and levels off; a leak of a large buffer (256 KiB) a cycle would pass the
    // bound, and one of the JS objects of a cycle would show in the heap.
    assert.ok(
      rssAfter < rssBefore + 256 * 1024 * 1024,
      `RSS ${mib(rssBefore)} -> ${mib(rssAfter)}`,
    );
    assert.ok(
      heapAfter < heapBefore + 64 * 1024 * 1024,
      `JS heap ${mib(heapBefore)} -> ${mib(heapAfter)}`,
    );
    assert.ok(!exists(`${harness.dir}/backend.pid`));
  } finally {
    await harness.close();
  }
});
