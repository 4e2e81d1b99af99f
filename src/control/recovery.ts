/**
 * Taking back what a daemon that did not shut down (kill -9, a crash, the
 * OOM killer) left behind, so that no backend stays awake forever with
 * nobody to stop it (docs/ARCHITECTURE.md, "Crash recovery").
 *
 * @module
 */

import { log } from "../log.ts";
import { formatTarget, type Target } from "../net/address.ts";
import { readEnvironVariable, readProcStat } from "../process/proc_stat.ts";
import { terminateGroup } from "../process/process_group.ts";
import type { RunningStart, Service } from "../service/service.ts";
import type { SavedState } from "./state_file.ts";

/** How long a leftover START_CMD gets between TERM and KILL. */
const LEFTOVER_GRACE_MS = 2_000;

/**
 * For each service, from what the previous daemon saved (if it saved
 * anything) and what CHECK_CMD says:
 * - a START_CMD it left running mid-wake is ended (its whole process group)
 *   and STOP_CMD cleans up after it, as after any failed wake;
 * - a backend it had awake is adopted as awake, so that its idle checks
 *   begin: with CHECK_CMD, only when it says the backend is up;
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
    const awakeAt = before?.state === "awake" || before?.state === "stopping"
      ? before.target
      : undefined;
    return recoverService(service, before?.start, awakeAt).catch((error) => {
      log("recovery").error("[{service}] cannot recover: {error}", {
        service: service.config.name,
        error,
      });
    });
  })).then(() => {});
}

async function recoverService(
  service: Service,
  leftover: RunningStart | undefined,
  awakeAt: Target | undefined,
): Promise<void> {
  const name = service.config.name;
  const logger = log("recovery");
  if (leftover) {
    const reason = `a daemon killed mid-wake left START_CMD (pid ${leftover.pid}) behind`;
    await service.stopAfterCrash(reason, () => endLeftover(name, leftover));
    return;
  }
  const found = service.config.checkCmd ? await service.findRunningBackend(awakeAt) : awakeAt;
  if (!found) return;
  const how = service.config.checkCmd ? "CHECK_CMD says it is up" : "the last daemon had it awake";
  if (service.adopt(found, `adopted ${formatTarget(found)}: ${how}`)) {
    logger.warn("[{service}] adopted the backend at {target} ({how}): its idle checks begin", {
      service: name,
      target: formatTarget(found),
      how,
    });
  }
}

/**
 * Ends the process group of a leftover START_CMD, if that very process still
 * runs: the same pid, start time and run id (`SLEEPINGD_RUN_ID` in the
 * environment it started with), so that a pid reused, or a state file that
 * names another process, never ends anyone else's.
 */
async function endLeftover(name: string, leftover: RunningStart): Promise<void> {
  const stat = readProcStat(leftover.pid);
  if (stat === undefined || stat.startTime !== leftover.startTime) return; // gone, or pid reused
  const runId = readEnvironVariable(leftover.pid, "SLEEPINGD_RUN_ID");
  if (leftover.runId === undefined || runId !== leftover.runId) {
    log("recovery").warn(
      "[{service}] left pid {pid} alone: it is not the START_CMD the last daemon ran (its " +
        "SLEEPINGD_RUN_ID {differs})",
      {
        service: name,
        pid: leftover.pid,
        differs: leftover.runId === undefined ? "was not saved" : "differs",
      },
    );
    return;
  }
  log("recovery").warn("[{service}] ending START_CMD (pid {pid}) left by the last daemon", {
    service: name,
    pid: leftover.pid,
  });
  await terminateGroup(leftover.pid, LEFTOVER_GRACE_MS);
}
