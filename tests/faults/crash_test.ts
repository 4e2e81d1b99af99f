/**
 * kill -9 of the daemon at each point of the life cycle — in CHECK_CMD,
 * START_CMD, READY_CMD, the readiness wait, awake, IDLE_CMD and STOP_CMD —
 * then a new daemon on the same VARRUN_PATH. Each point is reached through a
 * gate: the command (or the backend's listener) waits for a file the test
 * creates only after the kill, so the kill lands in that phase, whatever the
 * timing. Then the documented recovery is checked (docs/ARCHITECTURE.md,
 * "Crash recovery"): every command the killed daemon left is gone, `status`
 * tells the truth about the backend, and the backend ends stopped by someone.
 */
import assert from "node:assert/strict";
import { type Daemon, startDaemon } from "../_daemon.ts";
import { exists, runCli, waitFor } from "../_helpers.ts";
import { freePort, isAlive } from "../_net.ts";
import { exchange, stopEchoBackend } from "../_service.ts";
import { killIfAlive, liveInGroup, readNumber } from "./_faults.ts";

const ECHO_SERVER = new URL("../testdata/echo_server.ts", import.meta.url).pathname;

/** Where the kill lands. */
type Phase = "check" | "start" | "ready" | "listen" | "awake" | "idle" | "stop";

/** A command's gate: held once when the test created `hold-NAME`, until it creates `gate`. */
function gate(dir: string, name: string): string {
  return `echo $$ >> '${dir}/pids-'"$TEST_DAEMON"
if [ -f '${dir}/hold-${name}' ]; then
  rm -f '${dir}/hold-${name}'; touch '${dir}/at-${name}'
  while [ ! -f '${dir}/gate' ]; do sleep 0.01; done
fi`;
}

/**
 * A service whose every command can be held at its gate. START_CMD starts
 * the echo backend in a subshell that writes its pid first (so STOP_CMD
 * finds it even before it listens) and, held at `hold-listen`, waits for the
 * gate before it listens. IDLE_CMD says busy until `let-idle` exists.
 */
function serviceText(dir: string, backend: number, phase: Phase, check: boolean): string {
  const lines = [
    `IDLE_TIME=0.3`,
    `IDLE_CHECK_INTERVAL=0.1`,
    `START_CMD='${gate(dir, "start")}
echo start >> '${dir}/starts'
delay=; if [ -f '${dir}/hold-listen' ]; then rm -f '${dir}/hold-listen'; delay=1; fi
(
  echo "$BASHPID" > '${dir}/backend.pid'
  if [ -n "$delay" ]; then
    touch '${dir}/at-listen'; while [ ! -f '${dir}/gate' ]; do sleep 0.01; done
  fi
  exec '${Deno.execPath()}' run -A '${ECHO_SERVER}' ${backend} '${dir}/backend.pid'
) > /dev/null 2>&1 &
echo "127.0.0.1 ${backend}"'`,
    `IDLE_CMD='${gate(dir, "idle")}
[ -f '${dir}/let-idle' ]'`,
    `STOP_CMD='${gate(dir, "stop")}
${stopEchoBackend(dir)}'`,
  ];
  // The readiness wait is the one after START_CMD when there is no READY_CMD to run.
  if (phase !== "listen") lines.push(`READY_CMD='${gate(dir, "ready")}'`);
  if (check) {
    lines.push(`CHECK_CMD='${gate(dir, "check")}
[ -f '${dir}/backend.pid' ] && kill -0 "$(cat '${dir}/backend.pid')" && echo "127.0.0.1 ${backend}"'`);
  }
  return lines.join("\n") + "\n";
}

/** What a service's status says. */
async function statusOf(file: string): Promise<{ state: string; target: string | null }> {
  const { code, stdout, stderr } = await runCli(["-f", file, "status", "--json"]);
  assert.equal(code, 0, stderr);
  return JSON.parse(stdout).services[0];
}

