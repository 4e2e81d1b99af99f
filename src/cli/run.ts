/**
 * `sleepingd run`: the daemon in the foreground (systemd, containers, `deno task dev`).
 *
 * @module
 */

import { loadConfig } from "../config/load.ts";
import { log, setupLogging } from "../log.ts";
import { Supervisor } from "../service/supervisor.ts";
import type { Command } from "./options.ts";

/** Signals that ask the daemon to shut down gracefully. */
const SHUTDOWN_SIGNALS = ["SIGINT", "SIGTERM"] as const;

/** `sleepingd run`: listens for every active service until SIGINT or SIGTERM. */
export const runCommand: Command = {
  summary: "run the daemon in the foreground (logs on stderr)",
  help: `Usage: sleepingd [-f FILE]... [-v|--debug] run

Runs every active service in the foreground: listens on each service's PORT,
wakes the backend with CHECK_CMD/START_CMD when a client connects, forwards
the bytes, and stops it with STOP_CMD when it has been idle for IDLE_TIME.
Logs one line per state change and per connection on stderr.

SIGINT or SIGTERM stop it gracefully: no new connections, open ones get
SHUTDOWN_GRACE seconds to finish, awake backends are stopped, exit 0.`,
  async run(options) {
    const config = await loadConfig(options.configFiles);
    await setupLogging(options.verbosity);
    const logger = log("daemon");
    for (const warning of config.warnings) {
      logger.warn("{file}:{line}: {message}", {
        file: warning.location.file,
        line: warning.location.line,
        message: warning.message,
      });
    }
    if (config.services.length === 0) {
      logger.error("no service is active in {files}", { files: config.files.join(", ") });
      return 1;
    }
    const supervisor = new Supervisor(config);
    supervisor.listen();
    const stopRequested = Promise.withResolvers<string>();
    const onSignal = (signal: string) => () => stopRequested.resolve(signal);
    const handlers = SHUTDOWN_SIGNALS.map((signal) => [signal, onSignal(signal)] as const);
    for (const [signal, handler] of handlers) Deno.addSignalListener(signal, handler);
    logger.info("sleepingd is running {count} service(s)", { count: supervisor.services.length });
    const signal = await stopRequested.promise;
    logger.info("{signal} received: shutting down", { signal });
    await supervisor.shutdown();
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
    logger.info("sleepingd stopped");
    return 0;
  },
};
