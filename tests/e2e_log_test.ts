/**
 * The daemon's log through the real CLI: `start`'s log rotated within its
 * bound, reopened on SIGUSR1 after a move (by hand and by the shipped
 * logrotate rules), the signals tools send by convention, and
 * LOG_CONNECTIONS=no.
 */
import assert from "node:assert/strict";
import { REPO, runCli, runProgram, waitFor } from "./_helpers.ts";
import { startDaemon } from "./_daemon.ts";
import { exchange, startEchoBackend, stopEchoBackend } from "./_service.ts";
import { freePort, isAlive } from "./_net.ts";
import { serverTest } from "./_servers.ts";

/** A text log line: time, level, message. */
const LOG_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO |DEBUG|WARN |ERROR) \S/;

/**
 * A folder with a configuration of one echo service, `global` lines first,
 * and the CLI to run on it; `cleanup` stops the daemon and the backend.
 */
async function setup(global: string) {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-log-" });
  const port = freePort();
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `VARRUN_PATH=${dir}/run\nSTATE_PATH=${dir}/state\n${global}
[echo]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
START_CMD='${startEchoBackend(dir, freePort())}'
STOP_CMD='${stopEchoBackend(dir)}'
`,
  );
  const cli = (...args: string[]) => runCli(["-f", file, ...args]);
  const pid = async () =>
    Number((await Deno.readTextFile(`${dir}/run/sleepingd.pid`)).split("\n")[0]);
  const cleanup = async () => {
    await cli("stop");
    try {
      const backend = Number(await Deno.readTextFile(`${dir}/backend.pid`));
      if (isAlive(backend)) Deno.kill(backend, "SIGKILL");
    } catch {
      // Never woken.
    }
    await Deno.remove(dir, { recursive: true });
  };
  return { dir, port, cli, pid, cleanup };
}

/** Connects once through the daemon; returns the client's port, which its log line names. */
async function connectOnce(port: number): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const clientPort = conn.localAddr.port;
  await conn.write(new TextEncoder().encode("ping"));
  await conn.closeWrite();
  const buffer = new Uint8Array(16);
  while (await conn.read(buffer) !== null) {
    // The echo, then the end.
  }
  conn.close();
  return clientPort;
}

/** The pattern of the line logged when the connection from `clientPort` ends. */
function closedLine(clientPort: number): RegExp {
  return new RegExp(`\\[echo\\] 127\\.0\\.0\\.1:${clientPort} connection to \\S+ closed after `);
}

/** Waits until `path` holds a line matching `pattern`. */
function waitForLine(path: string, pattern: RegExp): Promise<void> {
  return waitFor(`${pattern} in ${path}`, async () => {
    const text = await Deno.readTextFile(path).catch(() => "");
    return pattern.test(text);
  });
}

Deno.test("sleepingd start's log is rotated past LOG_MAX_SIZE into LOG_MAX_FILES files, whole lines", async () => {
  const maxBytes = 16 * 1024;
  const { dir, port, cli, cleanup } = await setup(`LOG_MAX_SIZE=16K\nLOG_MAX_FILES=3\n`);
  const log = `${dir}/run/sleepingd.log`;
  try {
    assert.equal((await cli("start")).code, 0);
    // Each connection logs about 130 bytes: 600 of them fill the three files twice over.
    let last = 0;
    for (let i = 0; i < 600; i++) last = await connectOnce(port);
    await waitForLine(log, closedLine(last));

    const files = [...Deno.readDirSync(`${dir}/run`)].map((entry) => entry.name)
      .filter((name) => name.startsWith("sleepingd.log")).sort();
    assert.deepEqual(files, ["sleepingd.log", "sleepingd.log.1", "sleepingd.log.2"]);
    let total = 0;
    const lines: string[] = [];
    for (const name of files) {
      const text = await Deno.readTextFile(`${dir}/run/${name}`);
      assert.ok(text.length <= maxBytes, `${name}: ${text.length} bytes`);
      assert.ok(text.endsWith("\n"), `${name} ends inside a line`);
      total += text.length;
      lines.push(...text.slice(0, -1).split("\n"));
    }
    assert.ok(total <= 3 * maxBytes);
    assert.ok(total > 2 * maxBytes, `only ${total} bytes: the test did not fill the files`);
    assert.deepEqual(lines.filter((line) => !LOG_LINE.test(line)), []);
    assert.equal(Deno.statSync(log).mode! & 0o777, 0o600);
    const connections = lines.filter((line) => / connection to .* closed after /.test(line));
    const perConnection = connections.reduce((sum, line) => sum + line.length + 1, 0) /
      connections.length;
    console.log(
      `${connections.length} connection lines kept in ${total} bytes (bound ${3 * maxBytes}); ` +
        `${perConnection.toFixed(0)} bytes per connection`,
    );
  } finally {
    await cleanup();
  }
});

