/**
 * Control without connecting, through the real CLI and the HTTP API:
 * `sleepingd wake`, `sleep`, `keep-awake`, the token that the HTTP side
 * needs, and MIN_AWAKE_TIME.
 */
import assert from "node:assert/strict";
import type { DaemonStatus } from "../src/control/status.ts";
import { startDaemon } from "./_daemon.ts";
import { runCli, waitFor } from "./_helpers.ts";
import { historySetup } from "./_history.ts";
import { freePort, isAlive, readAll, writeAll } from "./_net.ts";
import { exchange, openGate, startEchoBackend, stopEchoBackend, waitForGate } from "./_service.ts";

/** Lines in a file the echo backend's commands append to; 0 when there is none. */
function count(path: string): number {
  try {
    return Deno.readTextFileSync(path).split("\n").filter(Boolean).length;
  } catch {
    return 0;
  }
}

/** A client connection through the proxy that has had its echo and stays open. */
async function openClient(port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(conn, new TextEncoder().encode("x"));
  const buffer = new Uint8Array(1);
  assert.equal(await conn.read(buffer), 1);
  return conn;
}

Deno.test("sleepingd wake, sleep and keep-awake act on a service without a client", async () => {
  const setup = await historySetup({ name: "echo", idleTime: 0.5, cost: "" });
  const { dir, file, port } = setup;
  // -v: the idle checks say why the service is not idle.
  const daemon = await startDaemon(file, { args: ["-v"] });
  const cli = (...args: string[]) => runCli(["-f", file, ...args]);
  const state = async () => (await setup.api<DaemonStatus>("/api/status")).body.services[0].state;
  try {
    // wake returns once the backend is ready: it answers the moment the command is done.
    const woken = await cli("wake", "echo", "--for", "1.5s");
    assert.equal(woken.code, 0, woken.stderr);
    assert.match(woken.stdout, /^echo is awake at 127\.0\.0\.1:\d+, kept awake until \d{4}-.*Z\n$/);
    const backend = Number(/127\.0\.0\.1:(\d+)/.exec(woken.stdout)![1]);
    (await Deno.connect({ hostname: "127.0.0.1", port: backend })).close();
    await daemon.waitForLine(/\[echo\] asleep -> starting: wake asked by sleepingd wake/);
    // Idle, but kept awake; once the time is up, the idle stop comes.
    await daemon.waitForLine(/\[echo\] not idle: kept awake until \d{4}-/);
    assert.equal(count(`${dir}/echo/stops`), 0, "no idle stop while kept awake");
    await daemon.waitForLine(/\[echo\] awake -> stopping: idle for/);

    const unknown = await cli("wake", "nope");
    assert.equal(unknown.code, 1);
    assert.equal(
      unknown.stderr,
      'sleepingd: error: No service is named "nope" (the services: echo)\n',
    );
    const badDuration = await cli("keep-awake", "echo", "soon");
    assert.equal(badDuration.code, 2);
    assert.match(badDuration.stderr, /"soon" is not a duration: e\.g\. 90s, 30m, 2h, 1h30m or 0/);
    const missing = await cli("keep-awake", "echo");
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /"keep-awake" needs DURATION/);

    // sleep waits for the open connection (up to SHUTDOWN_GRACE), then stops.
    const client = await openClient(port);
    const sleeping = cli("sleep", "echo");
    await daemon.waitForLine(/\[echo\] asked to sleep: waiting up to \d+s for 1 open connection/);
    assert.equal(count(`${dir}/echo/stops`), 1, "not stopped while the connection is open");
    client.close();
    const slept = await sleeping;
    assert.deepEqual([slept.code, slept.stdout], [0, "echo is asleep\n"]);
    assert.equal(count(`${dir}/echo/stops`), 2);

    // sleep --force closes the open connection at once.
    const forced = await openClient(port);
    const now = await cli("sleep", "echo", "--force");
    assert.deepEqual([now.code, now.stdout], [0, "echo is asleep\n"]);
    assert.equal((await readAll(forced)).length, 0, "the client was closed");
    forced.close();
    assert.equal(count(`${dir}/echo/stops`), 3);
    assert.equal(await state(), "asleep");

    const kept = await cli("keep-awake", "echo", "1h");
    assert.match(kept.stdout, /^echo is asleep, kept awake until /);
    const status = await cli("status");
    assert.match(status.stdout, /kept awake until \d{4}-/);
    const ended = await cli("keep-awake", "echo", "0");
    assert.equal(ended.stdout, "echo is asleep, not kept awake\n");
  } finally {
    await setup.cleanup(daemon);
  }
});

