/**
 * The wake on its own: real commands, a real backend listener the test owns,
 * and a gate that holds START_CMD until the test opens it.
 */
import assert from "node:assert/strict";
import type { ServiceConfig } from "../src/config/types.ts";
import type { RunCommand } from "../src/service/commands.ts";
import { runServiceCommand } from "../src/service/commands.ts";
import { wake, WakeError } from "../src/service/wake.ts";
import { exists, tempFiles, waitFor } from "./_helpers.ts";
import { readAll, text, writeAll } from "./_net.ts";
import { command, openGate, serviceConfig, waitForGate } from "./_service.ts";

/** A service whose commands are `commands`, and a way to run them that lists each run. */
function service(commands: Partial<ServiceConfig>) {
  const config = serviceConfig(commands);
  const ran: string[] = [];
  const run: RunCommand = (action, spec, context) => {
    ran.push(action);
    return runServiceCommand(config, action, spec, context);
  };
  return { config, run, ran };
}

Deno.test("wake() runs CHECK_CMD, START_CMD at the gate, READY_CMD, and hands over its one connection", async () => {
  await using dir = await tempFiles({});
  const backend = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { config, run, ran } = service({
    checkCmd: command("exit 1"),
    startCmd: command(`${waitForGate(dir.path)}\necho "127.0.0.1 ${backend.addr.port}"`),
    readyCmd: command(`[ "$SLEEPINGD_TARGET" = "127.0.0.1 ${backend.addr.port}" ]`),
  });
  try {
    const waking = wake({ config, run, signal: new AbortController().signal });
    await waitFor("START_CMD to wait at the gate", () => ran.includes("start"));
    await openGate(dir.path);
    const { target, conn } = await waking;
    assert.deepEqual(target, { hostname: "127.0.0.1", port: backend.addr.port });
    assert.deepEqual(ran, ["check", "start", "ready"]);
    const accepted = await backend.accept();
    await writeAll(conn!, new TextEncoder().encode("the client's own bytes"));
    conn!.close();
    assert.equal(text(await readAll(accepted)), "the client's own bytes", "no probe came first");
    accepted.close();
  } finally {
    backend.close();
  }
});

Deno.test("wake() takes CHECK_CMD's target and runs no START_CMD when the backend is up", async () => {
  const backend = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { config, run, ran } = service({
    checkCmd: command(`echo "127.0.0.1 ${backend.addr.port}"`),
    startCmd: command("exit 99"),
  });
  try {
    const { conn } = await wake({ config, run, signal: new AbortController().signal });
    assert.ok(conn, "a TCP wake ends with a connection");
    conn.close();
    assert.deepEqual(ran, ["check"]);
  } finally {
    backend.close();
  }
});

Deno.test("wake() uses the known target when CHECK_CMD says up without naming one", async () => {
  const backend = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const known = { hostname: "127.0.0.1", port: backend.addr.port };
  const { config, run, ran } = service({
    checkCmd: command("true "),
    startCmd: command("exit 99"),
  });
  try {
    const { target, conn } = await wake({
      config,
      run,
      signal: new AbortController().signal,
      knownTarget: known,
    });
    conn!.close();
    assert.deepEqual(target, known);
    assert.deepEqual(ran, ["check"]);
  } finally {
    backend.close();
  }
});

Deno.test("wake() fails saying START_CMD ran, and where to, when the backend never accepts", async () => {
  const backend = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = backend.addr.port;
  backend.close();
  const { config, run } = service({
    startCmd: command(`echo "127.0.0.1 ${port}"`),
    readyTimeout: 0.2,
  });
  await assert.rejects(wake({ config, run, signal: new AbortController().signal }), (error) => {
    assert.ok(error instanceof WakeError);
    assert.equal(error.startRan, true);
    assert.deepEqual(error.target, { hostname: "127.0.0.1", port });
    assert.match(
      error.message,
      new RegExp(
        `^127\\.0\\.0\\.1:${port} did not accept a connection within READY_TIMEOUT \\(0\\.2s\\): ` +
          "Connection refused",
      ),
    );
    return true;
  });
});

Deno.test("wake() says START_CMD did not run when CHECK_CMD cannot run at all", async () => {
  const { config, run } = service({ checkCmd: command("/nonexistent/check") });
  await assert.rejects(wake({ config, run, signal: new AbortController().signal }), (error) => {
    assert.ok(error instanceof WakeError);
    assert.equal(error.startRan, false);
    assert.match(error.message, /^CHECK_CMD cannot run: exit 127 after \d+\.\ds: .*nonexistent/);
    return true;
  });
});

Deno.test("wake() never lets a connection attempt outlast READY_TIMEOUT", async () => {
  // A queue of one, already full: a connection attempt hangs instead of being refused.
  const backend = Deno.listen({ hostname: "127.0.0.1", port: 0, tcpBacklog: 0 });
  const queued = await Deno.connect({ hostname: "127.0.0.1", port: backend.addr.port });
  const { config, run } = service({
    startCmd: command(`echo "127.0.0.1 ${backend.addr.port}"`),
    readyTimeout: 0.3,
    connectTimeout: 60,
  });
  try {
    await assert.rejects(wake({ config, run, signal: new AbortController().signal }), (error) => {
      assert.ok(error instanceof WakeError);
      assert.match(
        error.message,
        /did not accept a connection within READY_TIMEOUT \(0\.3s\): Connection to 127\.0\.0\.1:\d+ timed out after 0\.[0-3]\d*s$/,
      );
      return true;
    });
  } finally {
    queued.close();
    backend.close();
  }
});

Deno.test("wake() ends when aborted, killing START_CMD, and says why", async () => {
  await using dir = await tempFiles({});
  const { config, run } = service({
    startCmd: command(`echo $$ > '${dir.path}/pid'; ${waitForGate(dir.path)}; echo "127.0.0.1 9"`),
  });
  const stop = new AbortController();
  const waking = wake({ config, run, signal: stop.signal });
  await waitFor("START_CMD to run", () => exists(`${dir.path}/pid`));
  stop.abort(new Error("sleepingd is shutting down"));
  await assert.rejects(waking, (error) => {
    assert.ok(error instanceof WakeError);
    assert.equal(error.message, "sleepingd is shutting down");
    assert.equal(error.startRan, true);
    return true;
  });
});
