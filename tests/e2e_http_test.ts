/**
 * The nginx recipe (examples/nginx), end to end: the real CLI wakes a real
 * nginx from cold for curl, with and without keep-alive, passes a large
 * download intact, and stops nginx when idle.
 */
import assert from "node:assert/strict";
import { replaceLine, startDaemon } from "./_daemon.ts";
import { freePort, isAlive, randomBytes, sha256 } from "./_net.ts";
import { serverTest } from "./_servers.ts";
import { curl, readPid, REPO, waitFor } from "./_helpers.ts";

/** Size of the large download: big enough for many reads, writes and full buffers. */
const LARGE_FILE_BYTES = 50 * 1024 * 1024;

/** The pids of the live children of `parent` (nginx's workers). */
function childrenOf(parent: number): number[] {
  const children: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parent && isAlive(Number(entry.name))) children.push(Number(entry.name));
    } catch {
      // The process is gone.
    }
  }
  return children;
}

serverTest(
  "curl reaches an nginx woken from cold, with and without keep-alive, and nginx stops when idle",
  [{ binary: "nginx", package: "nginx" }, { binary: "curl", package: "curl" }],
  async (paths) => {
    const port = freePort();
    const dir = await Deno.makeTempDir({ prefix: "sleepingd-nginx-" });
    const root = `${dir}/www`;
    await Deno.mkdir(root);
    for (const name of ["a", "b", "c"]) await Deno.writeTextFile(`${root}/${name}.txt`, name);
    await Deno.writeTextFile(`${root}/index.html`, "<h1>awake</h1>\n");
    const large = randomBytes(LARGE_FILE_BYTES);
    await Deno.writeFile(`${root}/large.bin`, large);

    const recipe = await Deno.readTextFile(`${REPO}examples/nginx/sleepingd.conf`);
    let config = replaceLine(recipe, /^PORT=80$/m, `PORT=${port}`);
    config = replaceLine(config, /^IDLE_TIME=600$/m, "IDLE_TIME=1");
    config = replaceLine(config, /^IDLE_CHECK_INTERVAL=30$/m, "IDLE_CHECK_INTERVAL=0.2");
    const file = `${dir}/sleepingd.conf`;
    await Deno.writeTextFile(file, config);
    const prefix = `${dir}/prefix`;
    const pidfile = `${prefix}/nginx.pid`;
    const daemon = await startDaemon(file, {
      env: {
        NGINX_PORT: `${freePort()}`,
        NGINX_ROOT: root,
        NGINX_PREFIX: prefix,
        NGINX_BINARY: paths.nginx,
        // Used when the test runs as root: the temp dir is private to root, not www-data's.
        NGINX_USER: "root",
      },
    }).catch(async (error) => {
      await Deno.remove(dir, { recursive: true });
      throw error;
    });
    const base = `http://127.0.0.1:${port}`;
    const pids: number[] = [];
    try {
      // Cold: the first request wakes nginx and is answered.
      const began = performance.now();
      const first = await curl("--fail", "-w", "\n%{time_starttransfer}", `${base}/`);
      const coldSeconds = (performance.now() - began) / 1000;
      const [body, firstByte] = first.split("\n").filter((line) => line !== "");
      assert.equal(body, "<h1>awake</h1>");
      const awake = await daemon.waitForLine(/starting -> awake/);
      console.log(
        `nginx cold start: first answer after ${coldSeconds.toFixed(3)}s, first byte at ` +
          `${Number(firstByte).toFixed(3)}s (sleepingd: ${
            awake.match(/accepted after (\S+)/)?.[1]
          })`,
      );
      const master = await readPid(pidfile);
      pids.push(master, ...childrenOf(master));
      assert.ok(pids.length >= 2, "nginx has no worker process");

      // The cold request's connection ends on its own time: count only what comes after it.
      await daemon.waitForLine(/ closed after /);

      // Keep-alive: three URLs in one curl go over one connection through sleepingd.
      const urls = ["a", "b", "c"].map((name) => `${base}/${name}.txt`);
      const format = "%{http_code} %{num_connects} %{size_download}\n";
      const outputs = urls.flatMap(() => ["-o", "/dev/null"]);
      let before = daemon.lines.length;
      assert.equal(
        await curl("--fail", "-w", format, ...outputs, ...urls),
        "200 1 1\n200 0 1\n200 0 1\n",
      );
      await daemon.waitForLine(/ closed after /, before);
      const connections = (from: number) =>
        daemon.lines.slice(from).filter((line) => line.includes(" closed after ")).length;
      assert.equal(connections(before), 1, daemon.lines.slice(before).join("\n"));

      // Without keep-alive: nginx closes after each answer, curl connects three times.
      before = daemon.lines.length;
      const close = ["-H", "Connection: close"];
      assert.equal(
        await curl("--fail", ...close, "-w", format, ...outputs, ...urls),
        "200 1 1\n200 1 1\n200 1 1\n",
      );
      await waitFor("three connections in the log", () => connections(before) === 3);

      // A large download arrives intact.
      before = daemon.lines.length;
      await curl("--fail", "-o", `${dir}/large.out`, `${base}/large.bin`);
      assert.equal(await sha256(await Deno.readFile(`${dir}/large.out`)), await sha256(large));

      // Idle: the recipe's STOP_CMD (nginx -s quit) stops the master and its workers.
      await daemon.waitForLine(/stopping -> asleep: STOP_CMD done/, before);
      for (const pid of pids) await waitFor(`nginx pid ${pid} to exit`, () => !isAlive(pid));

      // The next request wakes it again.
      before = daemon.lines.length;
      assert.equal(await curl("--fail", `${base}/a.txt`), "a");
      await daemon.waitForLine(/starting -> awake/, before);
      const again = await readPid(pidfile);
      assert.ok(!pids.includes(again));
      pids.push(again, ...childrenOf(again));
      assert.deepEqual(daemon.lines.filter((line) => / ERROR /.test(line)), []);
    } catch (error) {
      console.error(`sleepingd's log:\n${daemon.lines.join("\n")}`);
      throw error;
    } finally {
      const code = await daemon.stop();
      const left = pids.filter(isAlive);
      for (const pid of left) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
      assert.equal(code, 0);
      assert.deepEqual(left, [], "sleepingd's shutdown left nginx running");
    }
  },
);
