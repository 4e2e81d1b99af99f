/**
 * sleepingd run by a user other than root (nobody), through the real CLI:
 * with the default folders, which it cannot write, it takes folders of its
 * own ($XDG_RUNTIME_DIR/sleepingd, ~/.local/state/sleepingd) and start,
 * status and stop all find them; with folders set where it cannot write,
 * `check` warns at their lines and `start` names a folder that works.
 *
 * As root, the test bundles sleepingd (the user cannot read root's Deno
 * cache) and runs it with setpriv as nobody, in a home of its own.
 */
import assert from "node:assert/strict";
import { bundleProgram } from "../packaging/bundle.ts";
import { type Output, tempFiles } from "./_helpers.ts";
import { freePort } from "./_net.ts";
import { findBinary } from "./_servers.ts";

/** The user the tests run sleepingd as. */
const USER = "nobody";
const setpriv = findBinary("setpriv");
const canSwitch = Deno.uid() === 0 && setpriv !== undefined;
if (!canSwitch) console.warn("skipping the tests as nobody: they need root and setpriv");

/** A home for nobody, its runtime folder, and sleepingd bundled where it can read it. */
interface UserSetup {
  /** The test's folder: bundle, configuration, home. */
  root: string;
  /** nobody's home. */
  home: string;
  /** nobody's XDG_RUNTIME_DIR. */
  runtime: string;
  /** nobody as sleepingd's messages name it: `uid 65534 (nobody)`. */
  who: string;
  /** Runs `sleepingd ARGS...` as nobody, in `root`. */
  cli(...args: string[]): Promise<Output>;
}

/** Creates a folder owned by nobody. */
async function ownedFolder(path: string, uid: number, gid: number): Promise<string> {
  await Deno.mkdir(path, { mode: 0o700 });
  await Deno.chown(path, uid, gid);
  return path;
}

/** Bundles sleepingd into `root` and prepares nobody's home. */
async function setupUser(root: string): Promise<UserSetup> {
  const [uid, gid] = (await Deno.readTextFile("/etc/passwd")).split("\n")
    .map((line) => line.split(":")).find((fields) => fields[0] === USER)!.slice(2, 4).map(Number);
  await Deno.chmod(root, 0o755);
  const bundle = `${root}/sleepingd.js`;
  await bundleProgram(bundle);
  await Deno.chmod(bundle, 0o644);
  const home = await ownedFolder(`${root}/home`, uid, gid);
  const runtime = await ownedFolder(`${root}/runtime`, uid, gid);
  const denoDir = await ownedFolder(`${root}/deno`, uid, gid);
  const cli = async (...args: string[]): Promise<Output> => {
    const { code, stdout, stderr } = await new Deno.Command(setpriv!, {
      args: [
        `--reuid=${uid}`,
        `--regid=${gid}`,
        "--clear-groups",
        Deno.execPath(),
        ...["run", "-A", "--no-config", "--no-lock", bundle, ...args],
      ],
      cwd: root,
      clearEnv: true,
      env: {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        HOME: home,
        XDG_RUNTIME_DIR: runtime,
        DENO_DIR: denoDir,
        NO_COLOR: "1",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const decoder = new TextDecoder();
    return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
  };
  return { root, home, runtime, who: `uid ${uid} (${USER})`, cli };
}

/** A configuration of one service, `extra` first; world-readable, in `root`. */
async function writeConfig(root: string, port: number, extra = ""): Promise<string> {
  const file = `${root}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `${extra}[web]\nPORT=${port}\nLISTEN_ADDRESS=127.0.0.1\nSTART_CMD=echo 127.0.0.1 1\n`,
  );
  await Deno.chmod(file, 0o644);
  return file;
}

Deno.test({
  name: "as a user, with the default folders, start, status and stop use folders of the user's own",
  ignore: !canSwitch,
  async fn() {
    await using dir = await tempFiles({});
    const { home, runtime, cli } = await setupUser(dir.path);
    const port = freePort();
    const file = await writeConfig(dir.path, port);
    const run = `${runtime}/sleepingd`;
    const state = `${home}/.local/state/sleepingd`;
    try {
      const check = await cli("-f", file, "check");
      assert.equal(check.stderr, "");
      assert.equal(
        check.stdout.split("\n").slice(0, 2).join("\n"),
        `run folder: ${run} (pidfile, control socket, the log of sleepingd start)\n` +
          `history: ${state}/events.jsonl`,
      );
      const start = await cli("-f", file, "start");
      assert.equal(start.stderr, "");
      assert.equal(start.stdout, `web (port ${port}) started\n`);
      assert.equal(start.code, 0);
      const pid = Number((await Deno.readTextFile(`${run}/sleepingd.pid`)).split("\n")[0]);
      assert.ok((await Deno.stat(`${state}/events.jsonl`)).isFile);
      const status = await cli("-f", file, "status", "--json");
      assert.equal(status.code, 0, status.stderr);
      assert.equal(JSON.parse(status.stdout).pid, pid);
      const stop = await cli("-f", file, "stop");
      assert.equal(stop.stdout, `web (port ${port}) stopped\n`);
      assert.equal(stop.code, 0);
    } finally {
      await cli("-f", file, "stop");
    }
  },
});

Deno.test({
  name: "as a user, folders set where it cannot write: check warns at their lines, start names one",
  ignore: !canSwitch,
  async fn() {
    await using dir = await tempFiles({});
    const { home, runtime, who, cli } = await setupUser(dir.path);
    const locked = `${dir.path}/locked`; // root's, mode 755
    await Deno.mkdir(locked, { mode: 0o755 });
    await Deno.chmod(locked, 0o755);
    const port = freePort();
    const file = await writeConfig(
      dir.path,
      port,
      `VARRUN_PATH=${locked}/run\nSTATE_PATH=${locked}/state\n`,
    );
    const check = await cli("-f", file, "check");
    assert.equal(check.code, 0);
    assert.equal(
      check.stderr,
      `sleepingd: warning: ${file}:1: VARRUN_PATH "${locked}/run" cannot be written by ` +
        `${who}: ${locked} is root's, mode 755; "sleepingd start" would fail, and "sleepingd run" ` +
        "would go without status, reload and stop; set VARRUN_PATH to a folder " +
        `${who} can write, e.g. ${runtime}/sleepingd\n` +
        `sleepingd: warning: ${file}:2: STATE_PATH "${locked}/state" cannot be written by ` +
        `${who}: ${locked} is root's, mode 755; the history would last only until sleepingd ` +
        `stops; set STATE_PATH to a folder ${who} can write, e.g. ` +
        `${home}/.local/state/sleepingd\n`,
    );

    const start = await cli("-f", file, "start");
    assert.equal(start.code, 1);
    assert.equal(start.stdout, "");
    assert.equal(
      start.stderr,
      `sleepingd: error: Cannot create VARRUN_PATH "${locked}/run": Permission denied ` +
        `(os error 13): mkdir '${locked}/run': set VARRUN_PATH to a folder ${who} can ` +
        `write, e.g. ${runtime}/sleepingd\n`,
    );
    assert.doesNotMatch(start.stderr, /global section/);
  },
});
