/**
 * `sleepingd status`: what the daemon and each service are doing.
 *
 * @module
 */

import { NotRunningError, sendRequest } from "../control/protocol.ts";
import { formatStatus } from "../control/status.ts";
import { locateDaemon, notRunning } from "./daemon_files.ts";
import type { Command } from "./options.ts";

/** Exit code when the daemon is not running (as LSB init scripts' `status`). */
const NOT_RUNNING = 3;

/** `sleepingd status [--json]`. */
export const statusCommand: Command = {
  summary: "show each service: running or not, state, target, connections, wakes",
  help: `Usage: sleepingd [-f FILE]... status [--json]

Asks the daemon (through VARRUN_PATH/sleepingd.sock) for each service's state
(asleep, starting, awake, stopping), target, open and total connections,
wakes and last activity. Prints the original's "NAME (port N) running" line
per service, or "NAME (port N) not running" for the configured services when
no daemon runs.

Exit codes: 0 running, 3 not running, 1 error (the configuration files cannot
be read, or have errors and no daemon answers).

Options:
  --json  write the status as one JSON object on stdout, and nothing else`,
  flags: { json: { type: "boolean" } },
  async run(options) {
    const json = options.flags.json === true;
    const files = await locateDaemon(options);
    const { config, dir } = files;
    try {
      const response = await sendRequest(dir.socket, { command: "status" });
      if (!response.ok) throw new Error(response.error);
      console.log(
        json
          ? JSON.stringify({ running: true, ...response.status })
          : formatStatus(response.status),
      );
      return 0;
    } catch (error) {
      if (!(error instanceof NotRunningError)) throw error;
      const failed = notRunning(files);
      if (failed !== undefined) return failed;
      const services = (config?.services ?? []).map(({ name, port }) => ({ name, port }));
      if (json) {
        console.log(JSON.stringify({ running: false, services }));
      } else if (services.length === 0) {
        console.log("sleepingd is not running");
      } else {
        for (const { name, port } of services) console.log(`${name} (port ${port}) not running`);
      }
      return NOT_RUNNING;
    }
  },
};
