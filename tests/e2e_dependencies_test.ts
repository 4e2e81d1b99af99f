/**
 * DEPENDS_ON through the real CLI: waking a service wakes what it needs
 * first, each until ready; what is needed is not idle-stopped, nor put to
 * sleep, while the service needing it is awake; stops run in reverse.
 */
import assert from "node:assert/strict";
import { startDaemon } from "./_daemon.ts";
import { runCli } from "./_helpers.ts";
import { freePort, isAlive } from "./_net.ts";
import { exchange, startEchoBackend, stopEchoBackend } from "./_service.ts";

/** `app` DEPENDS_ON `db`; both echo backends log their starts and stops to one file, in order. */
async function setup() {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-depends-" });
  const ports = { app: freePort(), db: freePort() };
  const section = (name: "app" | "db", more: string) => {
    const backend = `${dir}/${name}`;
    Deno.mkdirSync(backend);
    return `[${name}]
PORT=${ports[name]}
LISTEN_ADDRESS=127.0.0.1
START_CMD='echo ${name} start >> ${dir}/order
${startEchoBackend(backend, freePort())}'
STOP_CMD='echo ${name} stop >> ${dir}/order
${stopEchoBackend(backend)}'
IDLE_TIME=0.3
IDLE_CHECK_INTERVAL=0.1
${more}`;
  };
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `VARRUN_PATH=${dir}/run\nSTATE_PATH=${dir}/state\n${section("db", "")}\n` +
      section("app", "DEPENDS_ON=db\n"),
  );
  const order = () => {
    try {
      return Deno.readTextFileSync(`${dir}/order`).trim().split("\n");
    } catch {
      return [];
    }
  };
  const cleanup = async () => {
    for (const name of ["app", "db"]) {
      try {
        const pid = Number(await Deno.readTextFile(`${dir}/${name}/backend.pid`));
        if (isAlive(pid)) Deno.kill(pid, "SIGKILL");
      } catch {
        // No backend left.
      }
    }
    await Deno.remove(dir, { recursive: true });
  };
  return { file, ports, order, cleanup };
}

Deno.test("DEPENDS_ON: a client of app wakes db first; db outlasts app's idle stop, then stops too", async () => {
  const { file, ports, order, cleanup } = await setup();
  const daemon = await startDaemon(file, { args: ["-v"] });
  try {
    assert.equal(await exchange(ports.app, "hello"), "hello");
    await daemon.waitForLine(/\[db\] asleep -> starting: needed by app$/);
    assert.deepEqual(order().slice(0, 2), ["db start", "app start"], "db first, then app");
    // While app is awake, db is not idle, whatever its own traffic (none).
    await daemon.waitForLine(/\[db\] not idle: needed by app$/);
    const refused = await runCli(["-f", file, "sleep", "db"]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /db is needed by app \(DEPENDS_ON\), not asleep: put that/);
    // app idles out first, then db: stops in reverse.
    await daemon.waitForLine(/\[db\] stopping -> asleep/);
    assert.deepEqual(order(), ["db start", "app start", "app stop", "db stop"]);
  } finally {
    await daemon.stop();
    await cleanup();
  }
});

Deno.test("DEPENDS_ON: the shutdown stops app before db", async () => {
  const { file, ports, order, cleanup } = await setup();
  const daemon = await startDaemon(file);
  try {
    // Kept awake, so that only the shutdown stops them.
    assert.equal((await runCli(["-f", file, "keep-awake", "db", "1h"])).code, 0);
    assert.equal((await runCli(["-f", file, "wake", "app", "--for", "1h"])).code, 0);
    assert.equal(await exchange(ports.db, "x"), "x");
    assert.equal(await daemon.stop(), 0);
    assert.deepEqual(order(), ["db start", "app start", "app stop", "db stop"]);
  } finally {
    await daemon.stop();
    await cleanup();
  }
});