Deno.test("sleepingd sleep during a wake cancels it: START_CMD ended, STOP_CMD cleans up, waiting clients closed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-sleep-" });
  const port = freePort();
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `VARRUN_PATH=${dir}/run\nSTATE_PATH=${dir}/state\n[echo]\nPORT=${port}\n` +
      `LISTEN_ADDRESS=127.0.0.1\nHOLD_TIMEOUT=300\nSTART_CMD='echo $$ >> ${dir}/start.pids
${waitForGate(dir)}
${startEchoBackend(dir, freePort())}'\nSTOP_CMD='${stopEchoBackend(dir)}'\n`,
  );
  const daemon = await startDaemon(file);
  const cli = (...args: string[]) => runCli(["-f", file, ...args]);
  const state = async () => JSON.parse((await cli("status", "--json")).stdout).services[0].state;
  const startPids = () => Deno.readTextFileSync(`${dir}/start.pids`).split("\n").filter(Boolean);
  try {
    // A wake asked for, then sleep: the wake is cancelled, and says so.
    const waking = cli("wake", "echo");
    await waitFor("START_CMD at its gate", () => count(`${dir}/start.pids`) === 1);
    const slept = await cli("sleep", "echo");
    assert.equal(await state(), "asleep", "asleep once sleep has answered");
    assert.deepEqual(
      [slept.code, slept.stdout],
      [0, "echo is asleep (the wake under way was cancelled)\n"],
      slept.stderr,
    );
    assert.ok(!isAlive(Number(startPids()[0])), "START_CMD was ended");
    assert.equal(count(`${dir}/stops`), 1, "STOP_CMD cleaned up after it");
    const woken = await waking;
    assert.deepEqual([woken.code, woken.stderr], [
      1,
      "sleepingd: error: wake failed: echo was put to sleep\n",
    ]);

    // A client that sent its bytes and half-closed waits for a wake: --force closes it at once.
    const client = await Deno.connect({ hostname: "127.0.0.1", port });
    await writeAll(client, new TextEncoder().encode("sent, then half-closed"));
    await client.closeWrite(); // held: nothing reads it again until the wake ends
    await waitFor("START_CMD at its gate", () => count(`${dir}/start.pids`) === 2);
    const forced = await cli("sleep", "echo", "--force");
    assert.deepEqual(
      [forced.code, forced.stdout],
      [0, "echo is asleep (the wake under way was cancelled)\n"],
      forced.stderr,
    );
    assert.equal(await state(), "asleep");
    assert.ok(!isAlive(Number(startPids()[1])), "START_CMD was ended");
    assert.equal(count(`${dir}/stops`), 2, "STOP_CMD cleaned up after it");
    assert.equal((await readAll(client)).length, 0, "the waiting client was closed");
    client.close();
    await daemon.waitForLine(/\[echo\] closing connection from .*: wake failed: echo was put to/);

    await openGate(dir);
    assert.equal(await exchange(port, "woken again"), "woken again");
  } finally {
    await daemon.stop();
    const pid = Number(await Deno.readTextFile(`${dir}/backend.pid`).catch(() => ""));
    if (pid && isAlive(pid)) Deno.kill(pid, "SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the HTTP API acts only with the token of API_TOKEN_FILE", async () => {
  const token = crypto.randomUUID();
  const setup = await historySetup({
    name: "echo",
    idleTime: 60,
    cost: "",
    global: (dir) => `API_TOKEN_FILE=${dir}/token`,
  });
  const { dir, file, http } = setup;
  await Deno.writeTextFile(`${dir}/token`, `${token}\n`);
  const daemon = await startDaemon(file);
  const post = async (path: string, options: { token?: string; body?: string } = {}) => {
    const response = await fetch(`http://127.0.0.1:${http}${path}`, {
      method: "POST",
      headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
      body: options.body,
    });
    return { status: response.status, body: await response.json() };
  };
  try {
    const none = await post("/api/services/echo/wake");
    assert.equal(none.status, 401);
    assert.match(none.body.error, /A valid token is needed/);
    assert.equal((await post("/api/services/echo/wake", { token: "guess" })).status, 401);
    await daemon.waitForLine(/refused wake of \[echo\] from 127\.0\.0\.1:\d+: no valid token/);
    assert.equal(
      (await setup.api<{ services: { state: string }[] }>("/api/status")).body
        .services[0].state,
      "asleep",
      "nothing was woken",
    );

    const woken = await post("/api/services/echo/wake", { token, body: '{"for": "1h"}' });
    assert.equal(woken.status, 200);
    assert.equal(woken.body.ok, true);
    assert.match(woken.body.message, /^echo is awake at 127\.0\.0\.1:\d+, kept awake until /);
    assert.equal(woken.body.service.state, "awake");
    assert.notEqual(woken.body.service.keptAwakeUntil, null);
    await daemon.waitForLine(/asleep -> starting: wake asked by the HTTP API from 127\.0\.0\.1/);

    const slept = await post("/api/services/echo/sleep", { token, body: '{"force": true}' });
    assert.deepEqual([slept.status, slept.body.service.state], [200, "asleep"]);
    assert.equal(slept.body.service.keptAwakeUntil, null, "sleep ends the keep-awake");
    const unknown = await post("/api/services/nope/wake", { token });
    assert.equal(unknown.status, 404);
    const badBody = await post("/api/services/echo/keep-awake", { token, body: "{" });
    assert.equal(badBody.status, 400);
    const noTime = await post("/api/services/echo/keep-awake", { token });
    assert.deepEqual(noTime.body, { error: "keep-awake needs how long, in seconds" });
    const get = await fetch(`http://127.0.0.1:${http}/api/services/echo/wake`);
    assert.deepEqual([get.status, get.headers.get("allow")], [405, "POST"]);
    await get.body?.cancel();
  } finally {
    await setup.cleanup(daemon);
  }
});

Deno.test("without API_TOKEN_FILE the HTTP API takes no action", async () => {
  const setup = await historySetup({ name: "echo", idleTime: 60, cost: "" });
  const daemon = await startDaemon(setup.file);
  try {
    const response = await fetch(`http://127.0.0.1:${setup.http}/api/services/echo/wake`, {
      method: "POST",
      headers: { authorization: "Bearer anything" },
    });
    assert.equal(response.status, 403);
    assert.deepEqual(await response.json(), {
      error: "The HTTP API takes no action here: set API_TOKEN_FILE",
    });
  } finally {
    await setup.cleanup(daemon);
  }
});

Deno.test("MIN_AWAKE_TIME holds off the idle stop of a service woken by a client", async () => {
  const setup = await historySetup({
    name: "echo",
    idleTime: 0.2,
    cost: "",
    extra: "MIN_AWAKE_TIME=1.5",
  });
  const daemon = await startDaemon(setup.file);
  try {
    (await openClient(setup.port)).close();
    await daemon.waitForLine(/\[echo\] stopping -> asleep/);
    const stop = (await setup.firstStop())!;
    assert.ok(stop.lasted >= 1.5, `awake ${stop.lasted}s before the idle stop`);
  } finally {
    await setup.cleanup(daemon);
  }
});
