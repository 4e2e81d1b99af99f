/**
 * Faults of the real daemon (`sleepingd run` as a child): SIGTERM during a
 * wake, SIGHUP with a broken configuration, and pidfiles left behind.
 */
import assert from "node:assert/strict";
import { type Daemon, startDaemon } from "../_daemon.ts";
import { bounded, exists, runCli, waitFor } from "../_helpers.ts";
import { freePort, isAlive, refuses, writeAll } from "../_net.ts";
import { startEchoBackend, stopEchoBackend, waitForGate } from "../_service.ts";
import {
  closeQuietly,
  deadPid,
  killGroup,
  killIfAlive,
  liveInGroup,
  readEnd,
  readNumber,
  stopDaemon,
  talk,
} from "./_faults.ts";

/** Waits (bounded) until the daemon has exited on its own, and returns its exit code. */
async function exitCode(daemon: Daemon, seconds: number): Promise<number> {
  await waitFor("the daemon to exit", () => !isAlive(daemon.pid), seconds);
  return await stopDaemon(daemon); // it has exited: stop() only collects the code
}

/** A folder of the test's own, removed at the end of its `await using` block. */
async function tempDir(prefix: string) {
  const path = await Deno.makeTempDir({ prefix });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

Deno.test("SIGTERM during a wake: exit 0 within SHUTDOWN_GRACE, client closed, START_CMD's group killed, STOP_CMD ran", async () => {
  await using dir = await tempDir("sleepingd-sigterm-");
  const port = freePort();
  const grace = 1;
  const file = `${dir.path}/sleepingd.conf`;
  // START_CMD leaves a child that ignores TERM (the group needs a KILL) and one that does not,
  // then waits at the gate, which the test never opens.
  await Deno.writeTextFile(
    file,
    `SHUTDOWN_GRACE=${grace}
[held]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
START_CMD='echo $$ > ${dir.path}/start.pid
(trap "" TERM; exec sleep 1000) &
echo $! > ${dir.path}/stubborn.pid
sleep 1000 &
echo $! > ${dir.path}/child.pid
${waitForGate(dir.path)}
echo "127.0.0.1 ${freePort()}"'
STOP_CMD='echo "stop $SLEEPINGD_ACTION" >> ${dir.path}/stops'
`,
  );
  const daemon = await startDaemon(file);
  let group: number | undefined;
  let client: Deno.Conn | undefined;
  try {
    client = await Deno.connect({ hostname: "127.0.0.1", port });
    await waitFor(
      "START_CMD to start its children",
      () => readNumber(`${dir.path}/child.pid`) !== undefined,
    );
    group = readNumber(`${dir.path}/start.pid`)!;
    const children = [
      readNumber(`${dir.path}/stubborn.pid`)!,
      readNumber(`${dir.path}/child.pid`)!,
    ];
    assert.ok(liveInGroup(group).length >= 3, "START_CMD and its children run, in one group");
    const ending = readEnd(client);

    const signalled = Date.now();
    Deno.kill(daemon.pid, "SIGTERM");
    const code = await exitCode(daemon, grace + 30);
    const seconds = (Date.now() - signalled) / 1000;
    console.log(`SIGTERM during a wake: the daemon exited ${code} after ${seconds.toFixed(2)}s`);
    assert.equal(code, 0, daemon.lines.join("\n"));

    const end = await bounded(ending, "the waiting client to be closed", 5);
    assert.ok(end === "eof" || end === "reset", `the waiting client saw ${end}`);
    assert.deepEqual(liveInGroup(group), [], "nothing of START_CMD's process group is alive");
    for (const pid of children) assert.ok(!isAlive(pid), `START_CMD's child ${pid} is dead`);
    assert.equal(
      await Deno.readTextFile(`${dir.path}/stops`),
      "stop stop\n",
      "STOP_CMD ran once to clean up after START_CMD",
    );
    console.log(
      daemon.lines.filter((line) => /held|shutting|closing|stopped/.test(line)).join("\n"),
    );
    const log = daemon.lines.join("\n");
    assert.match(log, /\[held\] starting -> stopping: wake failed: /);
    assert.match(log, /\[held\] stopping -> asleep: /);
    assert.match(log, /sleepingd stopped$/m);
  } finally {
    client?.close();
    await stopDaemon(daemon);
    killGroup(group);
  }
});

/** A configuration with the echo service `alpha`, its files under `dir`. */
function alphaConfig(dir: string, port: number, backend: number, extra = ""): string {
  return `SHUTDOWN_GRACE=1
[alpha]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
START_CMD='${startEchoBackend(dir, backend)}'
STOP_CMD='${stopEchoBackend(dir)}'
${extra}`;
}

/** The 1-based number of the line of `text` that starts with `start`. */
function lineOf(text: string, start: string): number {
  const index = text.split("\n").findIndex((line) => line.startsWith(start));
  assert.ok(index >= 0, `no line starts with ${start}`);
  return index + 1;
}

Deno.test("SIGHUP with a broken configuration is refused with file:line; the old configuration goes on serving", async () => {
  await using dir = await tempDir("sleepingd-sighup-");
  const [port, backend, betaPort] = [freePort(), freePort(), freePort()];
  const file = `${dir.path}/sleepingd.conf`;
  const good = alphaConfig(dir.path, port, backend);
  await Deno.writeTextFile(file, good);
  const daemon = await startDaemon(file);
  try {
    assert.equal(await talk(port, "before"), "before");
    // Each broken file would also turn alpha away from 127.0.0.1 and add beta: neither happens.
    const beta = `[beta]\nPORT=${betaPort}\nLISTEN_ADDRESS=127.0.0.1\nSTART_CMD=true\n`;
    const broken = [
      {
        what: "a line it cannot read",
        text: alphaConfig(
          dir.path,
          port,
          backend,
          `ALLOW=10.0.0.0/8\nthis is not a setting\n${beta}`,
        ),
        line: "this is not a setting",
        message: 'Cannot read line "this is not a setting": expected KEY=value or [section]',
      },
      {
        what: "a bad value",
        text: alphaConfig(dir.path, port, backend, `ALLOW=10.0.0.0/8\nREADY_TIMEOUT=soon\n${beta}`),
        line: "READY_TIMEOUT=soon",
        message: 'Cannot use "READY_TIMEOUT"',
      },
    ];
    for (const { what, text, line, message } of broken) {
      await Deno.writeTextFile(file, text);
      const from = daemon.lines.length;
      Deno.kill(daemon.pid, "SIGHUP");
      const refusal = await daemon.waitForLine(/reload refused/, from);
      const where = `${file}:${lineOf(text, line)}: `;
      assert.ok(
        daemon.lines.slice(from).some((logged) => logged.includes(`${where}${message}`)),
        `${what}: expected "${where}${message}" in:\n${daemon.lines.slice(from).join("\n")}`,
      );
      assert.match(refusal, /ERROR reload refused, the running configuration stays: /);
      console.log(`SIGHUP with ${what}: ${refusal}`);
      assert.equal(await talk(port, what), what, `${what}: alpha still serves 127.0.0.1`);
      assert.ok(await refuses(betaPort), `${what}: beta was not added`);
    }
    // The daemon still reloads a good file.
    await Deno.writeTextFile(file, alphaConfig(dir.path, port, backend, beta));
    const from = daemon.lines.length;
    Deno.kill(daemon.pid, "SIGHUP");
    assert.match(await daemon.waitForLine(/reloaded /, from), /added: beta; unchanged: alpha/);
    assert.ok(!(await refuses(betaPort)), "beta listens after the good reload");
  } finally {
    assert.equal(await stopDaemon(daemon), 0, daemon.lines.join("\n"));
    killIfAlive(readNumber(`${dir.path}/backend.pid`));
  }
});

Deno.test("SIGHUP and sleepingd reload during the shutdown are refused: nothing is added that nobody stops", async () => {
  await using dir = await tempDir("sleepingd-late-reload-");
  const [port, backend, betaPort] = [freePort(), freePort(), freePort()];
  const file = `${dir.path}/sleepingd.conf`;
  // A long grace, and a VARRUN_PATH of its own for `sleepingd reload` to find.
  const config = (extra = "") =>
    `VARRUN_PATH=${dir.path}/run\n` +
    alphaConfig(dir.path, port, backend, extra).replace("SHUTDOWN_GRACE=1", "SHUTDOWN_GRACE=30");
  await Deno.writeTextFile(file, config());
  const daemon = await startDaemon(file);
  const client = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    // An open connection holds the shutdown in its SHUTDOWN_GRACE.
    await writeAll(client, new TextEncoder().encode("held"));
    assert.equal(await client.read(new Uint8Array(4)), 4);
    Deno.kill(daemon.pid, "SIGTERM");
    await daemon.waitForLine(/shutting down: waiting up to 30s for 1 open connection/);
    const beta = `[beta]\nPORT=${betaPort}\nLISTEN_ADDRESS=127.0.0.1\nSTART_CMD=true\n`;
    await Deno.writeTextFile(file, config(beta));
    const from = daemon.lines.length;
    Deno.kill(daemon.pid, "SIGHUP");
    assert.match(
      await daemon.waitForLine(/reload refused/, from),
      /reload refused, the running configuration stays: sleepingd is shutting down: no reload now/,
    );
    const asked = await runCli(["-f", file, "reload"]);
    assert.equal(asked.code, 1);
    assert.match(asked.stderr, /sleepingd is shutting down: no reload now/);
    assert.ok(await refuses(betaPort), "beta was not added");
    client.close();
    assert.equal(await exitCode(daemon, 30), 0);
  } finally {
    closeQuietly(client);
    await stopDaemon(daemon);
    killIfAlive(readNumber(`${dir.path}/backend.pid`));
  }
});

