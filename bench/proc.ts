/**
 * What Linux's `/proc` says about a process besides its CPU time: its resident
 * memory, how many files it holds open, and the bench's own open file limit.
 *
 * @module
 */

/** The resident memory of process `pid` (VmRSS of `/proc/PID/status`), in KiB. */
export function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (match === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]);
}

/** How many files process `pid` holds open now. */
export function openFiles(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

/**
 * The hard open file limit of the bench process, which its children inherit
 * and may raise their soft limit to (sleepingd, haproxy and the deno CLI do).
 */
export function hardFileLimit(): number {
  const line = Deno.readTextFileSync("/proc/self/limits").split("\n")
    .find((text) => text.startsWith("Max open files"));
  const hard = line?.slice("Max open files".length).trim().split(/\s+/)[1];
  return hard === undefined || hard === "unlimited" ? Infinity : Number(hard);
}
