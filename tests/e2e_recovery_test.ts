/**
 * Crash recovery on the real CLI: after `kill -9` of a daemon, the next one
 * takes back what it left behind — an awake backend is adopted (and stopped
 * when idle), a START_CMD left mid-wake is ended and cleaned up after.
 */
import assert from "node:assert/strict";
import { startDaemon } from "./_daemon.ts";
import { exists, readPid, runCli, waitFor } from "./_helpers.ts";
import { freePort, isAlive } from "./_net.ts";
import { exchange, openGate, startEchoBackend, stopEchoBackend, waitForGate } from "./_service.ts";

/** A folder with a configuration of one echo service, whose VARRUN_PATH outlives each daemon. */
async function setup(service: (dir: string, backend: number) => string) {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-recovery-" });
  const port = freePort();
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `VARRUN_PATH=${dir}/run\nSTATE_PATH=${dir}/state\n[echo]\nPORT=${port}\nLISTEN_ADDRESS=127.0.0.1\n` +
      service(dir, freePort()),
  );
  const cleanup = async () => {
    for (const name of ["backend.pid", "start.pid", "child.pid"]) {
      try {
        const pid = Number(await Deno.readTextFile(`${dir}/${name}`));
        if (isAlive(pid)) Deno.kill(pid, "SIGKILL");
      } catch {
        // Not there.
      }
    }
    await Deno.remove(dir, { recursive: true });
  };
  return { dir, port, file, cleanup };
}

/** Kills the daemon with SIGKILL: no shutdown, no STOP_CMD, its state file left as it was. */
async function killHard(daemon: { pid: number; stop(): Promise<number> }) {
  Deno.kill(daemon.pid, "SIGKILL");
  await daemon.stop();
}

Deno.test("after kill -9, the next daemon adopts the backend left awake, and stops it when idle", async () => {
  const { dir, port, file, cleanup } = await setup((dir, backend) =>
    `START_CMD='${startEchoBackend(dir, backend)}'
STOP_CMD='${stopEchoBackend(dir)}'
IDLE_TIME=0.5
IDLE_CHECK_INTERVAL=0.1
`
  );
  try {
    const first = await startDaemon(file);
    assert.equal(await exchange(port, "before"), "before");
    const backend = await readPid(`${dir}/backend.pid`);
    // Keep the first daemon from stopping it when idle: kill it while the backend is awake.
    await killHard(first);
    assert.ok(isAlive(backend), "the backend outlives the killed daemon");

    const second = await startDaemon(file);
    try {
      const line = await second.waitForLine(/adopted the backend/);
      assert.match(
        line,
        /\[echo\] adopted the backend at 127\.0\.0\.1:\d+ \(the last daemon had it awake\): its idle checks begin$/,
      );
      await second.waitForLine(/awake -> stopping: idle for/);
      await waitFor("the adopted backend to be stopped", () => !isAlive(backend));
      assert.equal(await Deno.readTextFile(`${dir}/stops`), "stop\n");
    } finally {
      assert.equal(await second.stop(), 0);
    }
    assert.ok(!exists(`${dir}/run/state.json`), "a clean shutdown leaves no state behind");
  } finally {
    await cleanup();
  }
});

Deno.test("with CHECK_CMD, a daemon adopts a backend that runs, even without a saved state", async () => {
  const { dir, port, file, cleanup } = await setup((dir, backend) =>
    `CHECK_CMD='[ -f ${dir}/backend.pid ] && kill -0 "$(cat ${dir}/backend.pid)" && echo "127.0.0.1 ${backend}"'
START_CMD='${startEchoBackend(dir, backend)}'
STOP_CMD='${stopEchoBackend(dir)}'
`
  );
  try {
    const first = await startDaemon(file);
    assert.equal(await exchange(port, "before"), "before");
    await killHard(first);
    await Deno.remove(`${dir}/run/state.json`);

    const second = await startDaemon(file);
    try {
      await second.waitForLine(/adopted the backend at .* \(CHECK_CMD says it is up\)/);
      const status = JSON.parse((await runCli(["-f", file, "status", "--json"])).stdout);
      assert.equal(status.services[0].state, "awake");
      assert.equal(await exchange(port, "after"), "after");
      assert.equal(await Deno.readTextFile(`${dir}/starts`), "start\n", "no second START_CMD");
    } finally {
      assert.equal(await second.stop(), 0);
    }
  } finally {
    await cleanup();
  }
});

Deno.test("after kill -9 mid-wake, the next daemon ends the START_CMD left behind and runs STOP_CMD", async () => {
  const { dir, port, file, cleanup } = await setup((dir, backend) =>
    `START_CMD='echo $$ > ${dir}/start.pid
sleep 1000 & echo $! > ${dir}/child.pid
${waitForGate(dir)}
${startEchoBackend(dir, backend)}'
STOP_CMD='echo stop >> ${dir}/stops'
`
  );
  try {
    const first = await startDaemon(file);
    const client = Deno.connect({ hostname: "127.0.0.1", port });
    await waitFor("START_CMD to wait at the gate", () => exists(`${dir}/child.pid`));
    const start = await readPid(`${dir}/start.pid`);
    const child = await readPid(`${dir}/child.pid`);
    await killHard(first);
    (await client).close();
    assert.ok(isAlive(start) && isAlive(child), "the killed daemon's START_CMD runs on");

    const second = await startDaemon(file);
    try {
      await second.waitForLine(/ending START_CMD \(pid \d+\) left by the last daemon/);
      await second.waitForLine(/\[echo\] stopping -> asleep: STOP_CMD done/);
      assert.ok(!isAlive(start) && !isAlive(child), "its whole process group is gone");
      assert.equal(await Deno.readTextFile(`${dir}/stops`), "stop\n");
      assert.ok(
        second.lines.some((line) =>
          /\[echo\] asleep -> stopping: a daemon killed mid-wake left START_CMD \(pid \d+\) behind/
            .test(line)
        ),
      );
      await openGate(dir);
      assert.equal(await exchange(port, "woken again"), "woken again");
    } finally {
      assert.equal(await second.stop(), 0);
    }
  } finally {
    await cleanup();
  }
});