Deno.test("a stale pidfile (a dead pid, garbage, nothing) is replaced at start and removed at exit", async () => {
  await using dir = await tempDir("sleepingd-pidfile-");
  const [port, backend] = [freePort(), freePort()];
  const file = `${dir.path}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `VARRUN_PATH=${dir.path}/run\nSTATE_PATH=${dir.path}/state\n${
      alphaConfig(dir.path, port, backend)
    }`,
  );
  const pidfile = `${dir.path}/run/sleepingd.pid`;
  await Deno.mkdir(`${dir.path}/run`);
  try {
    for (const stale of [`${await deadPid()}\n`, "not a pid\n", ""]) {
      await Deno.writeTextFile(pidfile, stale);
      const daemon = await startDaemon(file);
      try {
        assert.equal(
          readNumber(pidfile),
          daemon.pid,
          `the pidfile holding ${JSON.stringify(stale)}`,
        );
        const status = await runCli(["-f", file, "status"]);
        assert.equal(status.code, 0, status.stderr);
        assert.equal(await talk(port, "served"), "served");
      } finally {
        assert.equal(await stopDaemon(daemon), 0, daemon.lines.join("\n"));
      }
      assert.ok(!exists(pidfile), "the daemon removed its pidfile at exit");
    }
  } finally {
    killIfAlive(readNumber(`${dir.path}/backend.pid`));
  }
});

/** A live process that is not sleepingd, to name in a pidfile. */
function unrelatedProcess(): Deno.ChildProcess {
  return new Deno.Command("sleep", {
    args: ["1000"],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  })
    .spawn();
}

Deno.test("a pidfile naming a live process that is not sleepingd is stale: run replaces it, and leaves that process alone", async () => {
  await using dir = await tempDir("sleepingd-pidfile-");
  const port = freePort();
  const file = `${dir.path}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `VARRUN_PATH=${dir.path}/run\nSTATE_PATH=${dir.path}/state\n${
      alphaConfig(dir.path, port, freePort())
    }`,
  );
  const pidfile = `${dir.path}/run/sleepingd.pid`;
  await Deno.mkdir(`${dir.path}/run`);
  const other = unrelatedProcess();
  try {
    // As after a reboot that kept VARRUN_PATH: the old daemon's pid now names another process.
    await Deno.writeTextFile(pidfile, `${other.pid}\n`);
    const daemon = await startDaemon(file);
    try {
      assert.equal(readNumber(pidfile), daemon.pid);
      assert.equal(await talk(port, "served"), "served");
    } finally {
      assert.equal(await stopDaemon(daemon), 0, daemon.lines.join("\n"));
    }
    assert.ok(isAlive(other.pid), "the other process is untouched");
  } finally {
    other.kill("SIGKILL");
    await other.status;
  }
});

