/**
 * The daemon's files against another local user (one made with `useradd`
 * for the test, removed after), through the real CLI: folders another user
 * owns or anyone may write are refused with the fix, links planted at the
 * daemon's file names are never followed, a state file another user owns is
 * not trusted, a leftover pid is ended only when its run id matches, and
 * what the daemon creates is its user's alone. Needs root.
 */
import assert from "node:assert/strict";
import { startDaemon } from "./_daemon.ts";
import { runCli, runProgram, waitFor } from "./_helpers.ts";
import { historySetup } from "./_history.ts";
import { isAlive, listenLocal } from "./_net.ts";
import { exchange } from "./_service.ts";
import { readProcStat } from "../src/process/proc_stat.ts";

const isRoot = Deno.uid() === 0;

/** A user of its own for the test: its name and uid; removed by the returned function. */
async function otherUser(): Promise<{ name: string; uid: number; remove(): Promise<void> }> {
  const name = `sdtest${
    Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, "0"))
      .join("")
  }`;
  const added = await runProgram("useradd", [
    "--system",
    "--no-create-home",
    "--shell",
    "/usr/sbin/nologin",
    name,
  ]);
  assert.equal(added.code, 0, added.stderr);
  const uid = Number((await runProgram("id", ["-u", name])).stdout.trim());
  return {
    name,
    uid,
    remove: async () => {
      const removed = await runProgram("userdel", [name]);
      assert.equal(removed.code, 0, removed.stderr);
    },
  };
}

/** `chown -h`: gives a file, or a link itself, to `user`. */
async function chown(user: string, ...paths: string[]): Promise<void> {
  const result = await runProgram("chown", ["-h", user, ...paths]);
  assert.equal(result.code, 0, result.stderr);
}

/** The permission bits of `path`, in octal. */
function modeOf(path: string): string {
  return (Deno.lstatSync(path).mode! & 0o7777).toString(8);
}

Deno.test({
  name:
    "folders another user owns or anyone may write are refused with the fix; links planted there are never followed",
  ignore: !isRoot,
  fn: async () => {
    const user = await otherUser();
    const setup = await historySetup({ name: "echo", idleTime: 60, cost: "" });
    const shared = `${setup.dir}/shared`;
    const victim = `${setup.dir}/victim`;
    try {
      await Deno.writeTextFile(victim, "root's own\n", { mode: 0o600 });
      await Deno.mkdir(shared, { mode: 0o755 });
      // The other user's links at every name the daemon writes, the aside names included.
      const names = ["sleepingd.pid", "state.json", "events.jsonl", "events.jsonl.1"];
      for (let pid = 1; pid < 400; pid++) names.push(`state.json.${pid}`, `sleepingd.pid.${pid}`);
      for (const name of names) await Deno.symlink(victim, `${shared}/${name}`);
      await chown(user.name, shared, ...names.map((name) => `${shared}/${name}`));

      const run = async (global: string) => {
        await Deno.writeTextFile(`${setup.dir}/global.conf`, global);
        return await runCli(["-f", setup.file, "-f", `${setup.dir}/global.conf`, "run"]);
      };
      const refusal = (key: string, problem: string) =>
        new RegExp(
          `Cannot use ${key} "${shared}[^"]*": ${problem}, so another user could replace or ` +
            `plant the files sleepingd keeps there: set ${key} to a folder only root and ` +
            "sleepingd's user can change",
        );
      const owned =
        `${shared} is owned by uid ${user.uid}, not by root or sleepingd's user \\(uid 0\\)`;
      for (const key of ["VARRUN_PATH", "STATE_PATH"]) {
        for (const path of [shared, `${shared}/below`]) {
          const result = await run(`${key}=${path}\n`);
          assert.equal(result.code, 1, `${key}=${path}`);
          assert.match(result.stderr, refusal(key, owned));
        }
      }
      await Deno.writeTextFile(`${setup.dir}/global.conf`, `VARRUN_PATH=${shared}\n`);
      const started = await runCli(["-f", setup.file, "-f", `${setup.dir}/global.conf`, "start"]);
      assert.equal(started.code, 1);
      assert.match(started.stderr, refusal("VARRUN_PATH", owned));

      // A link of the other user's on the way; a folder anyone may write.
      await Deno.symlink(shared, `${setup.dir}/link`);
      await chown(user.name, `${setup.dir}/link`);
      const linked = await run(`VARRUN_PATH=${setup.dir}/link/run\n`);
      assert.match(
        linked.stderr,
        new RegExp(`${setup.dir}/link is a symbolic link owned by uid ${user.uid}`),
      );
      await Deno.mkdir(`${setup.dir}/open`, { mode: 0o777 });
      await Deno.chmod(`${setup.dir}/open`, 0o777);
      const open = await run(`STATE_PATH=${setup.dir}/open\n`);
      assert.match(open.stderr, /open is writable by every user \(mode 777\)/);
      assert.equal(
        await Deno.readTextFile(victim),
        "root's own\n",
        "nothing was written through a link",
      );
    } finally {
      await setup.cleanup();
      await user.remove();
    }
  },
});

