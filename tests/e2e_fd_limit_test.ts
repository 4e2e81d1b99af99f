/**
 * The daemon out of file descriptors (run under a low `ulimit -n`): the
 * accept loop backs off, says so once, recovers, and the daemon goes on.
 */
import assert from "node:assert/strict";
import { MAIN, waitFor } from "./_helpers.ts";
import { freePort, readAll } from "./_net.ts";
import { exchange, openGate, startEchoBackend, stopEchoBackend, waitForGate } from "./_service.ts";

/** Enough for the daemon to start, and far fewer than the clients the test opens. */
const FD_LIMIT = 64;
const CLIENTS = 120;

Deno.test("under EMFILE the accept loop backs off, logs the episode once with a count, and recovers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-fd-" });
  const port = freePort();
  const backend = freePort();
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `VARRUN_PATH=${dir}/run
[gated]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
READY_TIMEOUT=0.5
START_CMD='${waitForGate(dir)}
${startEchoBackend(dir, backend)}'
STOP_CMD='${stopEchoBackend(dir)}'
`,
  );
  const daemon = new Deno.Command("bash", {
    args: [
      "-c",
      `ulimit -n ${FD_LIMIT} && exec "$0" run -A "$1" -f "$2" run`,
      Deno.execPath(),
      MAIN,
      file,
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log: string[] = [];
  const reading = (async () => {
    let pending = "";
    for await (const chunk of daemon.stderr.pipeThrough(new TextDecoderStream())) {
      const parts = (pending + chunk).split("\n");
      pending = parts.pop()!;
      log.push(...parts);
    }
  })();
  const has = (pattern: RegExp) => log.filter((line) => pattern.test(line)).length;
  const clients: Deno.Conn[] = [];
  try {
    await waitFor("the daemon to listen", () => has(/is running 1 service/) === 1);
    for (let i = 0; i < CLIENTS; i++) {
      const client = await Deno.connect({ hostname: "127.0.0.1", port });
      clients.push(client);
      await client.write(new Uint8Array([i]));
      await client.closeWrite(); // so that a client the echo backend answers ends too
    }
    await waitFor(
      "the accept loop to run out of file descriptors",
      () => has(/cannot accept on .*: Too many open files/) === 1,
    );
    await openGate(dir);
    // Every client is answered or closed: none hangs.
    await Promise.all(clients.map((client) => readAll(client).catch(() => undefined)));
    await waitFor("the end of the episode", () => has(/accepting on .* again after/) === 1);
    const episode = log.filter((line) => /cannot accept|again after/.test(line));
    assert.equal(episode.length, 2, episode.join("\n"));
    assert.match(
      episode[1],
      new RegExp(
        `\\[gated\\] accepting on 127\\.0\\.0\\.1:${port} again after \\d+ failed accepts in \\d+\\.\\ds$`,
      ),
    );
    assert.equal(await exchange(port, "after the episode"), "after the episode");
  } finally {
    for (const client of clients) client.close();
    daemon.kill("SIGTERM");
    const { code } = await daemon.status;
    await reading;
    try {
      const pid = Number(await Deno.readTextFile(`${dir}/backend.pid`));
      Deno.kill(pid, "SIGKILL");
    } catch {
      // No backend left.
    }
    await Deno.remove(dir, { recursive: true });
    assert.equal(code, 0, log.join("\n"));
  }
});
