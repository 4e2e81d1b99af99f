import assert from "node:assert/strict";
import { command, exchange, startEchoBackend, startHarness, stopEchoBackend } from "./_service.ts";
import { isAlive, randomBytes, readAll, sha256, waitFor, writeAll } from "./_net.ts";

Deno.test("openBackend() wakes once for 200 clients arriving at once while asleep", async () => {
  const harness = await startHarness();
  try {
    const messages = Array.from({ length: 200 }, (_, i) => `client ${i}`);
    const answers = await Promise.all(messages.map((message) => exchange(harness.port, message)));
    assert.deepEqual(answers, messages);
    assert.equal(harness.starts(), 1);
    assert.equal(harness.service.state, "awake");
    assert.equal(harness.service.stats.wakes, 1);
    assert.equal(harness.service.stats.totalConnections, 200);
    await harness.supervisor.shutdown();
    assert.equal(harness.stops(), 1, "shutdown runs STOP_CMD for the awake service");
  } finally {
    await harness.close();
  }
});

Deno.test("a client that writes then half-closes gets the whole answer through a cold start", async () => {
  const harness = await startHarness();
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: harness.port });
    await writeAll(conn, new TextEncoder().encode("sent before the backend existed"));
    await conn.closeWrite();
    const answer = new TextDecoder().decode(await readAll(conn));
    conn.close();
    assert.equal(answer, "sent before the backend existed");
  } finally {
    await harness.close();
  }
});

Deno.test("32 MiB through the proxy arrive byte-identical both ways", async () => {
  const harness = await startHarness();
  try {
    const data = randomBytes(32 * 1024 * 1024);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: harness.port });
    const [echoed] = await Promise.all([
      readAll(conn),
      writeAll(conn, data).then(() => conn.closeWrite()),
    ]);
    conn.close();
    assert.equal(echoed.length, data.length);
    assert.equal(await sha256(echoed), await sha256(data));
    assert.equal(harness.service.stats.bytesIn, data.length);
    assert.equal(harness.service.stats.bytesOut, data.length);
  } finally {
    await harness.close();
  }
});

Deno.test("an open idle connection prevents the idle stop; closing it lets STOP_CMD run once", async () => {
  const harness = await startHarness(() => ({ idleTime: 0.3, idleCheckInterval: 0.1 }));
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: harness.port });
    await writeAll(conn, new TextEncoder().encode("hi"));
    assert.equal(await conn.read(new Uint8Array(2)), 2);
    // Several idle checks pass while the connection stays open.
    const checksBefore = Date.now();
    await waitFor("ten idle intervals", () => Date.now() - checksBefore > 1000);
    assert.equal(harness.service.state, "awake");
    assert.equal(harness.stops(), 0);
    conn.close();
    await waitFor("the idle stop", () => harness.service.state === "asleep");
    assert.equal(harness.stops(), 1);
    assert.equal(harness.service.stats.idleStops, 1);
    const pid = harness.backendPid();
    assert.ok(pid === undefined || !isAlive(pid), "STOP_CMD killed the backend");
    // The next client wakes it again.
    assert.equal(await exchange(harness.port, "again"), "again");
    assert.equal(harness.starts(), 2);
  } finally {
    await harness.close();
  }
});

Deno.test("IDLE_CMD exiting non-zero keeps the service awake", async () => {
  const harness = await startHarness((dir) => ({
    idleTime: 0.2,
    idleCheckInterval: 0.1,
    idleCmd: command(`echo idle >> '${dir}/idle'; [ -f '${dir}/idle-now' ]`),
  }));
  try {
    assert.equal(await exchange(harness.port, "x"), "x");
    const idleRuns = () => {
      try {
        return Deno.readTextFileSync(`${harness.dir}/idle`).split("\n").length - 1;
      } catch {
        return 0;
      }
    };
    await waitFor("five IDLE_CMD runs", () => idleRuns() >= 5);
    assert.equal(harness.service.state, "awake");
    await Deno.writeTextFile(`${harness.dir}/idle-now`, "");
    await waitFor("the idle stop", () => harness.service.state === "asleep");
    assert.equal(harness.stops(), 1);
  } finally {
    await harness.close();
  }
});

Deno.test("a START_CMD failure closes the waiting clients and the next client tries again", async () => {
  const harness = await startHarness((dir, port) => ({
    startCmd: command(`if [ ! -f '${dir}/fixed' ]; then echo "no disk" >&2; exit 3; fi
${startEchoBackend(dir, port)}`),
  }));
  try {
    const answers = await Promise.all([1, 2, 3].map((i) => exchange(harness.port, `c${i}`)));
    assert.deepEqual(answers, ["", "", ""], "waiting clients are closed without an answer");
    assert.equal(harness.service.state, "asleep");
    assert.equal(harness.service.stats.wakeFailures, 1);
    assert.equal(harness.stops(), 1, "STOP_CMD cleans up after the failed START_CMD");
    await Deno.writeTextFile(`${harness.dir}/fixed`, "");
    assert.equal(await exchange(harness.port, "retry"), "retry");
    assert.equal(harness.service.stats.wakes, 1);
  } finally {
    await harness.close();
  }
});