/** The pids each daemon's commands wrote (`TEST_DAEMON` tells them which daemon runs them). */
function commandPids(dir: string, daemon: number): number[] {
  try {
    return Deno.readTextFileSync(`${dir}/pids-${daemon}`).split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Drives the first daemon into `phase` and waits, through the gates, until it is there. */
async function reach(phase: Phase, dir: string, port: number, daemon: Daemon, check: boolean) {
  // At start, recovery asks CHECK_CMD whether the backend is up: that run is no phase of a wake.
  if (check) await daemon.waitForLine(/\[echo\] CHECK_CMD exit 1/);
  const held = (name: string) => Deno.writeTextFile(`${dir}/hold-${name}`, "");
  const at = (name: string) =>
    waitFor(`the daemon to be in ${name}`, () => exists(`${dir}/at-${name}`));
  if (["check", "start", "ready", "listen"].includes(phase)) {
    await held(phase);
    const client = await Deno.connect({ hostname: "127.0.0.1", port });
    await at(phase);
    if (phase === "listen") await daemon.waitForLine(/\[echo\] START_CMD exit 0/);
    return client;
  }
  if (phase === "idle") await held("idle");
  assert.equal(await exchange(port, "awake"), "awake");
  if (phase === "idle") await at("idle");
  if (phase === "stop") {
    await held("stop");
    await Deno.writeTextFile(`${dir}/let-idle`, "");
    await at("stop");
    await Deno.remove(`${dir}/let-idle`);
  }
  return undefined;
}

/** The command each held phase leaves running at the kill, as recovery names it. */
const LEFT: Partial<Record<Phase, string>> = {
  check: "CHECK_CMD",
  start: "START_CMD",
  ready: "READY_CMD",
  idle: "IDLE_CMD",
  stop: "STOP_CMD",
};

/** The state the next daemon settles in: the backend adopted, or stopped (or never started). */
const SETTLES: Record<Phase, "asleep" | "awake"> = {
  check: "asleep",
  start: "asleep",
  ready: "asleep",
  listen: "asleep",
  awake: "awake",
  idle: "awake",
  stop: "asleep",
};

async function crashAt(phase: Phase, check: boolean) {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-crash-" });
  const port = freePort();
  let backend = freePort();
  while (backend === port) backend = freePort(); // the kernel may hand the same port out twice
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `VARRUN_PATH=${dir}/run\nSTATE_PATH=${dir}/state\n[echo]\nPORT=${port}\n` +
      `LISTEN_ADDRESS=127.0.0.1\n${serviceText(dir, backend, phase, check)}`,
  );
  let second: Daemon | undefined;
  try {
    const first = await startDaemon(file, { env: { TEST_DAEMON: "1" } });
    const client = await reach(phase, dir, port, first, check);
    Deno.kill(first.pid, "SIGKILL");
    await first.stop();
    client?.close();

    second = await startDaemon(file, { env: { TEST_DAEMON: "2" } });
    await Deno.writeTextFile(`${dir}/gate`, ""); // what the killed daemon left may go on now
    await waitFor(
      "every command of the killed daemon to be gone",
      () => {
        const backendPid = readNumber(`${dir}/backend.pid`); // START_CMD's group holds it too
        return commandPids(dir, 1).every((pid) =>
          liveInGroup(pid).every((left) => left.pid === backendPid)
        );
      },
    );

    // Settled (nothing under way), the status tells the truth about the backend.
    let status = await statusOf(file);
    await waitFor("the next daemon to settle", async () => {
      status = await statusOf(file);
      return status.state === "asleep" || status.state === "awake";
    });
    const pid = readNumber(`${dir}/backend.pid`);
    const running = pid !== undefined && isAlive(pid);
    assert.equal(
      status.state,
      running ? "awake" : "asleep",
      `status says ${status.state}, the backend ${running ? "runs" : "does not run"}; ` +
        `the killed daemon's log:\n${first.lines.join("\n")}\nthe next one's:\n` +
        second.lines.join("\n"),
    );
    assert.equal(status.state, SETTLES[phase]);
    if (running) assert.equal(status.target, `127.0.0.1:${backend}`);

    // What it left running was ended, not left to end on its own.
    if (LEFT[phase]) {
      await second.waitForLine(new RegExp(`ending ${LEFT[phase]} \\(pid \\d+\\) left by the last`));
    }
    // Nothing left that nobody stops: once idle, an adopted backend is stopped too.
    await Deno.writeTextFile(`${dir}/let-idle`, "");
    await waitFor("the backend to be stopped", async () => {
      const pid = readNumber(`${dir}/backend.pid`);
      return (pid === undefined || !isAlive(pid)) && (await statusOf(file)).state === "asleep";
    });
    assert.equal(await second.stop(), 0);
    assert.ok(!exists(`${dir}/run/state.json`), "a clean shutdown leaves no state behind");
    for (const pid of commandPids(dir, 2)) assert.deepEqual(liveInGroup(pid), [], `group ${pid}`);
  } finally {
    await second?.stop();
    killIfAlive(readNumber(`${dir}/backend.pid`));
    for (const pid of [...commandPids(dir, 1), ...commandPids(dir, 2)]) killIfAlive(pid);
    await Deno.remove(dir, { recursive: true });
  }
}

const CASES: { phase: Phase; check: boolean }[] = [
  { phase: "check", check: true },
  { phase: "start", check: false },
  { phase: "ready", check: false },
  { phase: "ready", check: true },
  { phase: "listen", check: false },
  { phase: "awake", check: false },
  { phase: "awake", check: true },
  { phase: "idle", check: false },
  { phase: "stop", check: false },
  { phase: "stop", check: true },
];

for (const { phase, check } of CASES) {
  const where = phase === "listen"
    ? "the readiness wait"
    : phase === "awake"
    ? "awake"
    : `${LEFT[phase]}`;
  Deno.test(
    `kill -9 in ${where}${
      check ? " (with CHECK_CMD)" : ""
    }: the next daemon leaves nothing running unstopped, and status tells the truth`,
    () => crashAt(phase, check),
  );
}
