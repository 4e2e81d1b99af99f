/**
 * CPU time of processes, from Linux's `/proc/PID/stat`, to tell which process
 * of client, proxy and backend was busy during a measurement.
 *
 * @module
 */

/** Clock ticks per second of `/proc` times (`getconf CLK_TCK`; 100 on Linux). */
const TICKS_PER_SECOND = 100;

/**
 * Whose CPU time to read: a pid with all its descendants; `"self"`, the bench
 * process alone (its children are the servers and the proxies); or
 * `"reaped"`, the bench's children that have exited and been waited for (the
 * client programs it runs, such as wrk).
 */
export type CpuSource = number | "self" | "reaped";

/**
 * CPU seconds (user + system, all threads) used so far by `source`; for a pid,
 * with all its descendants, those still running and those that have exited
 * (socat's per-connection forks). Undefined where `/proc` cannot tell (not
 * Linux, process gone).
 */
export function cpuSeconds(source: CpuSource): number | undefined {
  const fields = statFields(source === "reaped" ? "self" : source);
  if (fields === undefined) return undefined;
  // utime, stime, cutime, cstime are fields 14-17 of the line, 12-15 after the name:
  // cutime and cstime hold the children that have exited and been waited for.
  const [from, to] = source === "self" ? [11, 13] : source === "reaped" ? [13, 15] : [11, 15];
  const ticks = fields.slice(from, to).reduce((sum, field) => sum + Number(field), 0);
  if (typeof source !== "number") return ticks / TICKS_PER_SECOND;
  const children = childPids(source).reduce((sum, child) => sum + (cpuSeconds(child) ?? 0), 0);
  return ticks / TICKS_PER_SECOND + children;
}

/** The fields of `/proc/PID/stat` after the command name, or undefined when it is gone. */
function statFields(pid: number | "self"): string[] | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name is in parentheses and may hold spaces.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** The children of `pid` that are running or not yet waited for. */
export function childPids(pid: number): number[] {
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

/** A set of processes whose CPU time is read before and after a measurement. */
export class CpuMeter {
  #sources: Record<string, CpuSource>;
  #before: Record<string, number | undefined> = {};

  /** @param sources the processes to watch, by the name they are reported under */
  constructor(sources: Record<string, CpuSource>) {
    this.#sources = sources;
  }

  /** Notes the CPU time of every process now. */
  start(): void {
    for (const [name, source] of Object.entries(this.#sources)) {
      this.#before[name] = cpuSeconds(source);
    }
  }

  /** CPU seconds each process used since {@linkcode start}. */
  seconds(): Record<string, number> {
    const result: Record<string, number> = {};
    for (const [name, source] of Object.entries(this.#sources)) {
      const before = this.#before[name];
      const after = cpuSeconds(source);
      if (before !== undefined && after !== undefined) result[name] = after - before;
    }
    return result;
  }
}
