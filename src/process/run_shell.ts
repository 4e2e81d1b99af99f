/**
 * Runs the shell commands of the configuration (`CHECK_CMD`, `START_CMD`, ...).
 *
 * A command string goes untouched to `bash -c` (`sh -c` where there is no bash), in its own
 * process group, with stdin from /dev/null and stdout/stderr read while it runs. A timeout or
 * an abort sends TERM to the whole group and KILL after a grace. Client data only ever reaches
 * a command through its environment, never through the command text.
 *
 * @module
 */

import { constants } from "node:os";
import { sleep, startTimer, within } from "../timers.ts";
import { drain, Head, Tail } from "./output.ts";
import { groupHasLiveProcess, signalGroup } from "./process_group.ts";
import { asUser } from "./run_as.ts";
import { findExecutable } from "./which.ts";

/** Options for {@linkcode runShell}. */
export interface ShellOptions {
  /** Seconds before the command is killed; `undefined` or 0 means no limit. */
  timeout?: number;
  /**
   * Extra environment variables, added to (and overriding) the daemon's environment, or,
   * with `user`, to the user's own.
   */
  env?: Record<string, string>;
  /**
   * Run as this user (name or uid), with a clean environment (PATH, LANG, HOME, USER,
   * LOGNAME, `passEnv`'s variables and `env`) and its home as working folder; switching to
   * another user needs root.
   */
  user?: string;
  /** With `user`: names of the daemon's environment variables the command gets too. */
  passEnv?: readonly string[];
  /**
   * Aborting kills the command the way a timeout does, but the result has `aborted: true`
   * and keeps the exit code the command died with (usually 143) instead of 124.
   */
  signal?: AbortSignal;
  /**
   * Milliseconds between TERM and KILL when the command is killed.
   * @default 2000
   */
  killGraceMs?: number;
  /** Told the command's pid (its process group's id too) as soon as it runs. */
  onSpawn?: (pid: number) => void;
}

/** What a command did, from {@linkcode runShell}. */
export interface ShellResult {
  /** Exit code: 124 on timeout, 128+N when killed by signal N (as a shell reports it). */
  code: number;
  /** The first 64 KiB of stdout, decoded as UTF-8 (invalid bytes become U+FFFD). */
  stdout: string;
  /** Total stdout bytes read, including those past the first 64 KiB. */
  stdoutBytes: number;
  /** The last 8 KiB of stderr, decoded as UTF-8. */
  stderrTail: string;
  /** Total stderr bytes read, including those before the last 8 KiB. */
  stderrBytes: number;
  /** The command ran past `timeout` and was killed; `code` is then 124. */
  timedOut: boolean;
  /** The command was killed because `signal` was aborted. */
  aborted: boolean;
  /** Milliseconds from the start to the exit of the command. */
  durationMs: number;
  /** PID of the command, which is also its process group ID. */
  pid: number;
  /**
   * A process the command left behind (a server started with `&`) still holds its stdout or
   * stderr. That output is read and discarded for as long as the process lives, so the
   * process neither blocks on a full pipe nor dies of SIGPIPE; redirecting the background
   * process's output (`server >/dev/null 2>&1 &`) avoids it.
   */
  outputLeftOpen: boolean;
}

/** Bytes of stdout kept: enough for any target line, bounded for chatty commands. */
const STDOUT_LIMIT = 64 * 1024;
/** Bytes of stderr kept for the failure log line (as dax's `errorTail()`). */
const STDERR_TAIL = 8 * 1024;
/**
 * Milliseconds to wait for EOF on stdout/stderr after the command exited. A background
 * process that inherited the pipes keeps them open; past this wait we return without it.
 */
const OUTPUT_GRACE_MS = 150;
/** Milliseconds between checks that a killed process group is gone. */
const GROUP_POLL_MS = 20;
/** Longest wait, after the KILL, for the killed processes to be gone (KILL cannot be ignored). */
const KILL_SETTLE_MS = 1000;

/**
 * Runs `command` with `bash -c` in its own process group and reports how it ended.
 *
 * stdout and stderr are read while the command runs, so any amount of output is fine.
 * Processes the command leaves running after a normal exit (servers started with `&`) are
 * not touched. On timeout or abort, the whole process group gets TERM, then KILL after
 * `killGraceMs` if any of it is still alive.
 *
 * @param command The command text, passed to the shell untouched.
 * @param options Timeout, extra environment, user (and the variables it gets), abort signal,
 * kill grace.
 * @returns The exit code, captured output and how the command ended. A failing command
 * resolves too: check `code`.
 * @throws {RangeError} If `timeout` or `killGraceMs` is negative or not a number.
 * @throws {Error} If `user` does not exist or cannot be switched to.
 * @throws If `signal` is already aborted (its reason); the command is then not started.
 *
 * @example Run a start command with a client's address in the environment
 * ```ts
 * const result = await runShell("echo \"$SLEEPINGD_CLIENT_ADDRESS\"", {
 *   timeout: 5,
 *   env: { SLEEPINGD_CLIENT_ADDRESS: "192.0.2.7" },
 * });
 * if (result.code !== 0) console.error(describeResult(result));
 * ```
 */