Deno.test("the pidfile holds the pid alone, and one dated before the sleepingd it names started is stale", async () => {
  await using dir = await tempDir("sleepingd-pidfile-");
  const configFor = async (name: string) => {
    const file = `${dir.path}/${name}.conf`;
    await Deno.writeTextFile(
      file,
      `VARRUN_PATH=${dir.path}/${name}/run\nSTATE_PATH=${dir.path}/${name}/state\n${
        alphaConfig(`${dir.path}/${name}`, freePort(), freePort())
      }`,
    );
    await Deno.mkdir(`${dir.path}/${name}/run`, { recursive: true });
    return file;
  };
  const older = await startDaemon(await configFor("older"));
  try {
    // `kill -USR1 $(cat sleepingd.pid)` signals the daemon and nothing else.
    assert.equal(
      await Deno.readTextFile(`${dir.path}/older/run/sleepingd.pid`),
      `${older.pid}\n`,
    );
    // A pidfile written before that daemon started (as after a crash, its pid reused by
    // another sleepingd) does not name it: the second daemon replaces it instead of giving up.
    const pidfile = `${dir.path}/newer/run/sleepingd.pid`;
    const file = await configFor("newer");
    await Deno.writeTextFile(pidfile, `${older.pid}\n`);
    await Deno.utime(pidfile, new Date(0), new Date(0));
    const newer = await startDaemon(file);
    try {
      assert.equal(readNumber(pidfile), newer.pid);
    } finally {
      assert.equal(await stopDaemon(newer), 0, newer.lines.join("\n"));
    }
    assert.ok(isAlive(older.pid), "the daemon the stale pidfile named is untouched");
  } finally {
    assert.equal(await stopDaemon(older), 0, older.lines.join("\n"));
  }
});

