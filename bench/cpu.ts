/**
 * CPU time of processes, from Linux's `/proc/PID/stat`, to tell which process
 * of client, proxy and backend was busy during a measurement.
 *
 * @module
 */

/** Clock ticks per second of `/proc` times (`getconf CLK_TCK`; 100 on Linux). */
const TICKS_PER_SECOND = 100;

/**
 * CPU seconds (user + system, all threads) used so far by `pid` and, unless
 * `alone`, all its descendants, those still running and those that have
 * exited (socat's per-connection forks); undefined where `/proc` cannot tell
 * (not Linux, process gone).
 */
export function cpuSeconds(pid: number | "self", alone = false): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime, stime, cutime, cstime are fields 14-17 of the line, 12-15 after the name:
    // cutime and cstime hold the children that have exited and been waited for.
    const ticks = fields.slice(11, alone ? 13 : 15).reduce((sum, field) => sum + Number(field), 0);
    if (alone) return ticks / TICKS_PER_SECOND;
    const children = childPids(pid).reduce((sum, child) => sum + (cpuSeconds(child) ?? 0), 0);
    return ticks / TICKS_PER_SECOND + children;
  } catch {
    return undefined;
  }
}

/** The children of `pid` that are running or not yet waited for. */
function childPids(pid: number | "self"): number[] {
  const children: number[] = [];
  try {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      const text = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/children`);
      children.push(...text.split(" ").filter((word) => word !== "").map(Number));
    }
  } catch {
    // gone, or a kernel without /proc/PID/task/TID/children
  }
  return children;
}

/**
 * A set of processes whose CPU time is read before and after a measurement:
 * `"self"` (the bench process) alone, since its children are the backend and
 * the proxies; any other pid with its descendants.
 */
export class CpuMeter {
  #pids: Record<string, number | "self">;
  #before: Record<string, number | undefined> = {};

  /** @param pids the processes to watch, by the name they are reported under */
  constructor(pids: Record<string, number | "self">) {
    this.#pids = pids;
  }

  /** Notes the CPU time of every process now. */
  start(): void {
    for (const [name, pid] of Object.entries(this.#pids)) {
      this.#before[name] = cpuSeconds(pid, pid === "self");
    }
  }

  /** Percent of one core each process used since {@linkcode start}, over `seconds` of wall time. */
  percent(seconds: number): Record<string, number> {
    const result: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.#pids)) {
      const before = this.#before[name];
      const after = cpuSeconds(pid, pid === "self");
      if (before !== undefined && after !== undefined) {
        result[name] = (after - before) / seconds * 100;
      }
    }
    return result;
  }
}
