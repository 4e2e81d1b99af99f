/**
 * What Linux's /proc says of a process: its state, process group, start time and environment.
 *
 * @module
 */

/** The fields of `/proc/PID/stat` sleepingd uses. */
export interface ProcStat {
  /** One letter: R running, S sleeping, Z zombie, X dead, ... */
  state: string;
  /** Process group id. */
  pgrp: number;
  /** When it started, in clock ticks since boot: with the pid, it names one process for good. */
  startTime: number;
}

/** Reads `/proc/PID/stat`; undefined when the process does not exist. */
export function readProcStat(pid: number | string): ProcStat | undefined {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp ... starttime(22nd)": comm may hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0], pgrp: Number(fields[2]), startTime: Number(fields[19]) };
}

/** Clock ticks a second in /proc (USER_HZ, 100 on every Linux architecture sleepingd runs on). */
const TICKS_PER_SECOND = 100;

/**
 * When `pid` started, in epoch milliseconds (from its start time and the boot
 * time in /proc/stat), to the tick; undefined when it does not exist.
 */
export function startedAt(pid: number): number | undefined {
  const stat = readProcStat(pid);
  if (stat === undefined) return undefined;
  let bootSeconds: number;
  try {
    bootSeconds = Number(/^btime (\d+)$/m.exec(Deno.readTextFileSync("/proc/stat"))?.[1]);
  } catch {
    return undefined;
  }
  if (!Number.isFinite(bootSeconds)) return undefined;
  return bootSeconds * 1000 + (stat.startTime * 1000) / TICKS_PER_SECOND;
}

/**
 * Whether a process is running. Zombies do not count: an orphan reparented to
 * a PID 1 that does not reap stays a zombie for good (docs/ARCHITECTURE.md, "Commands").
 */
export function isAlive(pid: number): boolean {
  const stat = readProcStat(pid);
  return stat !== undefined && !isDead(stat);
}

/** Whether a stat is of a zombie or dead process. */
export function isDead(stat: ProcStat): boolean {
  return stat.state === "Z" || stat.state === "X";
}

/**
 * The value of `name` in the environment `pid` started with (`/proc/PID/environ`);
 * undefined when it has none, or the process is gone or not readable.
 */
export function readEnvironVariable(pid: number, name: string): string | undefined {
  let environ: string;
  try {
    environ = Deno.readTextFileSync(`/proc/${pid}/environ`);
  } catch {
    return undefined;
  }
  const prefix = `${name}=`;
  return environ.split("\0").find((entry) => entry.startsWith(prefix))?.slice(prefix.length);
}
