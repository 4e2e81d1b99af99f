/**
 * Operating the daemon through the real CLI: start, status, reload, metrics, stop.
 */
import assert from "node:assert/strict";
import { runCli, waitFor } from "./_helpers.ts";
import { startDaemon } from "./_daemon.ts";
import { exchange, startEchoBackend, stopEchoBackend } from "./_service.ts";
import { freePort, isAlive } from "./_net.ts";

/** A config with one echo service per entry of `ports`, writing its files under `dir`. */
function echoConfig(dir: string, services: { name: string; port: number; backend: number }[]) {
  const global = `VARRUN_PATH=${dir}/run\nSTATE_PATH=${dir}/state\nIDLE_TIME=\n`;
  return global + services.map(({ name, port, backend }) =>
    `[${name}]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
START_CMD='${startEchoBackend(`${dir}/${name}`, backend)}'
STOP_CMD='${stopEchoBackend(`${dir}/${name}`)}'
`
  ).join("\n");
}

async function setup(names: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-daemon-" });
  const services = names.map((name) => ({ name, port: freePort(), backend: freePort() }));
  for (const { name } of services) await Deno.mkdir(`${dir}/${name}`);
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(file, echoConfig(dir, services));
  const cli = (...args: string[]) => runCli(["-f", file, ...args]);
  const cleanup = async () => {
    await cli("stop");
    for (const { name } of services) {
      try {
        const pid = Number(await Deno.readTextFile(`${dir}/${name}/backend.pid`));
        if (isAlive(pid)) Deno.kill(pid, "SIGKILL");
      } catch {
        // No backend left.
      }
    }
    await Deno.remove(dir, { recursive: true });
  };
  return { dir, file, services, cli, cleanup };
}

Deno.test("sleepingd start, status, reload and stop run a daemon the way the original did", async () => {
  const { dir, file, services, cli, cleanup } = await setup(["alpha"]);
  const [alpha] = services;
  try {
    const started = await cli("start");
    assert.equal(started.stderr, "");
    assert.equal(started.stdout, `alpha (port ${alpha.port}) started\n`);
    assert.equal(started.code, 0);
    const pid = Number((await Deno.readTextFile(`${dir}/run/sleepingd.pid`)).split("\n")[0]);
    assert.ok(isAlive(pid));
    assert.equal(Deno.statSync(`${dir}/run/sleepingd.sock`).mode! & 0o777, 0o600);

    const again = await cli("start");
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`already running \\(pid ${pid}\\)`));

    const asleep = await cli("status");
    assert.equal(asleep.code, 0);
    assert.match(
      asleep.stdout,
      new RegExp(`^alpha \\(port ${alpha.port}\\) running\n  state asleep`),
    );

    assert.equal(await exchange(alpha.port, "wake up"), "wake up");
    const json = await cli("status", "--json");
    assert.equal(json.code, 0);
    assert.equal(json.stderr, "");
    const status = JSON.parse(json.stdout);
    assert.equal(status.running, true);
    assert.equal(status.pid, pid);
    assert.equal(status.services[0].state, "awake");
    assert.equal(status.services[0].target, `127.0.0.1:${alpha.backend}`);
    assert.equal(status.services[0].wakes, 1);
    assert.equal(status.services[0].totalConnections, 1);
    assert.equal(status.services[0].bytesIn, 7);

    // A broken file is refused with its file:line; the daemon keeps serving.
    const good = await Deno.readTextFile(file);
    await Deno.writeTextFile(file, `${good}\n[beta]\nPORT=not-a-port\nSTART_CMD=true\n`);
    const refused = await cli("reload");
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`${file}:\\d+: Cannot use "PORT"`));
    assert.match(refused.stderr, /keeps running the configuration it had/);
    assert.equal(await exchange(alpha.port, "still here"), "still here");

    // A good file adds a service; alpha keeps its state and backend.
    const beta = { name: "beta", port: freePort(), backend: freePort() };
    await Deno.mkdir(`${dir}/beta`);
    await Deno.writeTextFile(file, echoConfig(dir, [alpha, beta]));
    const reloaded = await cli("reload");
    assert.equal(reloaded.code, 0, reloaded.stderr);
    assert.match(reloaded.stdout, /added: beta; unchanged: alpha/);
    assert.equal(await exchange(beta.port, "new"), "new");
    const both = JSON.parse((await cli("status", "--json")).stdout);
    assert.deepEqual(
      both.services.map((
        s: { name: string; state: string; wakes: number },
      ) => [s.name, s.state, s.wakes]),
      [["alpha", "awake", 1], ["beta", "awake", 1]],
    );

    const stopped = await cli("stop");
    assert.equal(stopped.code, 0);
    assert.equal(
      stopped.stdout,
      `alpha (port ${alpha.port}) stopped\nbeta (port ${beta.port}) stopped\n`,
    );
    assert.ok(!isAlive(pid));
    for (const name of ["alpha", "beta"]) {
      assert.equal(
        await Deno.readTextFile(`${dir}/${name}/stops`),
        "stop\n",
        `STOP_CMD of ${name}`,
      );
    }
    assert.throws(() => Deno.statSync(`${dir}/run/sleepingd.pid`), Deno.errors.NotFound);
    assert.throws(() => Deno.statSync(`${dir}/run/sleepingd.sock`), Deno.errors.NotFound);

    const after = await cli("status");
    assert.equal(after.code, 3);
    assert.equal(
      after.stdout,
      `alpha (port ${alpha.port}) not running\nbeta (port ${beta.port}) not running\n`,
    );
    const log = await Deno.readTextFile(`${dir}/run/sleepingd.log`);
    assert.match(log, /reload refused, the running configuration stays/);
    assert.match(log, /\[beta\] asleep -> starting/);
  } finally {
    await cleanup();
  }
});

