/**
 * Tests of runShell() on real processes. Every process a test starts is killed before the
 * test ends, and every wait is bounded.
 */

import assert from "node:assert/strict";
import { describeResult, firstLine, runShell, type ShellResult } from "../src/process/run_shell.ts";
import { isAlive } from "../src/process/proc_stat.ts";
import { waitFor } from "./_helpers.ts";

const isRoot = Deno.uid() === 0;

/** SIGKILLs the process group `pgid`, whatever is left of it. */
function killGroup(pgid: number): void {
  try {
    Deno.kill(-pgid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Kills what is left of a background process and lets the pipe reader see its EOF. */
async function cleanUp(result: ShellResult, pid?: number): Promise<void> {
  killGroup(result.pid);
  if (pid) await waitFor(`background process ${pid} to die`, () => !isAlive(pid), 2);
  await new Promise((resolve) => setTimeout(resolve, 50));
}

Deno.test("runShell() captures the exit code, stdout and stderr", async () => {
  const result = await runShell("echo out; echo err >&2; exit 3");
  assert.equal(result.code, 3);
  assert.equal(result.stdout, "out\n");
  assert.equal(result.stdoutBytes, 4);
  assert.equal(result.stderrTail, "err\n");
  assert.equal(result.stderrBytes, 4);
  assert.equal(result.timedOut, false);
  assert.equal(result.aborted, false);
  assert.equal(result.outputLeftOpen, false);
  assert.ok(result.pid > 1);
});

Deno.test("runShell() gives the command /dev/null as stdin", async () => {
  const result = await runShell("cat; echo done", { timeout: 5 });
  assert.equal(result.stdout, "done\n");
  assert.equal(result.timedOut, false);
});

Deno.test("runShell() keeps only the last 8 KiB of stderr", async () => {
  const result = await runShell("head -c 20000 /dev/zero | tr '\\0' a >&2; echo END >&2");
  assert.equal(result.code, 0);
  assert.equal(result.stderrTail, "a".repeat(8192 - 4) + "END\n");
  assert.equal(result.stderrBytes, 20004);
});

Deno.test("runShell() reads 10 MiB of stdout and stderr at once without a deadlock", async () => {
  const result = await runShell(
    "head -c 10485760 /dev/zero & head -c 10485760 /dev/zero >&2; wait",
    { timeout: 30 },
  );
  assert.equal(result.code, 0);
  assert.equal(result.timedOut, false);
  assert.equal(result.stdoutBytes, 10485760);
  assert.equal(result.stdout.length, 64 * 1024);
  assert.equal(result.stderrTail.length, 8192);
});

Deno.test("runShell() kills a timed-out command together with its grandchild", async () => {
  const result = await runShell("sleep 1000 & echo $!; wait", { timeout: 0.5 });
  const grandchild = Number(firstLine(result.stdout));
  try {
    assert.ok(grandchild > 1, `grandchild PID printed: ${JSON.stringify(result.stdout)}`);
    assert.equal(result.code, 124);
    assert.equal(result.timedOut, true);
    assert.equal(result.aborted, false);
    assert.ok(result.durationMs >= 450, `ran ${result.durationMs} ms`);
    assert.ok(result.durationMs < 2000, `TERM was enough, no wait for the KILL grace`);
    assert.equal(isAlive(grandchild), false, `grandchild ${grandchild} is dead`);
    assert.equal(isAlive(result.pid), false);
  } finally {
    killGroup(result.pid);
  }
});

Deno.test("runShell() KILLs a command that ignores TERM after the grace", async () => {
  const started = performance.now();
  const result = await runShell("trap '' TERM; sleep 1000 & echo $!; wait", {
    timeout: 0.3,
    killGraceMs: 400,
  });
  const elapsed = performance.now() - started;
  const grandchild = Number(firstLine(result.stdout));
  try {
    assert.equal(result.code, 124);
    assert.equal(result.timedOut, true);
    assert.ok(elapsed >= 650, `KILL came after the grace: returned after ${elapsed} ms`);
    assert.ok(elapsed < 3000, `returned after ${elapsed} ms`);
    assert.ok(grandchild > 1);
    assert.equal(isAlive(grandchild), false, `grandchild ${grandchild} is dead`);
  } finally {
    killGroup(result.pid);
  }
});

Deno.test("runShell() passes environment variables and never executes their values", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const values = {
      SLEEPINGD_SERVICE: "web",
      SLEEPINGD_CLIENT_ADDRESS: `$(touch ${dir}/dollar)`,
      SLEEPINGD_TARGET: `\`touch ${dir}/backtick\``,
      SLEEPINGD_ACTION: `"; touch ${dir}/quote; echo "`,
    };
    const result = await runShell(
      'echo "$SLEEPINGD_SERVICE"; echo "$SLEEPINGD_CLIENT_ADDRESS"; echo $SLEEPINGD_TARGET; ' +
        'echo "$SLEEPINGD_ACTION"; echo "$PATH"',
      { env: values },
    );
    assert.equal(result.code, 0, result.stderrTail);
    assert.deepEqual(result.stdout.split("\n").slice(0, 4), [
      "web",
      values.SLEEPINGD_CLIENT_ADDRESS,
      values.SLEEPINGD_TARGET,
      values.SLEEPINGD_ACTION,
    ]);
    assert.equal(result.stdout.split("\n")[4], Deno.env.get("PATH"), "daemon's env is kept");
    assert.deepEqual([...Deno.readDirSync(dir)], [], "no value was executed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runShell() passes the command text to the shell untouched", async () => {
  const cases: [string, string][] = [
    [`printf '%s|' "a b" 'c"d' && echo`, 'a b|c"d|\n'],
    ["echo one\necho two\n", "one\ntwo\n"],
    ["echo a; echo b", "a\nb\n"],
    ["sh -c 'echo oops >&2' 2>&1", "oops\n"],
    ["cat </dev/null; echo empty", "empty\n"],
    [`echo "$(echo nested)" '$(not run)'`, "nested $(not run)\n"],
    ["( echo -e 'Response: $(date)' > /dev/null & ) ; echo '127.0.0.1 8080'", "127.0.0.1 8080\n"],
  ];
  for (const [command, stdout] of cases) {
    const result = await runShell(command, { timeout: 5 });
    assert.equal(result.stdout, stdout, `stdout of ${JSON.stringify(command)}`);
    assert.equal(result.code, 0, `exit code of ${JSON.stringify(command)}`);
    assert.equal(result.stderrTail, "", `stderr of ${JSON.stringify(command)}`);
  }
});

for (const redirect of [true, false]) {
  const background = redirect ? "sleep 30 >/dev/null 2>&1 &" : "sleep 30 &";
  Deno.test(
    `runShell() returns promptly and leaves a background server running (${background})`,
    async () => {
      const dir = await Deno.makeTempDir();
      const started = performance.now();
      const result = await runShell(
        `( ${background} echo $! > ${dir}/pid ) ; echo '127.0.0.1 8080'`,
        { timeout: 10 },
      );
      const elapsed = performance.now() - started;
      const server = Number(await Deno.readTextFile(`${dir}/pid`));
      try {
        assert.equal(result.code, 0);
        assert.equal(result.stdout, "127.0.0.1 8080\n");
        assert.ok(elapsed < 1000, `returned after ${elapsed} ms`);
        assert.equal(result.outputLeftOpen, !redirect);
        assert.ok(isAlive(server), `background server ${server} still runs`);
      } finally {
        await cleanUp(result, server);
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

Deno.test("runShell() keeps reading a background process's output so it is not killed by SIGPIPE", async () => {
  const result = await runShell("( while :; do echo tick; sleep 0.02; done ) & echo $!", {
    timeout: 10,
  });
  // The loop may print its first tick before the shell prints the pid.
  const server = Number(result.stdout.split("\n").find((line) => /^\d+$/.test(line)));
  try {
    assert.equal(result.code, 0);
    assert.equal(result.outputLeftOpen, true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(isAlive(server), `background process ${server} survives writing to stdout`);
  } finally {
    await cleanUp(result, server);
  }
});

Deno.test("runShell() kills the process group when the signal aborts", async () => {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 300);
  const result = await runShell("sleep 1000 & echo $!; wait", {
    timeout: 10,
    signal: controller.signal,
  });
  clearTimeout(timer);
  const grandchild = Number(firstLine(result.stdout));
  try {
    assert.equal(result.aborted, true);
    assert.equal(result.timedOut, false);
    assert.equal(result.code, 128 + 15);
    assert.ok(result.durationMs < 2000, `ran ${result.durationMs} ms`);
    assert.ok(grandchild > 1);
    assert.equal(isAlive(grandchild), false, `grandchild ${grandchild} is dead`);
  } finally {
    killGroup(result.pid);
  }
});

Deno.test("runShell() does not start the command when the signal is already aborted", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      runShell(`touch ${dir}/ran`, { signal: AbortSignal.abort() }),
      { name: "AbortError" },
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "runShell() runs the command as another user (needs root)",
  ignore: !isRoot,
  fn: async () => {
    const result = await runShell('id -un; echo "$HOME $USER $LOGNAME $SLEEPINGD_SERVICE"', {
      user: "nobody",
      env: { SLEEPINGD_SERVICE: "web" },
      timeout: 5,
    });
    assert.equal(result.code, 0, result.stderrTail);
    const home = (await runShell("getent passwd nobody | cut -d: -f6")).stdout.trim();
    assert.equal(result.stdout, `nobody\n${home} nobody nobody web\n`);
  },
});

Deno.test("runShell() kills a command run as another user with its group (needs root)", {
  ignore: !isRoot,
}, async () => {
  const result = await runShell("sleep 1000 & echo $!; wait", { user: "nobody", timeout: 0.3 });
  const grandchild = Number(firstLine(result.stdout));
  try {
    assert.equal(result.code, 124);
    assert.ok(grandchild > 1);
    assert.equal(isAlive(grandchild), false, `grandchild ${grandchild} is dead`);
  } finally {
    killGroup(result.pid);
  }
});

Deno.test("runShell() refuses a user that does not exist", async () => {
  await assert.rejects(runShell("true", { user: "no-such-user-sleepingd" }), {
    name: "Error",
    message: 'Cannot run command as user "no-such-user-sleepingd": no such user',
  });
});

Deno.test("runShell() refuses to switch users when not root", async () => {
  const message = (uid: number | string | null) =>
    `Cannot run command as user "root": sleepingd must run as root to switch users ` +
    `(running as uid ${uid})`;
  if (!isRoot) {
    await assert.rejects(runShell("true", { user: "root" }), { message: message(Deno.uid()) });
    return;
  }
  // As root, ask the same of a child running as nobody (its own DENO_DIR: root's is private).
  const denoDir = await Deno.makeTempDir({ prefix: "sleepingd-nobody-" });
  try {
    await Deno.chmod(denoDir, 0o777);
    const module = new URL("../src/process/run_shell.ts", import.meta.url).href;
    const script = `import { runShell } from "${module}";
try { await runShell("true", { user: "root" }); console.log("no error"); }
catch (error) { console.log(error.message); }`;
    const { code, stdout, stderr } = await new Deno.Command("setpriv", {
      args: [
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--",
        Deno.execPath(),
        "eval",
        "--no-config",
        script,
      ],
      env: { DENO_DIR: denoDir, HOME: denoDir, NO_COLOR: "1" },
      stdin: "null",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const nobody = new TextDecoder().decode(
      (await new Deno.Command("id", { args: ["-u", "nobody"] }).output()).stdout,
    ).trim();
    assert.equal(new TextDecoder().decode(stdout).trim(), message(nobody));
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
});

Deno.test("runShell() rejects a negative timeout", async () => {
  await assert.rejects(runShell("true", { timeout: -1 }), {
    name: "RangeError",
    message: 'Cannot run command as "timeout" must be a number >= 0: current value is -1',
  });
});

Deno.test("firstLine() returns the first non-blank line without surrounding whitespace", () => {
  assert.equal(firstLine("\n  127.0.0.1 8080\r\nstarted\n"), "127.0.0.1 8080");
  assert.equal(firstLine("10.0.0.2 22"), "10.0.0.2 22");
  assert.equal(firstLine(" \n\n"), "");
});

Deno.test("describeResult() sums up how a command ended in one line", () => {
  const base: ShellResult = {
    code: 0,
    stdout: "",
    stdoutBytes: 0,
    stderrTail: "",
    stderrBytes: 0,
    timedOut: false,
    aborted: false,
    durationMs: 200,
    pid: 1234,
    outputLeftOpen: false,
  };
  assert.equal(describeResult(base), "exit 0 after 0.2s");
  assert.equal(
    describeResult({ ...base, code: 1, stderrTail: "first\nnc: Address already in use\n\n" }),
    "exit 1 after 0.2s: nc: Address already in use",
  );
  assert.equal(
    describeResult({ ...base, code: 124, timedOut: true, durationMs: 5012 }),
    "timed out after 5.0s",
  );
  assert.equal(describeResult({ ...base, code: 143, aborted: true }), "aborted after 0.2s");
  assert.equal(describeResult({ ...base, code: 143 }), "exit 143 (killed by SIGTERM) after 0.2s");
  assert.equal(describeResult({ ...base, code: 137 }), "exit 137 (killed by SIGKILL) after 0.2s");
  assert.equal(describeResult({ ...base, code: 130 }), "exit 130 (killed by SIGINT) after 0.2s");
  assert.equal(describeResult({ ...base, code: 255 }), "exit 255 after 0.2s");
});

Deno.test("describeResult() names the signal that killed a real command", async () => {
  const result = await runShell("sleep 30 & kill -TERM $!; wait $!");
  assert.equal(result.code, 143);
  assert.match(describeResult(result), /^exit 143 \(killed by SIGTERM\) after /);
});
