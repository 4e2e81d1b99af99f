/**
 * The Redis recipe (examples/redis), end to end: the real CLI wakes a real
 * redis-server from cold for redis-cli and redis-benchmark, stops it when
 * idle, and the data survives the sleep.
 */
import assert from "node:assert/strict";
import { replaceLine, startDaemon } from "./_daemon.ts";
import { freePort, isAlive } from "./_net.ts";
import { serverTest } from "./_servers.ts";
import { readPid, REPO, runProgram, waitFor } from "./_helpers.ts";

serverTest(
  "redis-cli and redis-benchmark reach a Redis woken from cold, which sleeps when idle and keeps its data",
  [
    { binary: "redis-server", package: "redis-server" },
    { binary: "redis-cli", package: "redis-tools" },
    { binary: "redis-benchmark", package: "redis-tools" },
  ],
  async (paths) => {
    const port = freePort();
    const redisPort = freePort();
    const dir = await Deno.makeTempDir({ prefix: "sleepingd-redis-" });
    const recipe = await Deno.readTextFile(`${REPO}examples/redis/sleepingd.conf`);
    let config = replaceLine(recipe, /^PORT=6379$/m, `PORT=${port}`);
    config = replaceLine(config, /^IDLE_TIME=300$/m, "IDLE_TIME=1");
    config = replaceLine(config, /^IDLE_CHECK_INTERVAL=10$/m, "IDLE_CHECK_INTERVAL=0.2");
    const file = `${dir}/sleepingd.conf`;
    await Deno.writeTextFile(file, config);
    const pidfile = `${dir}/data/redis.pid`;
    const daemon = await startDaemon(file, {
      env: {
        REDIS_PORT: `${redisPort}`,
        REDIS_DIR: `${dir}/data`,
        REDIS_SERVER: paths["redis-server"],
        REDIS_CLI: paths["redis-cli"],
      },
    }).catch(async (error) => {
      await Deno.remove(dir, { recursive: true });
      throw error;
    });
    const pids: number[] = [];
    const cli = async (...args: string[]) => {
      const result = await runProgram(paths["redis-cli"], [
        "-h",
        "127.0.0.1",
        "-p",
        `${port}`,
        ...args,
      ]);
      assert.equal(result.code, 0, `redis-cli ${args.join(" ")} failed: ${result.stderr}`);
      return result.stdout.trim();
    };
    try {
      // Cold: the first command wakes redis-server and is answered on the first try.
      const began = performance.now();
      assert.equal(await cli("set", "k", "v"), "OK");
      const coldSeconds = (performance.now() - began) / 1000;
      const awake = await daemon.waitForLine(/starting -> awake/);
      pids.push(await readPid(pidfile));
      assert.equal(await cli("get", "k"), "v");
      console.log(
        `redis cold start: first answer after ${coldSeconds.toFixed(3)}s ` +
          `(sleepingd: ${awake.match(/accepted after (\S+)/)?.[1]})`,
      );

      /** Waits for the idle stop logged at or after line `from`, then for `pid` to be gone. */
      const sleeps = async (from: number, pid: number) => {
        await daemon.waitForLine(/stopping -> asleep: STOP_CMD done/, from);
        await waitFor(`redis-server pid ${pid} to exit`, () => !isAlive(pid));
      };

      // Idle: the recipe's STOP_CMD shuts it down and the process is gone.
      await sleeps(0, pids[0]);

      // The next redis-cli wakes it again, and the data written before the sleep is back
      // (SHUTDOWN SAVE at the stop, loaded at the wake).
      let before = daemon.lines.length;
      assert.equal(await cli("get", "k"), "v");
      await daemon.waitForLine(/starting -> awake/, before);
      pids.push(await readPid(pidfile));
      assert.notEqual(pids[1], pids[0]);
      await sleeps(before, pids[1]);

      // Cold again: a whole benchmark with 20 clients, through one wake, without an error.
      before = daemon.lines.length;
      const bench = await runProgram(paths["redis-benchmark"], [
        ...["-h", "127.0.0.1", "-p", `${port}`, "-q", "-n", "2000", "-c", "20"],
      ]);
      assert.equal(bench.code, 0, `redis-benchmark failed: ${bench.stderr}\n${bench.stdout}`);
      const results = bench.stdout.split("\n")
        .map((line) => line.split("\r").pop()!.trim())
        .filter((line) => line !== "");
      assert.ok(results.length >= 10, `too few benchmark results:\n${bench.stdout}`);
      for (const line of results) assert.match(line, /: [\d.]+ requests per second/);
      assert.doesNotMatch(bench.stdout + bench.stderr, /ERR|error/i);
      const wakes = daemon.lines.slice(before).filter((line) =>
        line.includes("asleep -> starting")
      );
      assert.equal(wakes.length, 1, daemon.lines.slice(before).join("\n"));
      pids.push(await readPid(pidfile));
      assert.ok(!pids.slice(0, 2).includes(pids[2]));
      assert.deepEqual(daemon.lines.filter((line) => / ERROR /.test(line)), []);
    } catch (error) {
      console.error(`sleepingd's log:\n${daemon.lines.join("\n")}`);
      throw error;
    } finally {
      const code = await daemon.stop();
      const pid = Number((await Deno.readTextFile(pidfile).catch(() => "")).trim());
      if (pid > 0 && !pids.includes(pid)) pids.push(pid);
      const left = pids.filter(isAlive);
      for (const pid of left) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
      assert.equal(code, 0);
      assert.deepEqual(left, [], "sleepingd's shutdown left redis-server running");
    }
  },
);