Deno.test("sleepingd start and reload print every warning the daemon gives, one line each", async () => {
  const { dir, file, services, cli, cleanup } = await setup(["alpha"]);
  const [alpha] = services;
  try {
    // STATE_PATH under a file: the daemon keeps its history in memory and says so.
    await Deno.writeTextFile(`${dir}/plain`, "");
    const config = (await Deno.readTextFile(file))
      .replace(`STATE_PATH=${dir}/state`, `STATE_PATH=${dir}/plain/state`)
      .replace("LISTEN_ADDRESS=127.0.0.1\n", "LISTEN_ADDRESS=127.0.0.1\nIDEL_TIME=30\n");
    await Deno.writeTextFile(file, config);
    const started = await cli("start");
    assert.equal(started.code, 0, started.stderr);
    assert.equal(started.stdout, `alpha (port ${alpha.port}) started\n`);
    assert.equal(
      started.stderr,
      `sleepingd: warning: ${file}:7: Ignoring unknown key "IDEL_TIME": did you mean ` +
        '"IDLE_TIME"?\n' +
        `sleepingd: warning: ${file}:2: cannot keep the history in STATE_PATH ` +
        `${dir}/plain/state: Not a directory (os error 20): mkdir '${dir}/plain/state'; it ` +
        "lasts until sleepingd stops\n",
    );

    // A reload with a key that waits for a restart, and another unknown key.
    const metrics = freePort();
    await Deno.writeTextFile(
      file,
      `METRICS_ADDRESS=127.0.0.1:${metrics}\n${config.replace("IDEL_TIME", "IDLE_TIMEOUT")}`,
    );
    const reloaded = await cli("reload");
    assert.equal(reloaded.code, 0, reloaded.stderr);
    assert.match(reloaded.stdout, /^reloaded /);
    assert.equal(
      reloaded.stderr,
      `sleepingd: warning: ${file}:8: Ignoring unknown key "IDLE_TIMEOUT": did you mean ` +
        '"IDLE_TIME"?\n' +
        "sleepingd: warning: METRICS_ADDRESS changed: it takes effect when sleepingd restarts\n",
    );
    const status = await cli("status");
    assert.match(status.stdout, /\nwarning: METRICS_ADDRESS changed: it takes effect when /);
    assert.deepEqual(JSON.parse((await cli("status", "--json")).stdout).warnings, [
      `${file}:8: Ignoring unknown key "IDLE_TIMEOUT": did you mean "IDLE_TIME"?`,
      "METRICS_ADDRESS changed: it takes effect when sleepingd restarts",
    ]);

    // A refused reload: its warnings first, as they may explain its errors.
    await Deno.writeTextFile(file, config.replace(/^PORT=\d+$/m, "PROT=1"));
    const refused = await cli("reload");
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      new RegExp(
        `^sleepingd: warning: ${file}:5: Ignoring unknown key "PROT": did you mean "PORT"\\?\n` +
          `sleepingd: warning: ${file}:7: Ignoring unknown key "IDEL_TIME".*\n` +
          `sleepingd: error: ${file}:4: Cannot listen for \\[alpha\\] as it has no PORT`,
      ),
    );
  } finally {
    await cleanup();
  }
});