export async function runShell(command: string, options: ShellOptions = {}): Promise<ShellResult> {
  const { timeout = 0, env = {}, user, passEnv, signal, killGraceMs = 2000, onSpawn } = options;
  checkDuration("timeout", timeout);
  checkDuration("killGraceMs", killGraceMs);
  const shell = [findShell(), "-c", command];
  const as = user === undefined ? undefined : await asUser(user, shell, passEnv);
  const argv = as?.argv ?? shell;
  signal?.throwIfAborted();

  // Its own process group (pgid = pid), so that -pid reaches grandchildren too. `setsid`
  // makes one and execs the command in the same process; Deno's `detached` makes one too, but
  // spawns with fork(), which costs milliseconds in a daemon of this size (every wake runs a
  // command): without it, the spawn is a vfork (docs/ARCHITECTURE.md, "Commands").
  const setsid = findSetsid();
  const [program, ...args] = setsid ? [setsid, ...argv] : argv;
  const child = new Deno.Command(program, {
    args,
    env: { ...as?.env, ...env },
    clearEnv: as !== undefined,
    cwd: as?.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: setsid === undefined,
  }).spawn();
  onSpawn?.(child.pid);
  const started = performance.now();
  const stdout = new Head(STDOUT_LIMIT);
  const stderr = new Tail(STDERR_TAIL);
  const outputDone = Promise.all([drain(child.stdout, stdout), drain(child.stderr, stderr)]);

  let exited = false;
  let killedBy: "timeout" | "abort" | undefined;
  let escalatedAt: number | undefined;
  let cancelKillTimer = () => {};
  const kill = (why: "timeout" | "abort") => {
    if (exited || killedBy) return;
    killedBy = why;
    signalGroup(child.pid, "SIGTERM");
    cancelKillTimer = startTimer(killGraceMs, () => {
      escalatedAt = performance.now();
      signalGroup(child.pid, "SIGKILL");
    });
  };
  const onAbort = () => kill("abort");
  const cancelTimeout = timeout > 0 ? startTimer(timeout * 1000, () => kill("timeout")) : () => {};
  signal?.addEventListener("abort", onAbort, { once: true });

  try {
    const status = await child.status;
    exited = true;
    const durationMs = Math.round(performance.now() - started);
    if (killedBy) {
      // The leader is gone; give the rest of its group until the KILL to go too, and after
      // the KILL a moment to finish dying, so that nothing of it is alive when we return.
      while (await groupHasLiveProcess(child.pid)) {
        if (escalatedAt !== undefined && performance.now() - escalatedAt > KILL_SETTLE_MS) break;
        await sleep(GROUP_POLL_MS);
      }
      cancelKillTimer(); // the group is empty: its ID may be reused, never signal it again
    }
    const outputClosed = await within(outputDone, OUTPUT_GRACE_MS);
    return {
      code: killedBy === "timeout" ? 124 : status.code,
      stdout: stdout.text(),
      stdoutBytes: stdout.total,
      stderrTail: stderr.text(),
      stderrBytes: stderr.total,
      timedOut: killedBy === "timeout",
      aborted: killedBy === "abort",
      durationMs,
      pid: child.pid,
      outputLeftOpen: !outputClosed,
    };
  } finally {
    cancelTimeout();
    cancelKillTimer();
    signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * Returns the first line of `text` that is not blank, without surrounding whitespace; "" if
 * there is none. For reading the `IP PORT` target that START_CMD and CHECK_CMD print.
 *
 * @example
 * ```ts
 * firstLine("\n 127.0.0.1 8080\r\nstarted\n"); // "127.0.0.1 8080"
 * ```
 */
export function firstLine(text: string): string {
  return text.split("\n").map((line) => line.trim()).find((line) => line !== "") ?? "";
}

/** Signal names by number (`15` → `SIGTERM`), as this system numbers them. */
const SIGNAL_NAMES = new Map(
  Object.entries(constants.signals).map(([name, number]) => [number as number, name]),
);

/**
 * Sums up a result in one line for the log: how it ended, after how long, and the last line
 * of stderr if there is one. An exit code above 128 is said to be the signal it stands for,
 * as the shell reports a command a signal killed.
 *
 * @example
 * ```ts
 * describeResult(result); // "exit 1 after 0.2s: nc: Address already in use"
 * describeResult(result); // "exit 143 (killed by SIGTERM) after 3.0s"
 * describeResult(result); // "timed out after 5.0s"
 * ```
 */
export function describeResult(result: ShellResult): string {
  const after = `after ${(result.durationMs / 1000).toFixed(1)}s`;
  const signal = result.code > 128 ? SIGNAL_NAMES.get(result.code - 128) : undefined;
  const ending = result.timedOut
    ? `timed out ${after}`
    : result.aborted
    ? `aborted ${after}`
    : `exit ${result.code}${signal ? ` (killed by ${signal})` : ""} ${after}`;
  const lines = result.stderrTail.split("\n").map((line) => line.trim());
  const last = lines.findLast((line) => line !== "") ?? "";
  return last === "" ? ending : `${ending}: ${last.length > 200 ? last.slice(0, 199) + "…" : last}`;
}

/** `bash` as the original ran commands with it; `sh` where there is no bash. */
function findShell(): string {
  return findExecutable("bash") ?? findExecutable("sh") ?? "/bin/sh";
}

/** util-linux `setsid`, looked up once; undefined where there is none. */
let setsidPath: string | undefined | null = null;

function findSetsid(): string | undefined {
  if (setsidPath === null) setsidPath = findExecutable("setsid", ["/usr/bin", "/bin"]);
  return setsidPath;
}

/** Throws a `RangeError` unless `value` is a number of milliseconds or seconds, 0 or more. */
function checkDuration(name: string, value: number): void {
  if (typeof value !== "number" || !(value >= 0)) {
    throw new RangeError(
      `Cannot run command as "${name}" must be a number >= 0: current value is ${value}`,
    );
  }
}