Deno.test("a START_CMD timeout closes the client and leaves no child process behind", async () => {
  const harness = await startHarness((dir) => ({
    startCmd: command(`sleep 1000 & echo $! > '${dir}/child.pid'; wait`, 0.5),
  }));
  try {
    assert.equal(await exchange(harness.port, "hello"), "");
    const child = Number(await Deno.readTextFile(`${harness.dir}/child.pid`));
    await waitFor("the START_CMD child to die", () => !isAlive(child), 10);
    assert.equal(harness.service.state, "asleep");
    assert.equal(harness.service.stats.wakeFailures, 1);
    assert.equal(harness.stops(), 1, "STOP_CMD cleans up after the START_CMD that timed out");
  } finally {
    await harness.close();
  }
});

Deno.test("a START_CMD that prints no target is a clear failure", async () => {
  const harness = await startHarness(() => ({ startCmd: command("echo 'started ok'") }));
  try {
    assert.equal(await exchange(harness.port, "hello"), "");
    assert.equal(harness.service.state, "asleep");
    assert.equal(harness.service.stats.wakeFailures, 1);
    assert.equal(harness.stops(), 1);
  } finally {
    await harness.close();
  }
});

Deno.test("a backend that never accepts fails the wake after READY_TIMEOUT and runs STOP_CMD", async () => {
  const harness = await startHarness((dir, port) => ({
    startCmd: command(`echo start >> '${dir}/starts'; echo "127.0.0.1 ${port}"`),
    readyTimeout: 0.3,
  }));
  try {
    assert.equal(await exchange(harness.port, "hello"), "");
    assert.equal(harness.starts(), 1);
    assert.equal(harness.stops(), 1, "STOP_CMD cleans up what START_CMD started");
    assert.equal(harness.service.state, "asleep");
  } finally {
    await harness.close();
  }
});

Deno.test("READY_CMD runs until it exits 0 before the first client is connected", async () => {
  const harness = await startHarness((dir) => ({
    readyCmd: command(
      `echo "$SLEEPINGD_TARGET" >> '${dir}/ready'; [ "$(wc -l < '${dir}/ready')" -ge 3 ]`,
    ),
  }));
  try {
    assert.equal(await exchange(harness.port, "ready?"), "ready?");
    const runs = (await Deno.readTextFile(`${harness.dir}/ready`)).trim().split("\n");
    assert.equal(runs.length, 3);
    assert.equal(runs[0], `127.0.0.1 ${harness.backendPort}`);
  } finally {
    await harness.close();
  }
});

Deno.test("a refused connection while awake means the backend died: the service wakes again", async () => {
  const harness = await startHarness();
  try {
    assert.equal(await exchange(harness.port, "one"), "one");
    const pid = harness.backendPid()!;
    Deno.kill(pid, "SIGKILL");
    await waitFor("the backend's port to refuse connections", async () => {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: harness.backendPort })).close();
        return false;
      } catch {
        return !isAlive(pid);
      }
    });
    await Deno.remove(`${harness.dir}/backend.pid`);
    assert.equal(await exchange(harness.port, "two"), "two");
    assert.equal(harness.starts(), 2);
    assert.equal(harness.service.stats.wakes, 2);
  } finally {
    await harness.close();
  }
});

Deno.test("CHECK_CMD exiting 0 with a target skips START_CMD", async () => {
  const harness = await startHarness((dir, port) => ({
    checkCmd: command(`[ -f '${dir}/backend.pid' ] && echo "127.0.0.1 ${port}"`),
  }));
  try {
    assert.equal(await exchange(harness.port, "first"), "first");
    assert.equal(harness.starts(), 1);
    await harness.service.stop("requested");
    assert.equal(harness.stops(), 1);
    // STOP_CMD killed it: the check fails, START_CMD runs again.
    assert.equal(await exchange(harness.port, "second"), "second");
    assert.equal(harness.starts(), 2);
  } finally {
    await harness.close();
  }
});

Deno.test("the commands get the service, action and client in their environment", async () => {
  const harness = await startHarness((dir, port) => ({
    startCmd: command(
      `env | grep ^SLEEPINGD_ | sort > '${dir}/env'
${startEchoBackend(dir, port)}`,
    ),
  }));
  try {
    assert.equal(await exchange(harness.port, "env"), "env");
    const env = await Deno.readTextFile(`${harness.dir}/env`);
    assert.match(env, /^SLEEPINGD_ACTION=start$/m);
    assert.match(env, /^SLEEPINGD_CLIENT_ADDRESS=127\.0\.0\.1$/m);
    assert.match(env, /^SLEEPINGD_CLIENT_PORT=\d+$/m);
    assert.match(env, /^SLEEPINGD_SERVICE=echo$/m);
    assert.match(env, new RegExp(`^SLEEPINGD_PORT=${harness.port}$`, "m"));
  } finally {
    await harness.close();
  }
});