Deno.test("sleepingd reload of a file with a line it cannot read says file:line, and the daemon is still found", async () => {
  const { file, services, cli, cleanup } = await setup(["alpha"]);
  const [alpha] = services;
  try {
    assert.equal((await cli("start")).code, 0);
    const good = await Deno.readTextFile(file);
    await Deno.writeTextFile(file, `${good}foo bar\n`);
    const line = good.split("\n").length;
    const refused = await cli("reload");
    assert.equal(
      refused.stderr,
      `sleepingd: error: ${file}:${line}: Cannot read line "foo bar": expected KEY=value or ` +
        "[section]\nsleepingd: the daemon keeps running the configuration it had\n",
    );
    assert.equal(refused.stdout, "");
    assert.equal(refused.code, 1);
    const status = await cli("status");
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`^alpha \\(port ${alpha.port}\\) running\n`));
    assert.equal(await exchange(alpha.port, "served"), "served");
    const stopped = await cli("stop");
    assert.equal(stopped.stdout, `alpha (port ${alpha.port}) stopped\n`);
    assert.equal(stopped.code, 0);
  } finally {
    await cleanup();
  }
});

Deno.test("sleepingd reload without a daemon prints the file's own errors too", async () => {
  const { file, cli, cleanup } = await setup(["alpha"]);
  try {
    await Deno.writeTextFile(file, `${await Deno.readTextFile(file)}foo bar\n`);
    const reload = await cli("reload");
    assert.match(
      reload.stderr,
      new RegExp(`^sleepingd: error: ${file}:\\d+: Cannot read line "foo bar"`),
    );
    assert.match(reload.stderr, /sleepingd is not running/);
    assert.equal(reload.code, 1);
  } finally {
    await cleanup();
  }
});

Deno.test("sleepingd --debug logs each connect attempt, command output and idle check; -v does not", async () => {
  const { file, services, cleanup } = await setup(["alpha"]);
  const [alpha] = services;
  const text = await Deno.readTextFile(file);
  await Deno.writeTextFile(
    file,
    text.replace("IDLE_TIME=\n", "IDLE_TIME=30\nIDLE_CHECK_INTERVAL=0.05\n"),
  );
  const traced = [
    /^\S+ TRACE \[alpha\] connect attempt \d+ to 127\.0\.0\.1:\d+: accepted$/,
    /^\S+ TRACE \[alpha\] START_CMD printed "127\.0\.0\.1 \d+\\n" on stdout and nothing on stderr$/,
    /^\S+ TRACE \[alpha\] idle check: idle for \d+\.\ds of IDLE_TIME 30s$/,
  ];
  try {
    for (const flag of ["-v", "--debug"]) {
      const daemon = await startDaemon(file, { args: [flag] });
      try {
        assert.equal(await exchange(alpha.port, "x"), "x");
        const since = Date.now();
        await waitFor("several idle checks", () => Date.now() - since > 500);
        await daemon.waitForLine(/ DEBUG \[alpha\] running START_CMD/);
      } finally {
        assert.equal(await daemon.stop(), 0);
      }
      const found = traced.map((pattern) => daemon.lines.some((line) => pattern.test(line)));
      assert.deepEqual(found, traced.map(() => flag === "--debug"), daemon.lines.join("\n"));
    }
  } finally {
    await cleanup();
  }
});

Deno.test("sleepingd start replaces a stale pidfile and reports a port in use at PORT's line, in its log too", async () => {
  const { dir, services, cli, cleanup } = await setup(["alpha"]);
  try {
    await Deno.mkdir(`${dir}/run`);
    await Deno.writeTextFile(`${dir}/run/sleepingd.pid`, "999999\n");
    const started = await cli("start");
    assert.equal(started.code, 0, started.stderr);
    assert.notEqual((await Deno.readTextFile(`${dir}/run/sleepingd.pid`)).split("\n")[0], "999999");
    assert.equal((await cli("stop")).code, 0);

    const blocker = Deno.listen({ hostname: "127.0.0.1", port: services[0].port });
    try {
      const refused = await cli("start");
      assert.equal(refused.code, 1);
      // The error names the line of PORT (the fifth), and the log it points to holds it.
      const error = `${dir}/sleepingd.conf:5: [alpha] Cannot listen on 127.0.0.1:${
        services[0].port
      }: address already in use`;
      assert.equal(
        refused.stderr,
        `sleepingd: error: ${error}\n` +
          `sleepingd: error: the daemon exited with 1; see ${dir}/run/sleepingd.log\n`,
      );
      assert.equal(refused.stdout, "");
      const log = await Deno.readTextFile(`${dir}/run/sleepingd.log`);
      assert.match(log.trimEnd().split("\n").at(-1)!, /^\S+ FATAL cannot run: /);
      assert.ok(log.trimEnd().endsWith(error), log);
    } finally {
      blocker.close();
    }
  } finally {
    await cleanup();
  }
});

