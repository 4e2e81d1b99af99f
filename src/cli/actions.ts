/**
 * `sleepingd wake`, `sleep` and `keep-awake`: actions on one service of the
 * running daemon, through its control socket.
 *
 * @module
 */

import type { ServiceAction } from "../control/actions.ts";
import { sendRequest } from "../control/protocol.ts";
import { sleep } from "../timers.ts";
import { parseDuration } from "../config/duration.ts";
import { locateDaemon } from "./daemon_files.ts";
import { type CliOptions, type Command, UsageError } from "./options.ts";

/** How often `wake` asks the daemon how the wake goes, while it waits on a terminal. */
const POLL_MS = 1_000;
/** How often `wake` prints the same step of a wake again, with its time. */
const REPEAT_MS = 5_000;

/**
 * Sends `action` to the daemon and prints its answer. While a wake waits, on
 * a terminal, prints on stderr what it waits for.
 */
async function act(options: CliOptions, action: ServiceAction): Promise<number> {
  const { dir } = await locateDaemon(options);
  const watching = new AbortController();
  if (action.action === "wake" && Deno.stderr.isTerminal()) {
    printProgress(dir.socket, action.service, watching.signal);
  }
  let response;
  try {
    response = await sendRequest(dir.socket, { command: "action", action });
  } finally {
    watching.abort();
  }
  if (!response.ok) {
    console.error(`sleepingd: error: ${response.error}`);
    return 1;
  }
  console.log(response.message);
  return 0;
}

/**
 * Asks the daemon every second what the wake of `name` waits for, and prints
 * it on stderr when the step changes, or every 5 seconds, until `signal`.
 */
async function printProgress(socket: string, name: string, signal: AbortSignal): Promise<void> {
  let printed = { text: "", at: 0 };
  while (!signal.aborted) {
    await sleep(POLL_MS, signal).catch(() => {});
    if (signal.aborted) return;
    let progress: string | null | undefined;
    try {
      const response = await sendRequest(socket, { command: "status" });
      if (response.ok) {
        progress = response.status.services.find((one) => one.name === name)?.wakeProgress;
      }
    } catch {
      continue; // asked again in a second; the wake's own answer says what went wrong
    }
    if (!progress || signal.aborted) continue;
    const step = progress.replace(/\d+ s of|: \d+ s,/g, "");
    if (step === printed.text && Date.now() - printed.at < REPEAT_MS) continue;
    console.error(`sleepingd: waking ${name}: ${progress}`);
    printed = { text: step, at: Date.now() };
  }
}

/** A duration from the command line, in seconds. */
function seconds(text: string): number {
  try {
    return parseDuration(text);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** `sleepingd wake NAME [--for DURATION]`. */
export const wakeCommand: Command = {
  summary: "wake a service now, and wait until it is ready",
  help: `Usage: sleepingd [-f FILE]... wake NAME [--for DURATION]

Wakes the service NAME as a client would, without connecting: its START_CMD
runs (unless it is awake already) and the command returns once the backend is
ready, printing where it is, or exits 1 with the reason the wake failed.
Meanwhile, on a terminal, it prints what the wake waits for every few seconds
(e.g. "waiting for 10.0.0.5:22: 20 s of READY_TIMEOUT 60 s, 1 client held").
With --for, the service is also kept awake that long: no idle stop before.
DURATION: 90s, 30m, 2h, 1h30m, or a number of seconds.

Examples:
  sleepingd wake "VM sleepy"
  sleepingd wake postgres --for 2h`,
  args: ["NAME"],
  flags: { for: { type: "string" } },
  run(options) {
    const duration = options.flags.for;
    return act(options, {
      action: "wake",
      service: options.args[0],
      ...(typeof duration === "string" ? { seconds: seconds(duration) } : {}),
    });
  },
};

/** `sleepingd sleep NAME [--force]`. */
export const sleepCommand: Command = {
  summary: "stop a service's backend now",
  help: `Usage: sleepingd [-f FILE]... sleep NAME [--force]

Stops the backend of the service NAME now, with its STOP_CMD, and ends its
keep-awake. Its open connections first get up to SHUTDOWN_GRACE seconds to
finish and are closed after; with --force they are closed at once. The
service stays configured: the next client wakes it again.`,
  args: ["NAME"],
  flags: { force: { type: "boolean" } },
  run(options) {
    return act(options, {
      action: "sleep",
      service: options.args[0],
      force: options.flags.force === true,
    });
  },
};

/** `sleepingd keep-awake NAME DURATION`. */
export const keepAwakeCommand: Command = {
  summary: "keep a service from idle stops for a while",
  help: `Usage: sleepingd [-f FILE]... keep-awake NAME DURATION

Keeps the service NAME from idle stops for DURATION from now (90s, 30m, 2h,
1h30m, or a number of seconds); 0 ends an earlier keep-awake. It wakes
nothing: a service asleep stays asleep until a client (or sleepingd wake)
wakes it, and is then kept awake until the time is up.`,
  args: ["NAME", "DURATION"],
  run(options) {
    return act(options, {
      action: "keep-awake",
      service: options.args[0],
      seconds: seconds(options.args[1]),
    });
  },
};