Deno.test("a client arriving while STOP_CMD runs waits for the stop, then wakes the service", async () => {
  const harness = await startHarness((dir) => ({
    stopCmd: command(`${stopEchoBackend(dir)}; sleep 0.5; echo stopped >> '${dir}/stopped'`),
  }));
  try {
    assert.equal(await exchange(harness.port, "one"), "one");
    const stopping = harness.service.stop("requested");
    assert.equal(harness.service.state, "stopping");
    assert.equal(await exchange(harness.port, "two"), "two");
    await stopping;
    assert.equal(await Deno.readTextFile(`${harness.dir}/stopped`), "stopped\n");
    assert.equal(harness.stops(), 1);
    assert.equal(harness.starts(), 2);
    assert.equal(harness.service.state, "awake");
  } finally {
    await harness.close();
  }
});

Deno.test("ROUTE_PER_CONNECTION runs START_CMD for every connection", async () => {
  const harness = await startHarness((dir, port) => ({
    routePerConnection: true,
    startCmd: command(`if [ -f '${dir}/backend.pid' ]; then
  echo start >> '${dir}/starts'; echo "127.0.0.1 ${port}"
else
${startEchoBackend(dir, port)}
fi`),
  }));
  try {
    for (const message of ["a", "b", "c"]) {
      assert.equal(await exchange(harness.port, message), message);
    }
    assert.equal(harness.starts(), 3);
    assert.equal(harness.service.state, "awake");
    assert.equal(harness.service.stats.wakes, 1);
  } finally {
    await harness.close();
  }
});

Deno.test("a READY_CMD that cannot run fails the wake at once instead of retrying", async () => {
  const harness = await startHarness((dir, port) => ({
    // No backend process: a STOP_CMD this quick could run before it wrote its pidfile.
    startCmd: command(`echo start >> '${dir}/starts'; echo "127.0.0.1 ${port}"`),
    readyCmd: command(`echo run >> '${dir}/ready'; /nonexistent/pg_isready`),
  }));
  try {
    assert.equal(await exchange(harness.port, "hello"), "");
    assert.equal(await Deno.readTextFile(`${harness.dir}/ready`), "run\n", "READY_CMD ran once");
    assert.equal(harness.service.state, "asleep");
    assert.equal(harness.service.stats.wakeFailures, 1);
    assert.equal(harness.stops(), 1, "STOP_CMD cleans up what START_CMD started");
  } finally {
    await harness.close();
  }
});

Deno.test("shutdown ends a wake still under way after SHUTDOWN_GRACE and kills its START_CMD", async () => {
  const harness = await startHarness((dir, port) => ({
    startCmd: command(`sleep 1000 & echo $! > '${dir}/child.pid'; wait; echo "127.0.0.1 ${port}"`),
  }));
  try {
    const client = exchange(harness.port, "waiting");
    await waitFor("START_CMD to run", async () => {
      try {
        await Deno.stat(`${harness.dir}/child.pid`);
        return true;
      } catch {
        return false;
      }
    });
    const child = Number(await Deno.readTextFile(`${harness.dir}/child.pid`));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error("shutdown waited for the wake")), 30_000);
    });
    await Promise.race([harness.supervisor.shutdown(), bound]).finally(() => clearTimeout(timer));
    assert.equal(await client, "", "the waiting client is closed");
    await waitFor("the START_CMD child to die", () => !isAlive(child));
    assert.equal(harness.service.state, "asleep");
  } finally {
    await harness.close();
  }
});

Deno.test("a client arriving while STOP_CMD cleans up a failed wake waits, then wakes again", async () => {
  const harness = await startHarness((dir, port) => ({
    startCmd: command(`echo start >> '${dir}/starts'; echo "127.0.0.1 ${port}"`),
    stopCmd: command(`echo stop >> '${dir}/stops'; sleep 0.5`),
    readyTimeout: 0.2,
  }));
  try {
    const first = exchange(harness.port, "one");
    await waitFor("the cleanup STOP_CMD", () => harness.stops() === 1);
    assert.equal(harness.service.state, "stopping");
    const second = exchange(harness.port, "two");
    assert.deepEqual(await Promise.all([first, second]), ["", ""]);
    assert.equal(harness.starts(), 2, "the second client woke the service again after the stop");
    assert.equal(harness.stops(), 2);
  } finally {
    await harness.close();
  }
});