Deno.test({
  name:
    "a link or a hard link at the event log's name is not followed; root's own links on the way are",
  ignore: !isRoot,
  fn: async () => {
    const setup = await historySetup({ name: "echo", idleTime: 60, cost: "" });
    const victim = `${setup.dir}/victim`;
    await Deno.writeTextFile(victim, "root's own\n", { mode: 0o600 });
    // As /var/run is a link to /run: a link root made on the way to VARRUN_PATH is fine.
    await Deno.mkdir(`${setup.dir}/real-run`, { mode: 0o700 });
    await Deno.symlink(`${setup.dir}/real-run`, `${setup.dir}/run-link`);
    await Deno.writeTextFile(`${setup.dir}/global.conf`, `VARRUN_PATH=${setup.dir}/run-link\n`);
    try {
      for (const plant of [Deno.symlink, Deno.link]) {
        await plant(victim, `${setup.dir}/state/events.jsonl`);
        const daemon = await startDaemon(setup.file);
        try {
          await daemon.waitForLine(
            plant === Deno.symlink
              ? /cannot keep the history in STATE_PATH .*events\.jsonl is a symbolic link: sleepingd never follows one; it lasts until sleepingd stops/
              : /cannot keep the history in STATE_PATH .*events\.jsonl has 1 other hard link\(s\)/,
          );
          assert.equal(await exchange(setup.port, "hi"), "hi");
        } finally {
          assert.equal(await daemon.stop(), 0);
        }
        assert.equal(await Deno.readTextFile(victim), "root's own\n", "nothing was appended");
        await Deno.remove(`${setup.dir}/state/events.jsonl`);
      }
      const files = ["-f", setup.file, "-f", `${setup.dir}/global.conf`];
      const daemon = await runCli([...files, "start"]);
      assert.equal(daemon.code, 0, daemon.stderr);
      assert.ok(Deno.statSync(`${setup.dir}/real-run/sleepingd.pid`).isFile);
      assert.equal((await runCli([...files, "stop"])).code, 0);
    } finally {
      await setup.cleanup();
    }
  },
});

