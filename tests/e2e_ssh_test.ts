/**
 * The SSH recipe (examples/ssh) end to end: sleepingd in front of a real sshd
 * instance that it starts from cold, with the real ssh and scp clients.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Daemon, replaceLine, startDaemon } from "./_daemon.ts";
import { freePort, isAlive, randomBytes, sha256 } from "./_net.ts";
import { serverTest } from "./_servers.ts";
import { type Output, REPO, runProgram, waitFor } from "./_helpers.ts";

const EXAMPLE = `${REPO}examples/ssh`;
const NEEDS = [
  { binary: "sshd", package: "openssh-server" },
  { binary: "ssh", package: "openssh-client" },
  { binary: "scp", package: "openssh-client" },
  { binary: "ssh-keygen", package: "openssh-client" },
  { binary: "pgrep", package: "procps" },
];

/** One sshd instance of the recipe, set up in a temp dir, and sleepingd in front of it. */
interface Setup {
  dir: string;
  /** sleepingd's port: the one clients use. */
  port: number;
  /** sshd's own port on 127.0.0.1. */
  sshdPort: number;
  daemon: Daemon;
  /** Stops sleepingd (once, however often it is called) and returns its exit code. */
  stopDaemon(): Promise<number>;
  /** Runs ssh to `port` with the test key; returns exit code and output. */
  ssh(port: number, command: string): Promise<Output>;
  /** The pid sshd wrote to its PidFile, once it runs. */
  sshdPid(): Promise<number>;
}

function sshOptions(dir: string): string[] {
  return [
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "ConnectTimeout=30",
    "-i",
    `${dir}/client_key`,
  ];
}

/**
 * Writes the recipe's files for this test (its sshd_config.example with the test's port,
 * keys and pid file; its sleepingd.conf with the test's port and idle times), starts
 * sleepingd on them, runs `fn`, and always stops sleepingd and any sshd left.
 */
async function withRecipe(
  paths: Record<string, string>,
  idle: { time: number; interval: number } | undefined,
  fn: (setup: Setup) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-ssh-" });
  let daemon: Daemon | undefined;
  let stopping: Promise<number> | undefined;
  const stopDaemon = () => stopping ??= daemon?.stop() ?? Promise.resolve(0);
  try {
    for (const key of ["host_key", "client_key"]) {
      const keygen = await runProgram(paths["ssh-keygen"], [
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-f",
        `${dir}/${key}`,
      ]);
      assert.equal(keygen.code, 0, keygen.stderr);
    }
    await Deno.copyFile(`${dir}/client_key.pub`, `${dir}/authorized_keys`);
    const port = freePort();
    const sshdPort = freePort();
    let sshdConfig = await Deno.readTextFile(`${EXAMPLE}/sshd_config.example`);
    sshdConfig = replaceLine(sshdConfig, /^Port 2022$/m, `Port ${sshdPort}`);
    sshdConfig = replaceLine(sshdConfig, /^PidFile .*$/m, `PidFile ${dir}/sshd.pid`);
    sshdConfig = replaceLine(sshdConfig, /^UsePAM yes$/m, "UsePAM no"); // no PAM in containers
    sshdConfig = replaceLine(sshdConfig, /^HostKey .*\n/gm, "");
    // The first value of a key wins in sshd_config: the test's own settings go first.
    sshdConfig = [
      `HostKey ${dir}/host_key`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "StrictModes no", // the temp dir's parent, /tmp, is world-writable
      sshdConfig,
    ].join("\n");
    await Deno.writeTextFile(`${dir}/sshd_config`, sshdConfig);

    let config = await Deno.readTextFile(`${EXAMPLE}/sleepingd.conf`);
    config = replaceLine(config, /^PORT=2222$/m, `PORT=${port}`);
    if (idle) {
      config = replaceLine(config, /^IDLE_TIME=300$/m, `IDLE_TIME=${idle.time}`);
      config = replaceLine(
        config,
        /^IDLE_CHECK_INTERVAL=30$/m,
        `IDLE_CHECK_INTERVAL=${idle.interval}`,
      );
    } else {
      config = replaceLine(config, /^IDLE_TIME=300$/m, "IDLE_TIME=");
    }
    await Deno.writeTextFile(`${dir}/sleepingd.conf`, config);

    daemon = await startDaemon(`${dir}/sleepingd.conf`, {
      env: {
        SSHD_CONFIG: `${dir}/sshd_config`,
        SSHD_BIN: paths.sshd,
        SSHD_LOG: `${dir}/sshd.log`,
      },
      args: idle ? ["--verbose"] : [],
    });
    const setup: Setup = {
      dir,
      port,
      sshdPort,
      daemon,
      stopDaemon,
      ssh: (to, command) =>
        runProgram(paths.ssh, [...sshOptions(dir), "-p", `${to}`, "root@127.0.0.1", command]),
      async sshdPid() {
        let pid = 0;
        await waitFor("sshd to write its pid file", async () => {
          pid = Number((await readOr(`${dir}/sshd.pid`)).trim());
          return pid > 0;
        });
        return pid;
      },
    };
    await fn(setup);
  } finally {
    const pid = Number((await readOr(`${dir}/sshd.pid`)).trim());
    try {
      assert.equal(await stopDaemon(), 0, daemon?.lines.join("\n"));
    } finally {
      if (pid > 0 && isAlive(pid)) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  }
}

async function readOr(file: string, fallback = ""): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch {
    return fallback;
  }
}

function count(daemon: Daemon, pattern: RegExp): number {
  return daemon.lines.filter((line) => pattern.test(line)).length;
}

