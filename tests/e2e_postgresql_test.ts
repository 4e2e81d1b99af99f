/**
 * The PostgreSQL recipe (examples/postgresql) end to end: sleepingd in front of
 * a real PostgreSQL cluster that it starts from cold as the user postgres, with
 * the real psql client.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Daemon, replaceLine, startDaemon } from "./_daemon.ts";
import { freePort, isAlive } from "./_net.ts";
import { serverTest } from "./_servers.ts";
import { type Output, REPO, runProgram, waitFor } from "./_helpers.ts";

const EXAMPLE = `${REPO}examples/postgresql`;
const SCRIPT = "examples/postgresql/postgres-on-demand";
/** Where the recipe's commands expect the script installed. */
const INSTALLED = "/usr/local/lib/sleepingd/postgres-on-demand";
const PG_DIRS = ["/usr/lib/postgresql/*/bin"];
const NEEDS = [
  { binary: "initdb", package: "postgresql", dirs: PG_DIRS },
  { binary: "pg_ctl", package: "postgresql", dirs: PG_DIRS },
  { binary: "pg_isready", package: "postgresql-client", dirs: PG_DIRS },
  { binary: "psql", package: "postgresql-client", dirs: PG_DIRS },
  { binary: "setpriv", package: "util-linux" },
];

/** A fresh cluster of the recipe in a temp dir owned by postgres, and sleepingd in front. */
interface Setup {
  dir: string;
  /** sleepingd's port: the one clients use. */
  port: number;
  /** PostgreSQL's own port on 127.0.0.1. */
  pgPort: number;
  daemon: Daemon;
  /** The folder of this PostgreSQL version's programs (psql, pg_ctl...). */
  bin: string;
  /** Runs psql with `sql` against `port` (sleepingd's unless told); returns what it printed. */
  psql(sql: string, options?: { port?: number; host?: string }): Promise<Output>;
  /** The postmaster's pid, from postmaster.pid, once it runs. */
  postmasterPid(): Promise<number>;
}