Deno.test({
  name: "sleepingd stop never signals a live process that is not sleepingd, named by a pidfile",
  async fn() {
    await using dir = await tempDir("sleepingd-pidfile-");
    const file = `${dir.path}/sleepingd.conf`;
    await Deno.writeTextFile(
      file,
      `VARRUN_PATH=${dir.path}/run\nSTATE_PATH=${dir.path}/state\n${
        alphaConfig(dir.path, freePort(), freePort())
      }`,
    );
    const pidfile = `${dir.path}/run/sleepingd.pid`;
    await Deno.mkdir(`${dir.path}/run`);
    const other = unrelatedProcess();
    try {
      await Deno.writeTextFile(pidfile, `${other.pid}\n`);
      const stop = await runCli(["-f", file, "stop"]);
      if (!isAlive(other.pid)) {
        const { signal } = await bounded(other.status, "the other process's exit status");
        assert.fail(
          `sleepingd stop killed pid ${other.pid} (${signal}), which was not sleepingd: ` +
            `exit ${stop.code}, stdout ${JSON.stringify(stop.stdout)}, ` +
            `stderr ${JSON.stringify(stop.stderr)}`,
        );
      }
      assert.equal(stop.stdout, "sleepingd is not running\n");
      assert.equal(stop.code, 0);
    } finally {
      try {
        other.kill("SIGKILL");
      } catch {
        // Killed by the stop already.
      }
      await other.status;
    }
  },
});
