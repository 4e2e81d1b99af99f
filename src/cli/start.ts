/**
 * `sleepingd start`: runs the daemon in the background, the original's way.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { loadConfig } from "../config/load.ts";
import { sendRequest } from "../control/protocol.ts";
import { createRunDir, runDir, runningPid } from "../control/run_dir.ts";
import { sleep } from "../timers.ts";
import { formatIssue } from "../config/config_error.ts";
import { printWarning } from "./report.ts";
import { DAEMONIZED_ENV } from "../control/daemon.ts";
import type { CliOptions, Command } from "./options.ts";

/** Longest `start` waits for the daemon to listen and answer on its control socket. */
const READY_TIMEOUT_MS = 30_000;

/** `sleepingd start`. */
export const startCommand: Command = {
  summary: "start the daemon in the background",
  help: `Usage: sleepingd [-f FILE]... [-v|--debug] start [--log-format text|json]

Starts "sleepingd run" in the background and returns once every service
listens, printing "NAME (port N) started" for each (or "no service is
active"), then on stderr every warning the daemon gave as it started (an
unknown key, a STATE_PATH it cannot write), one line each. If the daemon
cannot start (e.g. a port in use, a configuration error), it prints why and
exits 1. The log goes to LOG_FILE, by default VARRUN_PATH/sleepingd.log,
rotated past LOG_MAX_SIZE (4 MiB) with LOG_MAX_FILES (2) files kept; SIGUSR1
makes the daemon reopen it. The pid goes to VARRUN_PATH/sleepingd.pid.

A second start while the daemon runs says so and exits 1; a pidfile left by a
daemon that died is replaced.

Options:
  --log-format text|json  how log lines are written (overrides LOG_FORMAT)`,
  flags: { "log-format": { type: "string" } },
  async run(options) {
    const config = await loadConfig(options.configFiles);
    const warned = new Set(config.warnings.map(formatIssue));
    for (const warning of config.warnings) printWarning(warning);
    if (config.services.length === 0) {
      console.log("no service is active");
      return 0;
    }
    const dir = runDir(config.global.varrunPath);
    const running = runningPid(dir.pidfile);
    if (running !== undefined) {
      console.error(`sleepingd: error: sleepingd is already running (pid ${running})`);
      return 1;
    }
    const logFile = config.global.logFile ?? dir.log;
    createRunDir(dir); // for the log file, before the daemon claims it
    const child = new Deno.Command(Deno.execPath(), {
      args: [...selfArgs(), ...daemonArgs(options, logFile)],
      env: { [DAEMONIZED_ENV]: "1" },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      detached: true,
    }).spawn();
    const stderr = new Response(child.stderr).text();
    let exited: Deno.CommandStatus | undefined;
    child.status.then((status) => exited = status);

    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exited) {
        console.error((await stderr).trimEnd());
        console.error(`sleepingd: error: the daemon exited with ${exited.code}; see ${logFile}`);
        return 1;
      }
      try {
        const response = await sendRequest(dir.socket, { command: "status" });
        // Its warnings are there once its start is done: every service listens.
        const { pid, services, warnings } = response.ok ? response.status : {};
        if (pid === child.pid && warnings !== undefined) {
          for (const { name, port } of services!) console.log(`${name} (port ${port}) started`);
          for (const warning of warnings.filter((warning) => !warned.has(warning))) {
            printWarning(warning);
          }
          child.unref();
          return 0;
        }
      } catch {
        // Not listening yet.
      }
      await sleep(50);
    }
    console.error(
      `sleepingd: error: the daemon (pid ${child.pid}) did not answer within ` +
        `${READY_TIMEOUT_MS / 1000}s; see ${logFile}`,
    );
    child.unref();
    return 1;
  },
};

/** The command that runs this same sleepingd: the compiled executable, or deno with main.ts. */
function selfArgs(): string[] {
  const executable = Deno.execPath();
  if (!/(^|\/)deno(\.exe)?$/.test(executable)) return [];
  return ["run", "-A", fileURLToPath(Deno.mainModule)];
}

/** The daemon's arguments: the same files and log level, `run`, and where to log. */
function daemonArgs(options: CliOptions, logFile: string): string[] {
  const args = options.configFiles.flatMap((file) => ["-f", file]);
  if (options.verbosity === "debug") args.push("-v");
  if (options.verbosity === "trace") args.push("--debug");
  args.push("run", "--log-file", logFile);
  const format = options.flags["log-format"];
  if (typeof format === "string") args.push("--log-format", format);
  return args;
}
