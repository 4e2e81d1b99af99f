/**
 * The README's quick start, as written: `deno task sleepingd` runs the CLI
 * with its arguments, and the six-line service of your own (read from the
 * README itself) wakes, stops by its pidfile when idle, wakes again, and
 * leaves nothing running after `stop`.
 */
import assert from "node:assert/strict";
import { replaceLine } from "./_daemon.ts";
import { curl, REPO, runCli, runProgram, tempFiles, waitFor } from "./_helpers.ts";
import { freePort, isAlive } from "./_net.ts";
import { VERSION } from "../src/version.ts";

/** The configuration the README's quick start writes with `cat > hello.conf <<'EOF'`. */
async function readmeService(): Promise<string> {
  const readme = await Deno.readTextFile(`${REPO}README.md`);
  const block = /\$ cat > hello\.conf <<'EOF'\n([\s\S]*?)\nEOF\n/.exec(readme);
  assert.ok(block, "the README's quick start no longer writes hello.conf");
  return `${block[1]}\n`;
}

Deno.test("deno task sleepingd runs the command line with its arguments", async () => {
  const { code, stdout } = await runProgram(
    Deno.execPath(),
    ["task", "--quiet", "sleepingd", "--version"],
    { cwd: REPO, env: { NO_COLOR: "1" } },
  );
  assert.equal(code, 0);
  assert.equal(stdout, `${VERSION}\n`);
});

Deno.test("the README's own service wakes, stops by its pidfile when idle, and wakes again", async () => {
  const text = await readmeService();
  assert.equal(text.trim().split("\n").length, 6, "six lines");
  await using dir = await tempFiles({});
  const [port, backend] = [freePort(), freePort()];
  // The README's service as written, on free ports, with its pidfile here and a short idle time.
  let config = `VARRUN_PATH=${dir.path}/run\nSTATE_PATH=${dir.path}/state\n` +
    text.replaceAll("8001", String(backend)).replaceAll("/tmp/hello.pid", `${dir.path}/hello.pid`);
  config = replaceLine(config, /^PORT=8000$/m, `PORT=${port}`);
  config = replaceLine(config, /^IDLE_TIME=30$/m, "IDLE_TIME=1");
  config = replaceLine(config, /^IDLE_CHECK_INTERVAL=5$/m, "IDLE_CHECK_INTERVAL=0.2");
  const file = `${dir.path}/hello.conf`;
  await Deno.writeTextFile(file, config);
  const cli = (...args: string[]) => runCli(["-f", file, ...args]);
  const pid = async () => Number(await Deno.readTextFile(`${dir.path}/hello.pid`));
  try {
    const check = await cli("check");
    assert.equal(check.stderr, "", "the README's service draws no warning");
    const start = await cli("start");
    assert.equal(start.code, 0, start.stderr);
    assert.match(await curl(`http://127.0.0.1:${port}/`), new RegExp(`^Hello from ${backend}: `));
    const first = await pid();
    assert.ok(isAlive(first));
    await waitFor("the idle stop", () => !isAlive(first));
    const status = await cli("status", "--json");
    const service = JSON.parse(status.stdout).services[0];
    assert.deepEqual([service.state, service.idleStops], ["asleep", 1]);
    assert.match(await curl(`http://127.0.0.1:${port}/`), new RegExp(`^Hello from ${backend}: `));
    const second = await pid();
    assert.notEqual(second, first);
    const stop = await cli("stop");
    assert.equal(stop.stdout, `hello (port ${port}) stopped\n`);
    assert.ok(!isAlive(second), "sleepingd stop ran STOP_CMD");
  } finally {
    await cli("stop");
    const left = await pid().catch(() => undefined);
    if (left && isAlive(left)) Deno.kill(left, "SIGKILL");
  }
});
