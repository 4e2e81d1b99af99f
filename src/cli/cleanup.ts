/**
 * `sleepingd cleanup`: removes what a daemon left in the kernel after it
 * ended — its nftables table — for systemd's ExecStopPost, which runs it
 * even after a `kill -9`.
 *
 * @module
 */

import { runningPid } from "../control/run_dir.ts";
import { applyScript } from "../kernel/nft.ts";
import { dropTableScript, tableName } from "../kernel/rules.ts";
import { findTool } from "../kernel/tool.ts";
import { locateDaemon } from "./daemon_files.ts";
import type { Command } from "./options.ts";

/** `sleepingd cleanup`. */
export const cleanupCommand: Command = {
  summary: "remove the nftables table a daemon that ended left (FORWARD=kernel)",
  help: `Usage: sleepingd [-f FILE]... cleanup

Removes the nftables table of the daemon whose VARRUN_PATH the configuration
names (inet sleepingd for the default one), so that no rule forwards
connections to a backend once that daemon has ended: the systemd unit runs it
as ExecStopPost, which also runs after a crash or kill -9. A daemon removes
its table itself when it stops, and at start before it listens.

Refuses while a daemon runs there: the table is its own. Without nft, or
when there is no table, there is nothing to do: exit 0.`,
  async run(options) {
    const { dir } = await locateDaemon(options);
    const pid = runningPid(dir.pidfile);
    if (pid !== undefined) {
      console.error(
        `sleepingd: error: a daemon runs in ${dir.path} (pid ${pid}): its table is its own`,
      );
      return 1;
    }
    const table = tableName(dir.path);
    if (findTool("nft") === undefined) {
      console.log(`no nft here: no nftables table to remove`);
      return 0;
    }
    await applyScript(dropTableScript(table));
    console.log(`removed the nftables table inet ${table}, if it was there`);
    return 0;
  },
};
