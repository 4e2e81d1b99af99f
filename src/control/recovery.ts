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
import type { RunningCommand, ServiceSnapshot } from "../service/command_runs.ts";
import type { Service } from "../service/service.ts";
import type { SavedState } from "./state_file.ts";

/** How long a leftover command gets between TERM and KILL. */
const LEFTOVER_GRACE_MS = 2_000;
/** The variable that carries each command's run id. */
const RUN_ID = "SLEEPINGD_RUN_ID";

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
 * a wake where START_CMD ran or was about to (the backend may be on its way
 * up, and nobody else will stop it).
 */
function unfinishedWork(before: ServiceSnapshot): string | undefined {
  if (before.state === "stopping") return "a daemon killed mid-stop left the stop unfinished";
  if (before.state !== "starting") return undefined;
  const start = before.commands?.find((command) => command.action === "start");
  if (start?.pid !== undefined) {
    return `a daemon killed mid-wake left START_CMD (pid ${start.pid}) behind`;
  }
  if (start) return "a daemon killed mid-wake as START_CMD began";
  return before.startRan
    ? "a daemon killed mid-wake left the backend starting (START_CMD had ended)"
    : undefined;
}

/**
 * Ends the process groups of a command a killed daemon left: that very
 * process, if it still runs (the same pid, start time and run id:
 * `SLEEPINGD_RUN_ID` in the environment it started with), or, when the
 * daemon died before it could save the pid, whatever carries its run id. So
 * a pid reused, or a state file that names another process, never ends
 * anyone else's.
 */
async function endLeftover(name: string, leftover: RunningCommand): Promise<void> {
  const key = COMMAND_KEY[leftover.action] ?? "a command";
  const groups = leftover.pid === undefined
    ? groupsCarrying(leftover.runId)
    : ownGroup(name, key, leftover);
  for (const group of groups) {
    log("recovery").warn("[{service}] ending {key} (pid {pid}) left by the last daemon", {
      service: name,
      key,
      pid: group,
    });
  }
  await Promise.all(groups.map((group) => terminateGroup(group, LEFTOVER_GRACE_MS)));
}

/** The group of a saved pid, if that very process still runs (one group at most). */
function ownGroup(name: string, key: string, leftover: RunningCommand): number[] {
  const pid = leftover.pid!;
  const stat = readProcStat(pid);
  if (stat === undefined || stat.startTime !== leftover.startTime) return []; // gone, or reused
  if (leftover.runId === undefined || readEnvironVariable(pid, RUN_ID) !== leftover.runId) {
    log("recovery").warn(
      "[{service}] left pid {pid} alone: it is not the {key} the last daemon ran (its " +
        "SLEEPINGD_RUN_ID {differs})",
      {
        service: name,
        pid,
        key,
        differs: leftover.runId === undefined ? "was not saved" : "differs",
      },
    );
    return [];
  }
  return [pid];
}

/** The process groups of the live processes whose environment carries `runId`. */
function groupsCarrying(runId: string | undefined): number[] {
  if (runId === undefined) return [];
  const groups = new Set<number>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name) || readEnvironVariable(Number(entry.name), RUN_ID) !== runId) {
      continue;
    }
    const stat = readProcStat(entry.name);
    if (stat && stat.state !== "Z") groups.add(stat.pgrp);
  }
  return [...groups];
}
