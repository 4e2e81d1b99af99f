/**
 * `sleepingd reload`: makes the daemon re-read its configuration.
 *
 * @module
 */

import { NotRunningError, sendRequest } from "../control/protocol.ts";
import { locateDaemon } from "./daemon_files.ts";
import type { Command } from "./options.ts";
import { printError, printWarning } from "./report.ts";

/** `sleepingd reload`. */
export const reloadCommand: Command = {
  summary: "make the daemon re-read its configuration (like SIGHUP)",
  help: `Usage: sleepingd [-f FILE]... reload [--json]

Asks the daemon to re-read the configuration files it was started with. The
whole new configuration is checked first: if it has an error, the daemon keeps
running the old one and the error (FILE:LINE: message) is printed here, exit 1.
Otherwise unchanged services keep their state and connections, changed ones
take their new settings, removed ones drain and stop, added ones listen.
Every warning the daemon gives about the reload is printed here too (an
unknown key, a key that takes effect only at a restart), one line each.
It prints what changed on one line; a list of more than 10 services is
counted there (unchanged: 1,000 services).

Options:
  --json  write what changed as one JSON object on stdout, every name listed:
          files, added, removed, changed, unchanged (errors still go to stderr)`,
  flags: { json: { type: "boolean" } },
  async run(options) {
    const { dir, error } = await locateDaemon(options);
    let response;
    try {
      response = await sendRequest(dir.socket, { command: "reload" });
    } catch (notRunning) {
      // No daemon to ask: the errors of the files here are all there is to say.
      if (notRunning instanceof NotRunningError && error !== undefined) printError(error);
      throw notRunning;
    }
    for (const warning of response.warnings ?? []) printWarning(warning);
    if (!response.ok) {
      for (const line of response.error.split("\n")) console.error(`sleepingd: error: ${line}`);
      console.error("sleepingd: the daemon keeps running the configuration it had");
      return 1;
    }
    if (options.flags.json === true) {
      console.log(JSON.stringify({ files: response.status.configFiles, ...response.reload }));
    } else {
      console.log(response.message ?? "reloaded");
    }
    return 0;
  },
};
