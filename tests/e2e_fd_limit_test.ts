/**
 * The daemon out of file descriptors: the accept loop backs off, says so
 * once, recovers, and the daemon goes on. Its budget keeps it below its open
 * file limit, so the test lowers the limit under the running daemon
 * (`prlimit`), as a limit the budget did not plan for.
 */
import assert from "node:assert/strict";
import { startDaemon } from "./_daemon.ts";
import { bounded, runProgram, waitFor } from "./_helpers.ts";
import { freePort, isAlive, readAll } from "./_net.ts";
import { exchange, openGate, startEchoBackend, stopEchoBackend, waitForGate } from "./_service.ts";

/** The limit the daemon plans its budget within, far more than the clients the test opens. */
const PLANNED_LIMIT = 1024;
/** The limit it is then lowered to: enough for what it holds, far fewer than the clients. */
const FD_LIMIT = 64;
const CLIENTS = 120;

Deno.test("under EMFILE the accept loop backs off, logs the episode once with a count, and recovers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-fd-" });
  const port = freePort();
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `[gated]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
READY_TIMEOUT=0.5
START_CMD='${waitForGate(dir)}
${startEchoBackend(dir, freePort())}'
STOP_CMD='${stopEchoBackend(dir)}'
`,
  );
  const daemon = await startDaemon(file, { fdLimit: PLANNED_LIMIT });
  const lowered = await runProgram("prlimit", [
    "--pid",
    String(daemon.pid),
    `--nofile=${FD_LIMIT}`,
  ]);
  assert.equal(lowered.code, 0, lowered.stderr);
  const count = (pattern: RegExp) => daemon.lines.filter((line) => pattern.test(line)).length;
  const clients: Deno.Conn[] = [];
  try {
    for (let i = 0; i < CLIENTS; i++) {
      const client = await Deno.connect({ hostname: "127.0.0.1", port });
      clients.push(client);
      await client.write(new Uint8Array([i]));
      await client.closeWrite(); // so that a client the echo backend answers ends too
    }
    await daemon.waitForLine(/cannot accept on .*: Too many open files/);
    await openGate(dir);
    await bounded(
      Promise.all(clients.map((client) => readAll(client).catch(() => undefined))),
      "every client to be answered or closed",
    );
    await waitFor("the end of the episode", () => count(/accepting on .* again after/) === 1);
    const episode = daemon.lines.filter((line) => /cannot accept|again after/.test(line));
    assert.equal(episode.length, 2, episode.join("\n"));
    assert.match(
      episode[1],
      new RegExp(
        `\\[gated\\] accepting on 127\\.0\\.0\\.1:${port} again after \\d+ failed accepts in ` +
          "\\d+\\.\\ds$",
      ),
    );
    assert.equal(await exchange(port, "after the episode"), "after the episode");
  } finally {
    for (const client of clients) client.close();
    assert.equal(await daemon.stop(), 0, daemon.lines.join("\n"));
    try {
      const pid = Number(await Deno.readTextFile(`${dir}/backend.pid`));
      if (isAlive(pid)) Deno.kill(pid, "SIGKILL");
    } catch {
      // No backend left.
    }
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the daemon raises its soft open file limit to the hard one and plans its budget within it, said at debug level", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-fd-" });
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `[idle]\nPORT=${freePort()}\nLISTEN_ADDRESS=127.0.0.1\nSTART_CMD=true\n`,
  );
  const hard = Number((await runProgram("bash", ["-c", "ulimit -Hn"])).stdout.trim());
  const daemon = await startDaemon(file, { softFdLimit: 256, args: ["-v"] });
  try {
    const budget = await daemon.waitForLine(/descriptors for clients/);
    assert.match(
      budget,
      new RegExp(
        `DEBUG open file limit ${hard}: \\d+ descriptors for clients: \\d+ connections, 0 UDP ` +
          "flows, 0 HTTP connections, 16 control clients; 64 MiB held for clients$",
      ),
    );
    const limits = await Deno.readTextFile(`/proc/${daemon.pid}/limits`);
    assert.match(limits, new RegExp(`^Max open files +${hard} +${hard} +files`, "m"));
  } finally {
    assert.equal(await daemon.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a limit that leaves clients little room, and keys that ask for more than it leaves, are said at start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-fd-" });
  const file = `${dir}/sleepingd.conf`;
  const service = `[idle]\nPORT=${freePort()}\nLISTEN_ADDRESS=127.0.0.1\nSTART_CMD=true\n`;
  try {
    await Deno.writeTextFile(file, service);
    const low = await startDaemon(file, { fdLimit: 64 });
    try {
      await low.waitForLine(
        /WARN {2}the open file limit \(64\) leaves \d+ descriptors for clients after sleepingd's own \d+: raise it/,
      );
    } finally {
      assert.equal(await low.stop(), 0);
    }
    await Deno.writeTextFile(file, `MAX_CONNECTIONS_TOTAL=100000\n${service}`);
    const asking = await startDaemon(file, { fdLimit: PLANNED_LIMIT });
    try {
      await asking.waitForLine(
        /WARN {2}MAX_CONNECTIONS_TOTAL and MAX_UDP_FLOWS_TOTAL ask for 2000\d\d descriptors, and the open file limit \(1024\) leaves \d+ for clients/,
      );
    } finally {
      assert.equal(await asking.stop(), 0);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
