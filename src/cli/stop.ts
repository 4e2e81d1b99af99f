/**
 * `sleepingd stop`: asks the daemon to shut down gracefully and waits for it.
 *
 * @module
 */

import { NotRunningError, sendRequest } from "../control/protocol.ts";
import { runningPid } from "../control/run_dir.ts";
import { isAlive } from "../process/proc_stat.ts";
import { sleep } from "../timers.ts";
import { locateDaemon, notRunning } from "./daemon_files.ts";
import type { Command } from "./options.ts";

/** Longest `stop` waits beyond SHUTDOWN_GRACE for the STOP_CMDs to finish. */
const STOP_COMMANDS_MS = 120_000;

/** `sleepingd stop`. */
export const stopCommand: Command = {
  summary: "stop the daemon gracefully and wait for it",
  help: `Usage: sleepingd [-f FILE]... stop

Asks the daemon to shut down: it stops accepting, lets open connections finish
within SHUTDOWN_GRACE seconds, runs STOP_CMD for every awake service, and
exits. Waits for it, then prints "NAME (port N) stopped" for each service.
When no daemon runs it says so and exits 0; when the configuration files
cannot be read, or have errors, it prints them and exits 1 instead.`,
  async run(options) {
    const files = await locateDaemon(options);
    const { config, dir } = files;
    let services: { name: string; port: number }[] = [];
    let pid = runningPid(dir.pidfile);
    try {
      const response = await sendRequest(dir.socket, { command: "stop" });
      if (!response.ok) throw new Error(response.error);
      services = response.status.services;
      pid = response.status.pid;
    } catch (error) {
      if (!(error instanceof NotRunningError)) throw error;
      if (pid === undefined) {
        const failed = notRunning(files);
        if (failed !== undefined) return failed;
        console.log("sleepingd is not running");
        return 0;
      }
      // Alive but not answering: ask with a signal instead.
      Deno.kill(pid, "SIGTERM");
    }
    const grace = config?.global.shutdownGrace ?? 10;
    const deadline = Date.now() + grace * 1000 + STOP_COMMANDS_MS;
    while (isAlive(pid!)) {
      if (Date.now() > deadline) {
        console.error(`sleepingd: error: the daemon (pid ${pid}) is still running`);
        return 1;
      }
      await sleep(50);
    }
    for (const { name, port } of services) console.log(`${name} (port ${port}) stopped`);
    return 0;
  },
};
