/**
 * Signalling a command's whole process group, and telling when it is gone.
 *
 * @module
 */

import { sleep } from "../timers.ts";
import { isDead, readProcStat } from "./proc_stat.ts";

/** Sends `signal` to the process group `pgid`; a group that is already gone is fine. */
export function signalGroup(pgid: number, signal: Deno.Signal): void {
  if (pgid <= 1) return; // -0 would be our own group, -1 every process we may signal
  try {
    Deno.kill(-pgid, signal);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error; // ESRCH
  }
}

/**
 * Whether a process of group `pgid` is still running. Zombies do not count:
 * an orphan reparented to a PID 1 that does not reap stays a zombie for good
 * (docs/ARCHITECTURE.md, "Commands"). Without a readable /proc the answer is
 * yes, so the caller waits for its full grace.
 */
export async function groupHasLiveProcess(pgid: number): Promise<boolean> {
  try {
    for await (const entry of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      const stat = readProcStat(entry.name); // undefined when it exited while we looked
      if (stat?.pgrp === pgid && !isDead(stat)) return true;
    }
    return false;
  } catch {
    return true;
  }
}

/**
 * Ends the process group `pgid`: TERM, then KILL once `graceMs` has passed
 * with a process of it still running, and waits (a second at most) for it
 * to be gone.
 */
export async function terminateGroup(pgid: number, graceMs: number): Promise<void> {
  signalGroup(pgid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (await groupHasLiveProcess(pgid)) {
    if (Date.now() > deadline) {
      signalGroup(pgid, "SIGKILL");
      const killed = Date.now();
      while (await groupHasLiveProcess(pgid) && Date.now() - killed < 1000) await sleep(20);
      return;
    }
    await sleep(20);
  }
}