Deno.test("after its log is moved, SIGUSR1 makes the daemon say so in a new file that holds the next line", async () => {
  const { dir, port, cli, pid, cleanup } = await setup(`LOG_FILE=${"$"}{DIR}/logs/sleepingd.log\n`);
  try {
    // The file's folder does not exist: the daemon makes it, mode 750.
    const conf = `${dir}/sleepingd.conf`;
    await Deno.writeTextFile(
      conf,
      (await Deno.readTextFile(conf)).replace("${DIR}", dir),
    );
    const log = `${dir}/logs/sleepingd.log`;
    assert.equal((await cli("start")).code, 0);
    assert.equal(Deno.statSync(`${dir}/logs`).mode! & 0o777, 0o750);
    const first = await connectOnce(port);
    await waitForLine(log, closedLine(first));

    await Deno.rename(log, `${log}.moved`);
    Deno.kill(await pid(), "SIGUSR1");
    await waitForLine(log, /INFO {2}SIGUSR1: reopened the log file .*\/logs\/sleepingd\.log/);
    assert.equal(Deno.statSync(log).mode! & 0o777, 0o600);
    const second = await connectOnce(port);
    await waitForLine(log, closedLine(second));
    const moved = await Deno.readTextFile(`${log}.moved`);
    assert.match(moved, closedLine(first));
    assert.doesNotMatch(moved, closedLine(second));
    assert.doesNotMatch(await Deno.readTextFile(log), closedLine(first));
    assert.ok(isAlive(await pid()));
  } finally {
    await cleanup();
  }
});

