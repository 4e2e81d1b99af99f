/**
 * Taking back what a daemon that did not shut down (kill -9, a crash, the
 * OOM killer) left behind, so that no backend stays awake forever with
 * nobody to stop it, and no command runs on with nobody to wait for it
 * (docs/ARCHITECTURE.md, "Crash recovery").
 *
 * @module
 */

import { log } from "../log.ts";
import { formatTarget } from "../net/address.ts";
import { readEnvironVariable, readProcStat } from "../process/proc_stat.ts";
import { terminateGroup } from "../process/process_group.ts";
import { COMMAND_KEY } from "../service/commands.ts";
import type { RunningCommand, Service, ServiceSnapshot } from "../service/service.ts";
import type { SavedState } from "./state_file.ts";

/** How long a leftover command gets between TERM and KILL. */
const LEFTOVER_GRACE_MS = 2_000;

/**
 * For each service, from what the previous daemon saved (if it saved
 * anything) and what CHECK_CMD says:
 * - a stop it left unfinished, or a wake it left after START_CMD ran (the
 *   command may still run, or the backend may be on its way up): the
 *   service goes to stopping at once, the commands it left are ended (their
 *   whole process groups), and STOP_CMD runs, at the saved target;
 * - otherwise the commands it left (CHECK_CMD, READY_CMD, IDLE_CMD) are
 *   ended, and a backend it had awake is adopted as awake, so that its idle
 *   checks begin: with CHECK_CMD, only when it says the backend is up;
 * - whatever was saved, a backend CHECK_CMD says is up is adopted.
 *
 * Call it right after the services listen: a service to clean up leaves
 * asleep at once, so that no client can wake it first. Never throws.
 */
export function recover(
  services: readonly Service[],
  saved: SavedState | undefined,
): Promise<void> {
  return Promise.all(services.map((service) => {
    const before = saved?.services.find((snapshot) => snapshot.name === service.config.name);
    return recoverService(service, before).catch((error) => {
      log("recovery").error("[{service}] cannot recover: {error}", {
        service: service.config.name,
        error,
      });
    });
  })).then(() => {});
}

async function recoverService(service: Service, before: ServiceSnapshot | undefined) {
  const name = service.config.name;
  const leftovers = before?.commands ?? [];
  const endLeftovers = async () => {
    await Promise.all(leftovers.map((command) => endLeftover(name, command)));
  };
  const unfinished = before && unfinishedWork(before);
  if (unfinished) {
    await service.stopAfterCrash(unfinished, before.target, endLeftovers);
    return;
  }
  const ending = endLeftovers();
  const awakeAt = before?.state === "awake" ? before.target : undefined;
  const found = service.config.checkCmd ? await service.findRunningBackend(awakeAt) : awakeAt;
  const how = service.config.checkCmd ? "CHECK_CMD says it is up" : "the last daemon had it awake";
  if (found && service.adopt(found, `adopted ${formatTarget(found)}: ${how}`)) {
    log("recovery").warn(
      "[{service}] adopted the backend at {target} ({how}): its idle checks begin",
      { service: name, target: formatTarget(found), how },
    );
  }
  await ending;
}

/**
/**
 * Why a saved service needs STOP_CMD now, or undefined: a stop under way, or
 * a wake after START_CMD ran (the backend may be on its way up, and nobody
 * else will stop it).
 */
function unfinishedWork(before: ServiceSnapshot): string | undefined {
  if (before.state === "stopping") return "a daemon killed mid-stop left the stop unfinished";
  if (before.state !== "starting" || !before.startRan) return undefined;
  const start = before.commands?.find((command) => command.action === "start");
  return start
    ? `a daemon killed mid-wake left START_CMD (pid ${start.pid}) behind`
    : "a daemon killed mid-wake left the backend starting (START_CMD had ended)";
}

/**
 * Ends the process group of a command a killed daemon left, if that very
 * process still runs: the same pid, start time and run id
 * (`SLEEPINGD_RUN_ID` in the environment it started with), so that a pid
 * reused, or a state file that names another process, never ends anyone
 * else's.
 */
async function endLeftover(name: string, leftover: RunningCommand): Promise<void> {
  const stat = readProcStat(leftover.pid);
  if (stat === undefined || stat.startTime !== leftover.startTime) return; // gone, or pid reused
  const key = COMMAND_KEY[leftover.action] ?? "the command";
  const runId = readEnvironVariable(leftover.pid, "SLEEPINGD_RUN_ID");
  if (leftover.runId === undefined || runId !== leftover.runId) {
    log("recovery").warn(
      "[{service}] left pid {pid} alone: it is not the {key} the last daemon ran (its " +
        "SLEEPINGD_RUN_ID {differs})",
      {
        service: name,
        pid: leftover.pid,
        key,
        differs: leftover.runId === undefined ? "was not saved" : "differs",
      },
    );
    return;
  }
  log("recovery").warn("[{service}] ending {key} (pid {pid}) left by the last daemon", {
    service: name,
    key,
    pid: leftover.pid,
  });
  await terminateGroup(leftover.pid, LEFTOVER_GRACE_MS);
}