Deno.test({
  name:
    "a state file another user owns is not trusted; a leftover pid is ended only when its run id matches",
  ignore: !isRoot,
  fn: async () => {
    const user = await otherUser();
    const setup = await historySetup({ name: "echo", idleTime: 60, cost: "" });
    const run = `${setup.dir}/run`;
    await Deno.mkdir(run, { mode: 0o700 });
    // An unrelated process, and a listener of the other user's that should never see a client.
    const unrelated = new Deno.Command("sleep", { args: ["1000"], stdin: "null" }).spawn();
    const trap = listenLocal();
    const trapped: Deno.Conn[] = [];
    (async () => {
      for await (const conn of trap) trapped.push(conn);
    })().catch(() => {});
    const forge = async (owner: string | undefined) => {
      const startTime = readProcStat(unrelated.pid)!.startTime;
      await Deno.writeTextFile(
        `${run}/state.json`,
        JSON.stringify({
          pid: 1,
          services: [{
            name: "echo",
            state: "starting",
            commands: [{ action: "start", pid: unrelated.pid, startTime, runId: "forged" }],
            target: { hostname: "127.0.0.1", port: trap.addr.port },
          }],
        }),
        { mode: 0o600 },
      );
      if (owner) await chown(owner, `${run}/state.json`);
    };
    try {
      // Owned by the other user: ignored, nothing ended, nothing adopted.
      await forge(user.name);
      const first = await startDaemon(setup.file);
      try {
        await first.waitForLine(
          new RegExp(
            `ignoring what the last daemon saved: ${run}/state\\.json is owned by uid ${user.uid}`,
          ),
        );
        assert.equal(await exchange(setup.port, "to the real backend"), "to the real backend");
        assert.equal(trapped.length, 0, "no client reached the forged target");
        assert.ok(!first.lines.some((line) => /adopted|ending START_CMD/.test(line)));
      } finally {
        assert.equal(await first.stop(), 0);
      }
      // root's own file, naming a process that is not the START_CMD it ran: left alone.
      await forge(undefined);
      const second = await startDaemon(setup.file);
      try {
        await second.waitForLine(
          new RegExp(
            `\\[echo\\] left pid ${unrelated.pid} alone: it is not the START_CMD the last daemon ` +
              "ran \\(its SLEEPINGD_RUN_ID differs\\)",
          ),
        );
        await second.waitForLine(/\[echo\] stopping -> asleep/);
      } finally {
        assert.equal(await second.stop(), 0);
      }
      assert.ok(isAlive(unrelated.pid), "the unrelated process still runs");
    } finally {
      unrelated.kill("SIGKILL");
      await unrelated.status;
      trap.close();
      for (const conn of trapped) conn.close();
      await setup.cleanup();
      await user.remove();
    }
  },
});

Deno.test("what the daemon creates is its user's alone: folders 700 and 750, state 600, pidfile and history 640", async () => {
  const setup = await historySetup({ name: "echo", idleTime: 60, cost: "" });
  const run = `${setup.dir}/new-run`;
  const state = `${setup.dir}/new-state`;
  await Deno.writeTextFile(`${setup.dir}/global.conf`, `VARRUN_PATH=${run}\nSTATE_PATH=${state}\n`);
  const files = ["-f", setup.file, "-f", `${setup.dir}/global.conf`];
  try {
    // umask 0 would keep every mode as asked: the modes below are the daemon's own.
    const started = await runProgram("bash", [
      "-c",
      'umask 0 && exec "$@"',
      "bash",
      Deno.execPath(),
      "run",
      "--quiet",
      "-A",
      new URL("../src/main.ts", import.meta.url).pathname,
      ...files,
      "start",
    ], { env: { NO_COLOR: "1" } });
    assert.equal(started.code, 0, started.stderr);
    assert.equal(await exchange(setup.port, "hi"), "hi");
    await waitFor("the state file", () => {
      try {
        return Deno.statSync(`${run}/state.json`).isFile;
      } catch {
        return false;
      }
    });
    assert.deepEqual(
      [run, `${run}/state.json`, `${run}/sleepingd.pid`, state, `${state}/events.jsonl`].map(
        modeOf,
      ),
      ["700", "600", "640", "750", "640"],
    );
    assert.deepEqual(
      [...Deno.readDirSync(run)].map((entry) => entry.name).filter((name) =>
        /\.[0-9a-f]+$/.test(name)
      ),
      [],
      "no aside file is left",
    );
  } finally {
    await runCli([...files, "stop"]);
    await setup.cleanup();
  }
});
