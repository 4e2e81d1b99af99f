/**
 * Runs the real `sleepingd run` as a child process for end-to-end tests and
 * reads its log lines as they come.
 *
 * @module
 */

import { isAlive } from "../src/process/proc_stat.ts";
import { MAIN, REPO } from "./_helpers.ts";

/** A running daemon: its log so far, and ways to wait for a line and to stop it. */
export interface Daemon {
  /** The daemon's pid. */
  pid: number;
  /** Every stderr line so far. */
  lines: string[];
  /** Waits (bounded) for a log line matching `pattern`, at or after line `from`. */
  waitForLine(pattern: RegExp, from?: number, seconds?: number): Promise<string>;
  /** Sends SIGTERM and returns the exit code; later calls return the same code. */
  stop(): Promise<number>;
}

/** How to start the daemon. */
export interface DaemonOptions {
  /** Variables added to the test's environment. */
  env?: Record<string, string>;
  /** Arguments after `run`, e.g. `["--debug"]`. */
  args?: string[];
  /** Runs it under `ulimit -n` with this many file descriptors. */
  fdLimit?: number;
  /** Runs it with this soft limit of file descriptors only (`ulimit -Sn`): it may raise it. */
  softFdLimit?: number;
  /** Runs it in this network namespace (`ip netns exec NETNS`), as a test host of tests/_netns.ts. */
  netns?: string;
  /** Shell lines run before the daemon, in the shell that becomes it, e.g. `exec 7<FILE`. */
  prelude?: string;
  /** Deno's arguments that run the program, e.g. a bundle's (default: `run -A src/main.ts`). */
  program?: string[];
}

/**
 * Starts `sleepingd -f CONFIG run ARGS...` in the repository root, with a
 * VARRUN_PATH of its own, and waits until every service is listening.
 */
export async function startDaemon(
  configFile: string,
  options: DaemonOptions = {},
): Promise<Daemon> {
  // A first file gives the daemon its own VARRUN_PATH and STATE_PATH, so that
  // daemons of tests never meet; the test's file comes second and may override them.
  const runDir = await Deno.makeTempDir({ prefix: "sleepingd-run-" });
  const isolation = `${runDir}/isolation.conf`;
  await Deno.writeTextFile(isolation, `VARRUN_PATH=${runDir}\nSTATE_PATH=${runDir}/state\n`);
  const argv = [
    Deno.execPath(),
    ...(options.program ?? ["run", "-A", MAIN]),
    ...["-f", isolation, "-f", configFile, "run", ...(options.args ?? [])],
  ];
  const ulimit = options.fdLimit !== undefined
    ? `ulimit -n ${options.fdLimit}`
    : options.softFdLimit !== undefined
    ? `ulimit -Sn ${options.softFdLimit}`
    : undefined;
  const prelude = [ulimit, options.prelude].filter(Boolean).join(" && ");
  const wrapped = prelude === ""
    ? argv
    : ["bash", "-c", `${prelude} && exec "$@"`, "bash", ...argv];
  const [program, ...args] = options.netns === undefined
    ? wrapped
    : ["ip", "netns", "exec", options.netns, ...wrapped];
  const child = new Deno.Command(program, {
    args,
    cwd: REPO,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let notify = () => {};
  const reading = (async () => {
    let pending = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      const parts = pending.split("\n");
      pending = parts.pop()!;
      lines.push(...parts);
      notify();
    }
    if (pending) lines.push(pending);
    notify();
  })();
  let exited = false;
  const status = child.status.then((status) => {
    exited = true;
    notify();
    return status;
  });

  const waitForLine = async (pattern: RegExp, from = 0, seconds = 30): Promise<string> => {
    const deadline = Date.now() + seconds * 1000;
    while (true) {
      const found = lines.slice(from).find((line) => pattern.test(line));
      if (found) return found;
      if (exited) {
        await reading;
        throw new Error(`sleepingd exited before logging ${pattern}:\n${lines.join("\n")}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`Timed out after ${seconds}s waiting for ${pattern}:\n${lines.join("\n")}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        notify = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };

  let stopped: Promise<number> | undefined;
  const daemon: Daemon = {
    pid: child.pid,
    lines,
    waitForLine,
    stop() {
      stopped ??= (async () => {
        if (!exited) {
          try {
            child.kill("SIGTERM");
          } catch (error) {
            if (isAlive(child.pid)) throw error; // else it has just exited on its own
          }
        }
        const { code } = await status;
        await reading;
        await Deno.remove(runDir, { recursive: true });
        return code;
      })();
      return stopped;
    },
  };
  try {
    await waitForLine(/is running \d+ service/);
  } catch (error) {
    await daemon.stop();
    throw error;
  }
  return daemon;
}

/**
 * `text` (a recipe's configuration) with the line matching `pattern`
 * replaced by `line`; fails when the recipe no longer has such a line, so a
 * test never runs a recipe it did not mean to change.
 */
export function replaceLine(text: string, pattern: RegExp, line: string): string {
  if (!pattern.test(text)) throw new Error(`The recipe no longer has a line matching ${pattern}`);
  pattern.lastIndex = 0;
  return text.replace(pattern, line);
}