Deno.test("a failed START_CMD and STOP_CMD are each logged once, as errors, naming the signal", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-daemon-" });
  const port = freePort();
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `[failing]\nPORT=${port}\nLISTEN_ADDRESS=127.0.0.1\n` +
      "START_CMD='echo no disk >&2; exit 1'\nSTOP_CMD='kill -TERM $$'\n",
  );
  const daemon = await startDaemon(file);
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await daemon.waitForLine(/\[failing\] stopping -> asleep/);
    conn.close();
  } finally {
    assert.equal(await daemon.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
  const log = daemon.lines.join("\n");
  const commandLines = (key: string) =>
    daemon.lines.filter((line) => new RegExp(`\\[failing\\] (cannot wake: )?${key} `).test(line));
  const start = commandLines("START_CMD");
  assert.equal(start.length, 1, log);
  assert.match(start[0], /^\S+ ERROR \[failing\] START_CMD exit 1 after \d+\.\ds: no disk$/);
  const stop = commandLines("STOP_CMD");
  assert.equal(stop.length, 1, log);
  assert.match(stop[0], /^\S+ ERROR \[failing\] STOP_CMD exit 143 \(killed by SIGTERM\) after /);
  assert.match(log, /INFO {2}\[failing\] starting -> stopping: wake failed: START_CMD exit 1 /);
});

Deno.test("sleepingd stop and status say so when no daemon runs", async () => {
  const { cli, cleanup } = await setup(["alpha"]);
  try {
    const stop = await cli("stop");
    assert.equal(stop.code, 0);
    assert.equal(stop.stdout, "sleepingd is not running\n");
    const status = await cli("status", "--json");
    assert.equal(status.code, 3);
    assert.equal(JSON.parse(status.stdout).running, false);
    const reload = await cli("reload");
    assert.equal(reload.code, 1);
    assert.match(reload.stderr, /sleepingd is not running/);
  } finally {
    await cleanup();
  }
});

Deno.test("sleepingd stop and status with a mistyped -f or a broken file say so and exit 1, never not running", async () => {
  const { dir, cli, cleanup } = await setup(["alpha"]);
  try {
    assert.equal((await cli("start")).code, 0);
    const typo = `${dir}/sleepingd.cnof`;
    for (const command of ["stop", "status"]) {
      const answer = await runCli(["-f", typo, command]);
      assert.deepEqual(
        [answer.code, answer.stdout, answer.stderr],
        [1, "", `sleepingd: error: Cannot read config file "${typo}": it does not exist\n`],
        `${command} with a mistyped -f`,
      );
    }
    // A file with errors, whose VARRUN_PATH line is bad too, cannot say where the daemon is.
    const broken = `${dir}/broken.conf`;
    await Deno.writeTextFile(broken, `VARRUN_PATH ${dir}/run\n[alpha]\nPORT=1\nSTART_CMD=go\n`);
    for (const command of ["stop", "status"]) {
      const answer = await runCli(["-f", broken, command]);
      assert.equal(answer.code, 1, `${command} with a broken file: ${answer.stdout}`);
      assert.match(answer.stderr, new RegExp(`^sleepingd: error: ${broken}:1: Cannot read line`));
      assert.match(answer.stderr, /no daemon answers at .*, and the configuration has the errors/);
    }
    const status = await cli("status");
    assert.equal(status.code, 0, "the daemon runs on, untouched");
  } finally {
    await cleanup();
  }
});

