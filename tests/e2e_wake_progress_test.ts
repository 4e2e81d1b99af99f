/**
 * A wake that waits says so, through the real daemon and CLI: a log line
 * every few seconds naming what it waits for, `status` showing the same, and
 * `sleepingd wake` on a terminal (a pseudo-terminal from `script`) printing
 * it, until the backend, slow to listen, accepts.
 */
import assert from "node:assert/strict";
import { startDaemon } from "./_daemon.ts";
import { bounded, MAIN, REPO, runCli } from "./_helpers.ts";
import { freePort, readAll, writeAll } from "./_net.ts";
import { findBinary, IN_CI } from "./_servers.ts";
import { echo } from "./testdata/echo_server.ts";

const script = findBinary("script");
if (!script && !IN_CI) console.warn("skipping the wake on a terminal: apt-get install bsdutils");

/** Runs `sleepingd ARGS` under `script`, which gives it a terminal; its output as it comes. */
function onTerminal(args: string[]) {
  const command = [Deno.execPath(), "run", "--quiet", "-A", MAIN, ...args]
    .map((word) => `'${word}'`).join(" ");
  const child = new Deno.Command(script!, {
    args: ["-qec", command, "/dev/null"],
    cwd: REPO,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let output = "";
  const reading = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) output += chunk;
  })();
  return {
    output: () => output.replaceAll("\r\n", "\n"),
    done: async () => {
      const { code } = await child.status;
      await reading;
      return code;
    },
  };
}

Deno.test("a wake that waits says so: in the log, in status, and from sleepingd wake", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-progress-" });
  const port = freePort();
  const backendPort = freePort();
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `VARRUN_PATH=${dir}/run\nSTATE_PATH=${dir}/state\n[slow]\nPORT=${port}\n` +
      `LISTEN_ADDRESS=127.0.0.1\nSTART_CMD=echo 127.0.0.1 ${backendPort}\nREADY_TIMEOUT=120\n`,
  );
  const daemon = await startDaemon(file);
  const clients: Deno.TcpConn[] = [];
  let backend: Deno.TcpListener | undefined;
  try {
    for (let i = 0; i < 3; i++) clients.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    // Nothing listens at the target yet: the wake waits, and says so.
    const waiting = `waiting for 127\\.0\\.0\\.1:${backendPort}: \\d+ s of READY_TIMEOUT 120 s, ` +
      "3 clients held; last try: Connection refused";
    await daemon.waitForLine(new RegExp(`INFO {2}\\[slow\\] ${waiting}$`));

    const status = await runCli(["-f", file, "status"]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`\n {2}state starting \\(${waiting}\\), 3 open /`));
    const json = JSON.parse((await runCli(["-f", file, "status", "--json"])).stdout);
    assert.match(json.services[0].wakeProgress, new RegExp(`^${waiting}$`));

    if (script) {
      const wake = onTerminal(["-f", file, "wake", "slow"]);
      await bounded(
        (async () => {
          while (!wake.output().includes("sleepingd: waking slow: waiting for")) {
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        })(),
        "sleepingd wake to print the wake's progress",
      );
      assert.match(wake.output(), new RegExp(`^sleepingd: waking slow: ${waiting}\n`));
      backend = Deno.listen({ hostname: "127.0.0.1", port: backendPort });
      (async () => {
        for await (const conn of backend) echo(conn);
      })().catch(() => {});
      assert.equal(await bounded(wake.done(), "sleepingd wake to return"), 0);
      assert.match(
        wake.output(),
        new RegExp(`\nslow is awake at 127\\.0\\.0\\.1:${backendPort}\n$`),
      );
    } else {
      assert.ok(!IN_CI, "script is missing (apt-get install bsdutils)");
      backend = Deno.listen({ hostname: "127.0.0.1", port: backendPort });
      (async () => {
        for await (const conn of backend) echo(conn);
      })().catch(() => {});
    }
    // The held clients are served once the backend accepts, their bytes intact.
    for (const [index, client] of clients.entries()) {
      await writeAll(client, new TextEncoder().encode(`client ${index}`));
      await client.closeWrite();
      assert.equal(new TextDecoder().decode(await readAll(client)), `client ${index}`);
    }
    const after = JSON.parse((await runCli(["-f", file, "status", "--json"])).stdout);
    assert.deepEqual([after.services[0].state, after.services[0].wakeProgress], ["awake", null]);
  } finally {
    for (const client of clients) client.close();
    backend?.close();
    assert.equal(await daemon.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});