serverTest(
  "ssh from cold wakes sshd once and runs the command; sleepingd stops it on exit",
  NEEDS,
  async (paths) => {
    await withRecipe(paths, undefined, async (setup) => {
      const { port, sshdPort, daemon, ssh, sshdPid } = setup;
      let began = performance.now();
      const cold = await ssh(port, "echo hello");
      const coldMs = performance.now() - began;
      assert.equal(cold.code, 0, `${cold.stderr}\n${daemon.lines.join("\n")}`);
      assert.equal(cold.stdout, "hello\n");
      const pid = await sshdPid();
      assert.ok(isAlive(pid), "sshd runs after the first session");

      began = performance.now();
      const warm = await ssh(port, "echo hello again");
      const warmMs = performance.now() - began;
      assert.equal(warm.code, 0, warm.stderr);
      assert.equal(warm.stdout, "hello again\n");
      began = performance.now();
      const straight = await ssh(sshdPort, "echo hello");
      const straightMs = performance.now() - began;
      assert.equal(straight.stdout, "hello\n", straight.stderr);
      assert.equal(count(daemon, /asleep -> starting/), 1, daemon.lines.join("\n"));
      console.log(
        `ssh echo hello: ${coldMs.toFixed(0)} ms from cold and ${warmMs.toFixed(0)} ms warm ` +
          `through sleepingd, ${straightMs.toFixed(0)} ms straight to sshd`,
      );

      // sleepingd stops the sshd it woke when it stops itself.
      assert.equal(await setup.stopDaemon(), 0);
      assert.equal(count(daemon, /awake -> stopping: sleepingd is shutting down/), 1);
      await waitFor("sshd to be gone", () => !isAlive(pid));
    });
  },
);

serverTest(
  "scp copies a 20 MiB file up and back down through a cold sshd byte for byte",
  NEEDS,
  async (paths) => {
    await withRecipe(paths, undefined, async ({ dir, port, daemon }) => {
      const data = randomBytes(20 * 1024 * 1024);
      await Deno.writeFile(`${dir}/original.bin`, data);
      const scp = (from: string, to: string) =>
        runProgram(paths.scp, [...sshOptions(dir), "-P", `${port}`, from, to]);

      const up = await scp(`${dir}/original.bin`, `root@127.0.0.1:${dir}/uploaded.bin`);
      assert.equal(up.code, 0, `${up.stderr}\n${daemon.lines.join("\n")}`);
      const down = await scp(`root@127.0.0.1:${dir}/uploaded.bin`, `${dir}/downloaded.bin`);
      assert.equal(down.code, 0, down.stderr);

      const expected = await sha256(data);
      assert.equal(await sha256(await Deno.readFile(`${dir}/uploaded.bin`)), expected);
      assert.equal(await sha256(await Deno.readFile(`${dir}/downloaded.bin`)), expected);
      assert.equal(count(daemon, /asleep -> starting/), 1, daemon.lines.join("\n"));
    });
  },
);

serverTest(
  "sshd is stopped once when its sessions end, a session straight to sshd keeping it awake",
  NEEDS,
  async (paths) => {
    await withRecipe(paths, { time: 1, interval: 0.2 }, async (setup) => {
      const { dir, port, sshdPort, daemon, ssh } = setup;
      // A session that lasts until the test releases it: it says it began by creating a file.
      const session = (to: number, name: string) =>
        ssh(
          to,
          `touch ${dir}/${name}.began; while [ ! -e ${dir}/${name}.release ]; do sleep 0.05; done`,
        );
      const began = (name: string) => async () =>
        (await readOr(`${dir}/${name}.began`, "-")) === "";
      const release = (name: string) => Deno.writeTextFile(`${dir}/${name}.release`, "");

      const proxied = session(port, "proxied");
      let direct: Promise<Output> | undefined;
      try {
        // Through sleepingd (which wakes sshd), then straight to sshd while the first one is on.
        await waitFor("the session through sleepingd to begin", began("proxied"), 30);
        const pid = await setup.sshdPid();
        direct = session(sshdPort, "direct");
        await waitFor("the session straight to sshd to begin", began("direct"), 30);

        // Only the session that bypasses sleepingd is left: IDLE_CMD must see it.
        await release("proxied");
        assert.equal((await proxied).code, 0);
        await daemon.waitForLine(/ closed after /);
        const closed = daemon.lines.findIndex((line) => / closed after /.test(line));
        await daemon.waitForLine(/not idle: IDLE_CMD exit 1/, closed + 1);
        assert.equal(count(daemon, /awake -> stopping/), 0, daemon.lines.join("\n"));
        assert.ok(isAlive(pid), "sshd runs while a session is open");

        await release("direct");
        assert.equal((await direct).code, 0);
        await daemon.waitForLine(/stopping -> asleep/);
        assert.equal(count(daemon, /awake -> stopping: idle for/), 1, daemon.lines.join("\n"));
        await waitFor("sshd to be gone", () => !isAlive(pid));
      } finally {
        await Promise.all([release("proxied"), release("direct")]);
        await Promise.allSettled([proxied, direct]);
      }
    });
  },
);

serverTest("the recipe's sshd-on-demand script passes bash -n and shellcheck", [
  { binary: "bash", package: "bash" },
  { binary: "shellcheck", package: "shellcheck" },
], async (paths) => {
  for (const [program, args] of [[paths.bash, ["-n"]], [paths.shellcheck, []]] as const) {
    const result = await runProgram(program, [...args, `${EXAMPLE}/sshd-on-demand`]);
    assert.equal(result.code, 0, `${program}: ${result.stdout}${result.stderr}`);
  }
});