Deno.test("SIGHUP reloads, and metrics and health are served and parse", async () => {
  const { dir, file, services, cleanup } = await setup(["alpha"]);
  const metricsPort = freePort();
  await Deno.writeTextFile(
    file,
    `METRICS_ADDRESS=127.0.0.1:${metricsPort}\n${await Deno.readTextFile(file)}`,
  );
  const daemon = await startDaemon(file, { args: ["--log-format", "json"] });
  try {
    assert.equal(await exchange(services[0].port, "m"), "m");
    const health = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
    assert.equal(await health.text(), "ok\n");
    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.match(response.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
    const samples = parsePrometheus(await response.text());
    assert.equal(samples.get('sleepingd_service_state{service="alpha",state="awake"}'), 1);
    assert.equal(samples.get('sleepingd_wakes_total{service="alpha"}'), 1);
    assert.equal(samples.get('sleepingd_connections_total{service="alpha"}'), 1);
    assert.equal(samples.get('sleepingd_bytes_total{service="alpha",direction="in"}'), 1);
    assert.equal(samples.get('sleepingd_bytes_total{service="alpha",direction="out"}'), 1);
    assert.equal(
      samples.get('sleepingd_forward_buffer_bytes{size="large",state="borrowed"}'),
      0,
      "no quiet connection holds a large buffer",
    );
    const [status] = JSON.parse((await runCli(["-f", file, "status", "--json"])).stdout).services;
    assert.deepEqual([status.bytesIn, status.bytesOut], [1, 1], "status counts as metrics do");
    const closed = daemon.lines.map((line) => JSON.parse(line)).find((record) =>
      record.properties.bytesIn !== undefined
    );
    assert.deepEqual([closed.properties.bytesIn, closed.properties.bytesOut], [1, 1]);
    assert.match(closed.message, /, 1 bytes in, 1 bytes out$/);
    assert.equal(
      samples.get('sleepingd_command_exits_total{service="alpha",command="START_CMD",code="0"}'),
      1,
    );
    assert.equal(
      samples.get('sleepingd_wake_duration_seconds_count{service="alpha",outcome="awake"}'),
      1,
    );

    const from = daemon.lines.length;
    const pid = Number((await Deno.readTextFile(`${dir}/run/sleepingd.pid`)).split("\n")[0]);
    Deno.kill(pid, "SIGHUP");
    const line = await daemon.waitForLine(/reloaded/, from);
    const record = JSON.parse(line);
    assert.equal(record.level, "INFO");
    assert.match(record.message, /unchanged: alpha/);
    for (const logged of daemon.lines) JSON.parse(logged); // every line is JSON
  } finally {
    assert.equal(await daemon.stop(), 0);
    await cleanup();
  }
});

/**
 * Parses the Prometheus text format strictly: every line is a comment
 * (`# HELP`/`# TYPE`) or `name{labels} value`; fails on anything else.
 */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const sample =
    /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})?) (\S+)$/;
  for (const line of text.trimEnd().split("\n")) {
    if (/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/.test(line)) continue;
    const match = sample.exec(line);
    assert.ok(match, `not a Prometheus line: ${line}`);
    const value = Number(match[2] === "+Inf" ? Infinity : match[2]);
    assert.ok(!Number.isNaN(value), `not a number in: ${line}`);
    samples.set(match[1], value);
  }
  return samples;
}

Deno.test("a second SIGTERM ends a shutdown stuck in STOP_CMD, with exit code 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-stuck-" });
  const port = freePort();
  const backend = freePort();
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `[stuck]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
START_CMD='${startEchoBackend(dir, backend)}'
STOP_CMD='echo "$$" > ${dir}/stop.pid; exec sleep 1000'
`,
  );
  const daemon = await startDaemon(file);
  try {
    assert.equal(await exchange(port, "x"), "x");
    Deno.kill(daemon.pid, "SIGTERM");
    await daemon.waitForLine(/awake -> stopping/);
    Deno.kill(daemon.pid, "SIGTERM");
    assert.equal(await daemon.stop(), 1);
    assert.ok(daemon.lines.some((line) => /SIGTERM again: exiting without finishing/.test(line)));
  } finally {
    await daemon.stop();
    for (const name of ["stop.pid", "backend.pid"]) {
      try {
        const leftover = Number(await Deno.readTextFile(`${dir}/${name}`));
        if (isAlive(leftover)) Deno.kill(leftover, "SIGKILL");
      } catch {
        // Not started.
      }
    }
    await Deno.remove(dir, { recursive: true });
  }
});