serverTest(
  "the shipped logrotate rules move the log and SIGUSR1 the daemon through its pidfile",
  [{ binary: "logrotate", package: "logrotate" }],
  async ({ logrotate }) => {
    const { dir, port, cli, pid, cleanup } = await setup(
      `LOG_FILE=${"$"}{DIR}/log/sleepingd.log\nLOG_MAX_SIZE=0\n`,
    );
    try {
      const conf = `${dir}/sleepingd.conf`;
      await Deno.writeTextFile(conf, (await Deno.readTextFile(conf)).replace("${DIR}", dir));
      const shipped = await Deno.readTextFile(`${REPO}packaging/sleepingd.logrotate`);
      const rules = shipped.replace(/^\/var\/log\/sleepingd\//m, `${dir}/log/`)
        .replace(/^(\t+pidfile=)\/run\/sleepingd\/sleepingd\.pid$/m, `$1${dir}/run/sleepingd.pid`);
      assert.match(rules, new RegExp(`^${dir}/log/\\*\\.log \\{$`, "m"));
      assert.match(rules, new RegExp(`^\\t+pidfile=${dir}/run/sleepingd\\.pid$`, "m"));
      await Deno.writeTextFile(`${dir}/logrotate.conf`, rules);
      const log = `${dir}/log/sleepingd.log`;
      assert.equal((await cli("start")).code, 0);
      const before = await connectOnce(port);
      await waitForLine(log, closedLine(before));

      const rotate = await runProgram(logrotate, [
        "--force",
        "--state",
        `${dir}/logrotate.state`,
        `${dir}/logrotate.conf`,
      ]);
      assert.equal(rotate.code, 0, rotate.stderr);
      const rotated = [...Deno.readDirSync(`${dir}/log`)].map((entry) => entry.name)
        .filter((name) => name !== "sleepingd.log");
      assert.equal(rotated.length, 1, rotated.join(" "));
      assert.match(rotated[0], /^sleepingd\.log-\d{8}$/); // compressed a day later
      await waitForLine(log, /SIGUSR1: reopened the log file/);
      const after = await connectOnce(port);
      await waitForLine(log, closedLine(after));
      const old = await Deno.readTextFile(`${dir}/log/${rotated[0]}`);
      assert.match(old, closedLine(before));
      assert.doesNotMatch(old, closedLine(after));
      assert.ok(isAlive(await pid()));
    } finally {
      await cleanup();
    }
  },
);

serverTest(
  "past the file size limit the daemon runs on, counts the lines it cannot write, and logs the count in the next file",
  [{ binary: "prlimit", package: "util-linux" }],
  async ({ prlimit }) => {
    const { dir, port, cli, pid, cleanup } = await setup("LOG_MAX_SIZE=0\n");
    const log = `${dir}/run/sleepingd.log`;
    try {
      assert.equal((await cli("start")).code, 0);
      const daemon = await pid();
      // RLIMIT_FSIZE: a write past 8 KiB fails (EFBIG) and the kernel sends SIGXFSZ.
      const limit = await runProgram(prlimit, ["--pid", String(daemon), "--fsize=8192"]);
      assert.equal(limit.code, 0, limit.stderr);
      const connections = 200; // about 25 KiB of lines
      for (let i = 0; i < connections; i++) await connectOnce(port);
      assert.ok(isAlive(daemon), "the daemon died at the file size limit");
      assert.equal(Deno.statSync(log).size, 8192);

      await Deno.rename(log, `${log}.full`);
      Deno.kill(daemon, "SIGUSR1");
      await waitForLine(log, /SIGUSR1: reopened the log file/);
      const lost = /WARN {2}(\d+) log line\(s\) could not be written: File too large/.exec(
        await Deno.readTextFile(log),
      );
      assert.ok(lost, await Deno.readTextFile(log));
      // One per line that did not fit: no line about the failure that fails in turn, and so on.
      assert.ok(Number(lost[1]) > connections / 2 && Number(lost[1]) <= connections, lost[0]);
      const after = await connectOnce(port);
      await waitForLine(log, closedLine(after));
    } finally {
      await cleanup();
    }
  },
);

Deno.test("SIGUSR2, SIGPIPE, SIGWINCH and SIGXFSZ leave the daemon serving, SIGUSR1 opens no debugger, SIGQUIT and SIGPWR shut it down", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-signals-" });
  const port = freePort();
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `[echo]\nPORT=${port}\nLISTEN_ADDRESS=127.0.0.1\n` +
      `START_CMD='${startEchoBackend(dir, freePort())}'\nSTOP_CMD='${stopEchoBackend(dir)}'\n`,
  );
  try {
    for (const shutdown of ["SIGQUIT", "SIGPWR"] as const) {
      const daemon = await startDaemon(file, { args: ["-v"] });
      const started = Date.now();
      try {
        assert.equal(await exchange(port, "awake"), "awake");
        for (const signal of ["SIGUSR2", "SIGPIPE", "SIGWINCH", "SIGXFSZ"] as const) {
          Deno.kill(daemon.pid, signal);
        }
        await daemon.waitForLine(/INFO {2}SIGUSR2: ignored \(SIGUSR1 reopens the log file/);
        await daemon.waitForLine(
          /DEBUG (holding 127\.0\.0\.1:9229|127\.0\.0\.1:9229, where SIGUSR1 )/,
        );
        // `deno run` arms its SIGUSR1 debugger 500 ms after the program starts: past that.
        await new Promise((resolve) =>
          setTimeout(resolve, Math.max(0, started + 1000 - Date.now()))
        );
        Deno.kill(daemon.pid, "SIGUSR1");
        await daemon.waitForLine(/INFO {2}SIGUSR1: the log goes to stderr, nothing to reopen/);
        assert.equal(await exchange(port, "still here"), "still here");
        assert.deepEqual(daemon.lines.filter((line) => /Debugger listening/.test(line)), []);

        Deno.kill(daemon.pid, shutdown);
        await daemon.waitForLine(new RegExp(`INFO  ${shutdown}: shutting down`));
        await daemon.waitForLine(/\[echo\] stopping -> asleep/);
        assert.equal(await daemon.stop(), 0);
        assert.ok(daemon.lines.some((line) => /INFO {2}sleepingd stopped$/.test(line)));
      } finally {
        await daemon.stop();
      }
    }
    assert.equal(await Deno.readTextFile(`${dir}/stops`), "stop\nstop\n");
  } finally {
    const backend = Number(await Deno.readTextFile(`${dir}/backend.pid`).catch(() => "0"));
    if (backend && isAlive(backend)) Deno.kill(backend, "SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LOG_CONNECTIONS=no keeps a service's connection lines out of the info log, not of -v", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-quiet-" });
  const services = [{ name: "quiet", port: freePort() }, { name: "loud", port: freePort() }];
  const file = `${dir}/sleepingd.conf`;
  let text = "LISTEN_ADDRESS=127.0.0.1\n";
  for (const { name, port } of services) {
    await Deno.mkdir(`${dir}/${name}`);
    text +=
      `[${name}]\nPORT=${port}\nSTART_CMD='${startEchoBackend(`${dir}/${name}`, freePort())}'\n` +
      `STOP_CMD='${stopEchoBackend(`${dir}/${name}`)}'\n`;
  }
  await Deno.writeTextFile(file, `${text}[quiet]\nLOG_CONNECTIONS=no\n`);
  const [quiet, loud] = services.map(({ port }) => port);
  const closed = (name: string) => new RegExp(`\\[${name}\\] \\S+ connection to \\S+ closed after`);
  try {
    for (const args of [[], ["-v"]]) {
      const daemon = await startDaemon(file, { args });
      try {
        assert.equal(await exchange(quiet, "q"), "q");
        assert.equal(await exchange(loud, "l"), "l");
        await daemon.waitForLine(new RegExp(`INFO  ${closed("loud").source}`));
        if (args.length === 0) {
          assert.deepEqual(daemon.lines.filter((line) => closed("quiet").test(line)), []);
        } else {
          await daemon.waitForLine(new RegExp(`DEBUG ${closed("quiet").source}`));
        }
      } finally {
        assert.equal(await daemon.stop(), 0);
      }
    }
  } finally {
    for (const { name } of services) {
      const backend = Number(
        await Deno.readTextFile(`${dir}/${name}/backend.pid`).catch(() => "0"),
      );
      if (backend && isAlive(backend)) Deno.kill(backend, "SIGKILL");
    }
    await Deno.remove(dir, { recursive: true });
  }
});