/** The uid and gid of the user postgres. */
async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const { code, stdout } = await runProgram("id", ["-u", "postgres"]);
  assert.equal(code, 0, "the user postgres exists (made by the postgresql package)");
  const gid = await runProgram("id", ["-g", "postgres"]);
  return { uid: Number(stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * Makes a cluster with initdb (as postgres, trust authentication) in a temp dir, writes
 * the recipe's sleepingd.conf with the test's port and idle times and a copy of its script
 * (the user postgres may not be allowed into the repository), starts sleepingd, runs `fn`,
 * and always stops sleepingd and any postmaster left.
 */
async function withRecipe(
  paths: Record<string, string>,
  options: {
    idle?: { time: number; interval: number };
    edit?: (config: string) => string;
  },
  fn: (setup: Setup) => Promise<void>,
) {
  // One PostgreSQL version's folder: /usr/local/bin/pg_ctl may be a lone symlink into it.
  const bin = Deno.realPathSync(paths.pg_ctl).replace(/\/[^/]*$/, "");
  const binary = (name: string) => {
    assert.ok(Deno.statSync(`${bin}/${name}`).isFile, `${bin}/${name} exists`);
    return `${bin}/${name}`;
  };
  const psqlBinary = binary("psql");
  binary("pg_isready");
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-postgresql-" });
  const data = `${dir}/data`;
  let daemon: Daemon | undefined;
  try {
    const { uid, gid } = await postgresUser();
    await Deno.chown(dir, uid, gid);
    const initdb = await runProgram(paths.setpriv, [
      `--reuid=${uid}`,
      `--regid=${gid}`,
      "--init-groups",
      binary("initdb"),
      "--auth=trust",
      "--username=postgres",
      "--encoding=UTF8",
      "--no-sync",
      "-D",
      data,
    ], { cwd: dir });
    assert.equal(initdb.code, 0, initdb.stderr);
    await Deno.mkdir(`${dir}/socket`);
    await Deno.chown(`${dir}/socket`, uid, gid);
    await Deno.copyFile(`${REPO}${SCRIPT}`, `${dir}/postgres-on-demand`);
    await Deno.chmod(`${dir}/postgres-on-demand`, 0o755);

    const port = freePort();
    const pgPort = freePort();
    let config = await Deno.readTextFile(`${EXAMPLE}/sleepingd.conf`);
    config = replaceLine(config, /^PORT=5432$/m, `PORT=${port}`);
    assert.ok(config.includes(INSTALLED), `the recipe no longer runs ${INSTALLED}`);
    config = config.replaceAll(INSTALLED, `${dir}/postgres-on-demand`);
    if (options.idle) {
      config = replaceLine(config, /^IDLE_TIME=600$/m, `IDLE_TIME=${options.idle.time}`);
      config = replaceLine(
        config,
        /^IDLE_CHECK_INTERVAL=30$/m,
        `IDLE_CHECK_INTERVAL=${options.idle.interval}`,
      );
    } else {
      config = replaceLine(config, /^IDLE_TIME=600$/m, "IDLE_TIME=");
    }
    config = options.edit?.(config) ?? config;
    await Deno.writeTextFile(`${dir}/sleepingd.conf`, config);

    daemon = await startDaemon(`${dir}/sleepingd.conf`, {
      env: {
        POSTGRES_DATA: data,
        POSTGRES_PORT: `${pgPort}`,
        POSTGRES_SOCKET_DIR: `${dir}/socket`,
        POSTGRES_LOG: `${dir}/postgres.log`,
        POSTGRES_BIN: bin,
      },
      args: options.idle ? ["--verbose"] : [],
    });
    const setup: Setup = {
      dir,
      port,
      pgPort,
      daemon,
      bin,
      psql: (sql, { port: to = port, host = "127.0.0.1" } = {}) =>
        runProgram(psqlBinary, [
          ...["-h", host, "-p", `${to}`, "-U", "postgres", "-d", "postgres"],
          ...["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        ], { env: { PGCONNECT_TIMEOUT: "30" } }),
      async postmasterPid() {
        let pid = 0;
        await waitFor("PostgreSQL to write postmaster.pid", async () => {
          pid = await postmasterPid(data);
          return pid > 0;
        });
        return pid;
      },
    };
    await fn(setup);
  } finally {
    try {
      assert.equal(await daemon?.stop() ?? 0, 0, daemon?.lines.join("\n"));
    } finally {
      const pid = await postmasterPid(data);
      if (pid > 0 && isAlive(pid)) {
        Deno.kill(pid, "SIGQUIT"); // immediate shutdown, children included
        await waitFor("the postmaster left running to go", () => !isAlive(pid)).catch(() => {});
      }
      await Deno.remove(dir, { recursive: true });
    }
  }
}

/** The postmaster's pid: postmaster.pid's first line, or 0 when there is none. */
async function postmasterPid(data: string): Promise<number> {
  try {
    return Number((await Deno.readTextFile(`${data}/postmaster.pid`)).split("\n")[0]) || 0;
  } catch {
    return 0;
  }
}

function count(daemon: Daemon, pattern: RegExp): number {
  return daemon.lines.filter((line) => pattern.test(line)).length;
}

/**
 * A psql session that stays open, fed by the test: `query` sends SQL and waits (bounded)
 * for the output to hold `expected`; `close` ends it (EOF on its stdin).
 */
function openSession(psql: string, args: string[]) {
  const child = new Deno.Command(psql, {
    args: [...args, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"],
    env: { PGCONNECT_TIMEOUT: "30" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  let output = "";
  const reading = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) output += chunk;
  })();
  const errors = new Response(child.stderr).text();
  return {
    async query(sql: string, expected: string) {
      await writer.write(new TextEncoder().encode(`${sql}\n`));
      await waitFor(`psql to print ${JSON.stringify(expected)}`, () => output.includes(expected))
        .catch((error) => {
          throw new Error(`${error.message}; psql printed ${JSON.stringify(output)}`);
        });
      return output;
    },
    async close(): Promise<number> {
      await writer.close().catch(() => {});
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      const { code } = await child.status;
      clearTimeout(timer);
      await reading;
      await errors;
      return code;
    },
  };
}

serverTest(
  "psql from cold makes a table; after the idle stop, psql wakes PostgreSQL again and finds it",
  NEEDS,
  async (paths) => {
    await withRecipe(paths, { idle: { time: 1, interval: 0.2 } }, async (setup) => {
      const { dir, daemon, psql } = setup;
      const sql = "CREATE TABLE visits (id int PRIMARY KEY, who text);" +
        "INSERT INTO visits VALUES (1, 'first wake'), (2, 'still first');" +
        "SELECT who FROM visits ORDER BY id;";
      const first = await psql(sql);
      assert.equal(first.code, 0, `${first.stderr}\n${daemon.lines.join("\n")}`);
      assert.equal(first.stdout, "first wake\nstill first\n");
      const pid = await setup.postmasterPid();

      // Idle: no connection through sleepingd, and IDLE_CMD finds no session either.
      await daemon.waitForLine(/stopping -> asleep/);
      assert.equal(count(daemon, /awake -> stopping: idle for/), 1, daemon.lines.join("\n"));
      await waitFor("the postmaster to be gone", () => !isAlive(pid));
      assert.equal(await postmasterPid(`${dir}/data`), 0, "postmaster.pid is removed");

      let began = performance.now();
      const second = await psql("SELECT count(*) FROM visits;");
      const coldMs = performance.now() - began;
      assert.equal(second.code, 0, `${second.stderr}\n${daemon.lines.join("\n")}`);
      assert.equal(second.stdout, "2\n");
      assert.equal(count(daemon, /asleep -> starting/), 2, daemon.lines.join("\n"));
      assert.notEqual(await setup.postmasterPid(), pid, "a new postmaster");

      began = performance.now();
      const warm = await psql("SELECT count(*) FROM visits;");
      const warmMs = performance.now() - began;
      assert.equal(warm.stdout, "2\n", warm.stderr);
      began = performance.now();
      const straight = await psql("SELECT count(*) FROM visits;", { port: setup.pgPort });
      const straightMs = performance.now() - began;
      assert.equal(straight.stdout, "2\n", straight.stderr);
      console.log(
        `psql SELECT: ${coldMs.toFixed(0)} ms from cold and ${warmMs.toFixed(0)} ms warm ` +
          `through sleepingd, ${straightMs.toFixed(0)} ms straight to PostgreSQL`,
      );
    });
  },
);

serverTest(
  "a session on PostgreSQL's Unix socket, which bypasses sleepingd, keeps it awake until it ends",
  NEEDS,
  async (paths) => {
    await withRecipe(paths, { idle: { time: 1, interval: 0.2 } }, async (setup) => {
      const { dir, port, pgPort, daemon, bin } = setup;
      const common = ["-U", "postgres", "-d", "postgres"];
      // Through sleepingd (which wakes PostgreSQL), then on the socket while the first is open.
      const proxied = openSession(`${bin}/psql`, ["-h", "127.0.0.1", "-p", `${port}`, ...common]);
      let local: ReturnType<typeof openSession> | undefined;
      try {
        await proxied.query("SELECT 'proxied ' || 'on';", "proxied on");
        const pid = await setup.postmasterPid();
        local = openSession(`${bin}/psql`, ["-h", `${dir}/socket`, "-p", `${pgPort}`, ...common]);
        await local.query("SELECT 'local ' || 'on';", "local on");

        assert.equal(await proxied.close(), 0);
        await daemon.waitForLine(/ closed after /);
        const closed = daemon.lines.findIndex((line) => / closed after /.test(line));
        await daemon.waitForLine(/not idle: IDLE_CMD exit 1/, closed + 1);
        assert.equal(count(daemon, /awake -> stopping/), 0, daemon.lines.join("\n"));
        assert.ok(isAlive(pid), "PostgreSQL runs while a session is open");

        assert.equal(await local.close(), 0);
        await daemon.waitForLine(/stopping -> asleep/);
        assert.equal(count(daemon, /awake -> stopping: idle for/), 1, daemon.lines.join("\n"));
        await waitFor("the postmaster to be gone", () => !isAlive(pid));
      } finally {
        await proxied.close();
        await local?.close();
      }
    });
  },
);

serverTest(
  "each of five cold wakes in a row answers its first psql, READY_CMD holding it until PostgreSQL takes sessions",
  NEEDS,
  async (paths) => {
    await withRecipe(paths, { idle: { time: 0.3, interval: 0.1 } }, async ({ daemon, psql }) => {
      for (let wake = 1; wake <= 5; wake++) {
        const result = await psql("SELECT 40 + 2;");
        assert.equal(result.code, 0, `wake ${wake}: ${result.stderr}\n${daemon.lines.join("\n")}`);
        assert.equal(result.stdout, "42\n");
        await waitFor(`idle stop ${wake}`, () => count(daemon, /stopping -> asleep/) === wake);
      }
      assert.equal(count(daemon, /asleep -> starting/), 5, daemon.lines.join("\n"));
    });
  },
);

serverTest("the recipe's postgres-on-demand script passes bash -n and shellcheck", [
  { binary: "bash", package: "bash" },
  { binary: "shellcheck", package: "shellcheck" },
], async (paths) => {
  for (const [program, args] of [[paths.bash, ["-n"]], [paths.shellcheck, []]] as const) {
    const result = await runProgram(program, [...args, `${REPO}${SCRIPT}`]);
    assert.equal(result.code, 0, `${program}: ${result.stdout}${result.stderr}`);
  }
});
