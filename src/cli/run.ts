/**
 * `sleepingd run`: the daemon in the foreground (systemd, containers, `deno task dev`).
 *
 * @module
 */

import { loadConfig } from "../config/load.ts";
import type { Config } from "../config/types.ts";
import { runDaemon } from "../control/daemon.ts";
import { log, type LogFormat, setupLogging } from "../log.ts";
import { type CliOptions, type Command, UsageError } from "./options.ts";

/** `sleepingd run`: listens for every active service until SIGINT, SIGTERM or `sleepingd stop`. */
export const runCommand: Command = {
  summary: "run the daemon in the foreground (logs on stderr)",
  help: `Usage: sleepingd [-f FILE]... [-v|--debug] run [--log-format text|json] [--log-file FILE]

Runs every active service in the foreground: listens on each service's PORT,
wakes the backend with CHECK_CMD/START_CMD when a client connects, forwards
the bytes, and stops it with STOP_CMD when it has been idle for IDLE_TIME.
Logs one line per state change, connection and command on stderr (or
LOG_FILE, rotated past LOG_MAX_SIZE), as text or JSON (LOG_FORMAT).

Writes its pid to VARRUN_PATH/sleepingd.pid and answers sleepingd status,
reload and stop on VARRUN_PATH/sleepingd.sock (owner only). Where VARRUN_PATH
cannot be written (not root), it runs without them and says so.

SIGINT, SIGTERM (also SIGQUIT, SIGPWR) or sleepingd stop shut it down
gracefully: no new connections, open ones get SHUTDOWN_GRACE seconds to
finish, awake backends are stopped with STOP_CMD, exit 0. SIGHUP or sleepingd reload re-read
the configuration; a broken one is refused and the old one keeps running.
SIGUSR1 reopens the log file (after logrotate moved it); SIGUSR2 is ignored.

Options:
  --log-format text|json  how log lines are written (overrides LOG_FORMAT)
  --log-file FILE         append the log to FILE (overrides LOG_FILE)`,
  flags: {
    "log-format": { type: "string" },
    "log-file": { type: "string" },
  },
  async run(options) {
    const config = await loadConfig(options.configFiles);
    const format = logFormat(options, config);
    const logFile = (options.flags["log-file"] as string | undefined) ?? config.global.logFile;
    await setupLogging(options.verbosity, format, logFile, {
      maxBytes: config.global.logMaxSize,
      maxFiles: config.global.logMaxFiles,
    });
    try {
      return await runDaemon(config, options.configFiles);
    } catch (error) {
      // stderr says it too (main prints it); a log file must hold it as well, for `start`
      // points there.
      if (logFile !== undefined) {
        log("daemon").fatal("cannot run: {error}", { error: (error as Error).message });
      }
      throw error;
    }
  },
};

function logFormat(options: CliOptions, config: Config): LogFormat {
  const flag = options.flags["log-format"];
  if (flag === undefined) return config.global.logFormat;
  if (flag !== "text" && flag !== "json") {
    throw new UsageError(`Cannot use --log-format "${flag}": it must be text or json`);
  }
  return flag;
}
