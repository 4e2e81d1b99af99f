/**
 * A service behind a real listener, with real commands and a real echo
 * backend: wakes, failures, the awake fast path, idle stops, routing.
 */
import assert from "node:assert/strict";
import {
  captureLog,
  command,
  exchange,
  type Harness,
  openGate,
  startEchoBackend,
  startHarness,
  stopEchoBackend,
  waitForGate,
} from "./_service.ts";
import { isAlive, randomBytes, readAll, sha256, writeAll } from "./_net.ts";
import { bounded, exists, waitFor } from "./_helpers.ts";
import { ALONE, type Coordinator } from "../src/service/coordinator.ts";
import { abortable } from "../src/timers.ts";

/**
 * Waits (bounded) for a failed wake's clean-up to end: its clients are closed
 * at once, while STOP_CMD may still run.
 */
async function settled(harness: Harness) {
  await waitFor("the wake's clean-up", () => harness.service.state === "asleep");
}

Deno.test("openBackend() wakes once for 200 clients that all wait for the same wake", async () => {
  const harness = await startHarness((dir, port) => ({
    startCmd: command(`${waitForGate(dir)}\n${startEchoBackend(dir, port)}`),
  }));
  try {
    const messages = Array.from({ length: 200 }, (_, i) => `client ${i}`);
    const answers = Promise.all(messages.map((message) => exchange(harness.port, message)));
    await waitFor(
      "200 clients waiting for the wake",
      () => harness.service.stats.openConnections === 200,
    );
    assert.equal(harness.service.state, "starting", "START_CMD waits at the gate");
    await openGate(harness.dir);
    assert.deepEqual(await answers, messages);
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

Deno.test("a client let in between the idle check and the idle stop keeps the service awake: no STOP_CMD, its bytes echoed", async () => {
  const harness = await startHarness(() => ({ idleTime: 60, idleCheckInterval: 60 }));
  try {
    assert.equal(await exchange(harness.port, "wake"), "wake");
    let client: Deno.TcpConn | undefined;
    // The idle check found no client; before the stop begins, one is let in (as its accept's
    // continuation may run between the check's awaits and the stop's).
    const refusal = await harness.service.stop("idle", "idle for 60s", async () => {
      client = await Deno.connect({ hostname: "127.0.0.1", port: harness.port });
      await waitFor("the client let in", () => harness.service.stats.openConnections === 1);
    });
    assert.equal(refusal, "1 connection opened meanwhile");
    assert.equal(harness.service.state, "awake");
    assert.equal(harness.stops(), 0, "no STOP_CMD under the client");
    await writeAll(client!, new TextEncoder().encode("kept"));
    let echoed = "";
    const chunk = new Uint8Array(4);
    while (echoed.length < 4) {
      const read = await client!.read(chunk);
      if (read === null) break;
      echoed += new TextDecoder().decode(chunk.subarray(0, read));
    }
    assert.equal(echoed, "kept", "the client's connection still reaches the backend");
    client!.close();
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

Deno.test("a reload that turns idle stops off ends the idle checks of an awake service", async () => {
  const harness = await startHarness((dir) => ({
    idleTime: 0.3,
    idleCheckInterval: 0.1,
    idleCmd: command(`echo idle >> '${dir}/idle'`),
  }));
  try {
    assert.equal(await exchange(harness.port, "x"), "x");
    assert.equal(harness.service.idleMonitor.running, true);
    const { idleTime: _time, idleCheckInterval: _interval, ...rest } = harness.service.config;
    harness.service.reconfigure(rest);
    assert.equal(harness.service.idleMonitor.running, false);
    const runs = () => Deno.readTextFileSync(`${harness.dir}/idle`);
    const before = exists(`${harness.dir}/idle`) ? runs() : "";
    const since = Date.now();
    await waitFor("well past the old IDLE_TIME", () => Date.now() - since > 1000);
    assert.equal(harness.service.state, "awake", "the old schedule stopped nothing");
    assert.equal(harness.stops(), 0);
    assert.equal(exists(`${harness.dir}/idle`) ? runs() : "", before, "no IDLE_CMD ran since");
  } finally {
    await harness.close();
  }
});

Deno.test("a START_CMD failure closes every waiting client, logs its stderr, and the next client tries again", async () => {
  await using log = await captureLog();
  const harness = await startHarness((dir, port) => ({
    startCmd: command(`${waitForGate(dir)}
if [ ! -f '${dir}/fixed' ]; then echo "no disk" >&2; exit 3; fi
${startEchoBackend(dir, port)}`),
  }));
  try {
    const answers = Promise.all([1, 2, 3].map((i) => exchange(harness.port, `c${i}`)));
    await waitFor("3 clients waiting", () => harness.service.stats.openConnections === 3);
    await openGate(harness.dir);
    assert.deepEqual(await answers, ["", "", ""], "waiting clients are closed without an answer");
    await settled(harness);
    assert.equal(harness.service.stats.wakeFailures, 1);
    assert.equal(harness.stops(), 1, "STOP_CMD cleans up after the failed START_CMD");
    const lines = log.lines();
    assert.ok(
      lines.some((line) => / \[echo\] START_CMD exit 3 after \d+\.\ds: no disk$/.test(line)),
      lines.join("\n"),
    );
    const closed = lines.filter((line) =>
      /closing connection from .*: wake failed: START_CMD exit 3 after \d+\.\ds: no disk$/.test(
        line,
      )
    );
    assert.equal(closed.length, 3, lines.join("\n"));
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
    await settled(harness);
    assert.equal(harness.service.stats.wakeFailures, 1);
    assert.equal(harness.stops(), 1, "STOP_CMD cleans up after the START_CMD that timed out");
  } finally {
    await harness.close();
  }
});

Deno.test("a START_CMD that prints no target is a clear failure", async () => {
  await using log = await captureLog();
  const harness = await startHarness(() => ({ startCmd: command("echo 'started ok'") }));
  try {
    assert.equal(await exchange(harness.port, "hello"), "");
    await settled(harness);
    assert.equal(harness.service.stats.wakeFailures, 1);
    assert.equal(harness.stops(), 1);
    assert.ok(
      log.lines().some((line) =>
        line.endsWith(
          `[echo] cannot wake: START_CMD printed no target: Cannot read target from "started ok": ` +
            `expected "IP PORT", e.g. "127.0.0.1 8080"`,
        )
      ),
      log.lines().join("\n"),
    );
  } finally {
    await harness.close();
  }
});

Deno.test("a backend that never accepts fails the wake after READY_TIMEOUT and runs STOP_CMD with its target", async () => {
  const harness = await startHarness((dir, port) => ({
    startCmd: command(`echo start >> '${dir}/starts'; echo "127.0.0.1 ${port}"`),
    stopCmd: command(`echo "$SLEEPINGD_TARGET" >> '${dir}/stops'`),
    readyTimeout: 0.3,
  }));
  try {
    assert.equal(await exchange(harness.port, "hello"), "");
    await settled(harness);
    assert.equal(harness.starts(), 1);
    assert.equal(
      await Deno.readTextFile(`${harness.dir}/stops`),
      `127.0.0.1 ${harness.backendPort}\n`,
      "STOP_CMD cleans up what START_CMD started, knowing where it is",
    );
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

/**
 * A backend that accepts one connection into its queue and no more: later
 * connection attempts time out (the kernel drops them), they are not refused.
 */
function stuckBackend(): Deno.TcpListener {
  return Deno.listen({ hostname: "127.0.0.1", port: 0, tcpBacklog: 0 });
}

Deno.test("a connection timeout while awake fails that client alone: no new START_CMD, still awake", async () => {
  await using log = await captureLog();
  const stuck = stuckBackend();
  const harness = await startHarness((dir) => ({
    startCmd: command(`echo start >> '${dir}/starts'; echo "127.0.0.1 ${stuck.addr.port}"`),
    stopCmd: undefined,
    connectTimeout: 0.2,
  }));
  try {
    const first = await Deno.connect({ hostname: "127.0.0.1", port: harness.port });
    await waitFor("the wake", () => harness.service.state === "awake");
    assert.equal(await exchange(harness.port, "second"), "", "the second client is closed");
    assert.equal(harness.service.state, "awake");
    assert.equal(harness.starts(), 1);
    assert.equal(harness.service.stats.wakes, 1);
    const address = `127\\.0\\.0\\.1:${stuck.addr.port}`;
    const pattern = new RegExp(
      `closing connection from .*: Cannot connect to ${address}: Connection to ${address} ` +
        "timed out after 0\\.2s \\(not refused, so not known to be gone: the service stays awake\\)$",
    );
    assert.ok(log.lines().some((line) => pattern.test(line)), log.lines().join("\n"));
    first.close();
  } finally {
    stuck.close();
    await harness.close();
  }
});

Deno.test("a client that finds the backend gone after 3 wakes gives up, saying why (CHECK_CMD says down)", async () => {
  await using log = await captureLog();
  const stuck = [stuckBackend(), stuckBackend(), stuckBackend()];
  const ports = stuck.map((listener) => listener.addr.port);
  const harness = await startHarness((dir) => ({
    checkCmd: command("exit 1"),
    // Each wake goes to the next stuck backend: its spare connection fills its queue,
    // so the other clients' connections time out and CHECK_CMD says the backend is down.
    startCmd: command(`${waitForGate(dir)}
echo start >> '${dir}/starts'
echo "127.0.0.1 $(sed -n "$(wc -l < '${dir}/starts')p" '${dir}/ports')"`),
    stopCmd: undefined,
    connectTimeout: 0.2,
  }));
  await Deno.writeTextFile(`${harness.dir}/ports`, ports.join("\n") + "\n");
  const clients: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      clients.push(await Deno.connect({ hostname: "127.0.0.1", port: harness.port }));
    }
    await waitFor("5 clients waiting", () => harness.service.stats.openConnections === 5);
    await openGate(harness.dir);
    await waitFor(
      "two clients to give up",
      () => log.lines().filter((line) => line.includes("Gave up")).length === 2,
    );
    const pattern = new RegExp(
      "closing connection from .*: Gave up after 3 wakes in a row: " +
        `127\\.0\\.0\\.1:${ports[2]} is gone: Connection to 127\\.0\\.0\\.1:${ports[2]} ` +
        "timed out after 0\\.2s$",
    );
    const gaveUp = log.lines().filter((line) => line.includes("Gave up"));
    assert.ok(gaveUp.every((line) => pattern.test(line)), gaveUp.join("\n"));
    assert.equal(harness.starts(), 3, "one START_CMD per wake, and no fourth wake");
    assert.equal(harness.service.state, "asleep");
  } finally {
    for (const client of clients) client.close();
    for (const listener of stuck) listener.close();
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
    stopCmd: command(
      `${stopEchoBackend(dir)}; ${waitForGate(dir)}; echo stopped >> '${dir}/stopped'`,
    ),
  }));
  try {
    assert.equal(await exchange(harness.port, "one"), "one");
    const stopping = harness.service.stop("requested");
    assert.equal(harness.service.state, "stopping");
    const second = exchange(harness.port, "two");
    await waitFor("the second client to wait", () => harness.service.stats.totalConnections === 2);
    await openGate(harness.dir);
    assert.equal(await second, "two");
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

Deno.test("ROUTE_PER_CONNECTION runs STOP_CMD after a failed START_CMD, as a shared wake does", async () => {
  const harness = await startHarness((dir) => ({
    routePerConnection: true,
    startCmd: command(`echo start >> '${dir}/starts'; echo "half started" >&2; exit 1`),
  }));
  try {
    assert.equal(await exchange(harness.port, "a"), "");
    await settled(harness);
    assert.equal(harness.starts(), 1);
    assert.equal(harness.stops(), 1, "STOP_CMD cleans up what START_CMD began");
    assert.equal(harness.service.state, "asleep");
    assert.equal(harness.service.stats.wakeFailures, 1);
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
    await settled(harness);
    assert.equal(await Deno.readTextFile(`${harness.dir}/ready`), "run\n", "READY_CMD ran once");
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
    await waitFor("START_CMD to run", () => exists(`${harness.dir}/child.pid`));
    const child = Number(await Deno.readTextFile(`${harness.dir}/child.pid`));
    await bounded(harness.supervisor.shutdown(), "the shutdown, which must not wait for the wake");
    assert.equal(await client, "", "the waiting client is closed");
    await waitFor("the START_CMD child to die", () => !isAlive(child));
    assert.equal(harness.service.state, "asleep");
  } finally {
    await harness.close();
  }
});

Deno.test("a shutdown while another instance wakes the backend runs neither START_CMD nor STOP_CMD", async () => {
  const claims: string[] = [];
  // Another instance holds the lock and wakes the backend: this one waits, as the cluster
  // does, until the lock goes or its wait is ended.
  const elsewhere: Coordinator = {
    ...ALONE,
    claimWake(service, signal) {
      claims.push(`claimWake ${service}`);
      return abortable(new Promise<never>(() => {}), signal);
    },
    claimStop(service, reason) {
      claims.push(`claimStop ${service}`);
      return ALONE.claimStop(service, reason);
    },
  };
  const harness = await startHarness(() => ({}), {
    coordinator: elsewhere,
    global: { shutdownGrace: 0.1 },
  });
  try {
    const client = await Deno.connect({ hostname: "127.0.0.1", port: harness.port });
    await waitFor("the wake to wait for the other instance", () => claims.length === 1);
    await harness.supervisor.shutdown();
    assert.equal((await readAll(client)).length, 0, "the waiting client was closed");
    client.close();
    assert.deepEqual([harness.starts(), harness.stops()], [0, 0], "nothing of this instance ran");
    assert.deepEqual(claims, ["claimWake echo"], "nor did it claim a stop");
    assert.equal(harness.service.state, "asleep");
  } finally {
    await harness.close();
  }
});

Deno.test("a wake that sleep cancels is no failed wake: no failure for a waiting page to show", async () => {
  const harness = await startHarness((dir, port) => ({
    startCmd: command(
      `echo > '${dir}/at-gate'\n${waitForGate(dir)}\n${startEchoBackend(dir, port)}`,
    ),
  }));
  try {
    const client = await Deno.connect({ hostname: "127.0.0.1", port: harness.port });
    await waitFor("START_CMD at its gate", () => exists(`${harness.dir}/at-gate`));
    await harness.supervisor.sleep(harness.service, false);
    assert.equal((await readAll(client)).length, 0, "the waiting client was closed");
    client.close();
    assert.equal(harness.service.state, "asleep");
    assert.equal(harness.service.lastWakeFailure, undefined);
  } finally {
    await openGate(harness.dir);
    await harness.close();
  }
});

Deno.test("a client arriving while STOP_CMD cleans up a failed wake waits, then wakes again", async () => {
  const harness = await startHarness((dir, port) => ({
    startCmd: command(`echo start >> '${dir}/starts'; echo "127.0.0.1 ${port}"`),
    stopCmd: command(`echo stop >> '${dir}/stops'; ${waitForGate(dir)}`),
    readyTimeout: 0.2,
  }));
  try {
    const first = exchange(harness.port, "one");
    await waitFor("the cleanup STOP_CMD", () => harness.stops() === 1);
    assert.equal(harness.service.state, "stopping");
    assert.equal(await first, "", "the failed wake's client is closed");
    const second = exchange(harness.port, "two");
    await waitFor("the second client to wait", () => harness.service.stats.totalConnections === 2);
    assert.equal(harness.service.state, "stopping");
    await openGate(harness.dir);
    assert.equal(await second, "", "its own wake fails too: nothing listens");
    await settled(harness);
    assert.equal(harness.starts(), 2, "the second client woke the service again after the stop");
    assert.equal(harness.stops(), 2);
  } finally {
    await harness.close();
  }
});

Deno.test("bytes are counted once, as in and out, the same in stats and in the log", async () => {
  await using log = await captureLog();
  const harness = await startHarness();
  try {
    assert.equal(await exchange(harness.port, "12345"), "12345");
    await waitFor("the connection to close", () => harness.service.stats.openConnections === 0);
    assert.equal(harness.service.stats.bytesIn, 5);
    assert.equal(harness.service.stats.bytesOut, 5);
    assert.ok(
      log.lines().some((line) => / closed after \d+\.\d+s, 5 bytes in, 5 bytes out$/.test(line)),
      log.lines().join("\n"),
    );
  } finally {
    await harness.close();
  }
});
