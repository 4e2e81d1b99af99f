/**
 * The open file limit (RLIMIT_NOFILE): what it is, and raising the soft limit
 * to the hard one, which any process may do. The deno CLI raises it itself at
 * start; for a runtime that does not, util-linux `prlimit` does it for this
 * process (Deno has no setrlimit).
 *
 * @module
 */

import { findExecutable } from "./which.ts";

/** A process's open file limits. */
export interface FileLimit {
  /** The limit in force. */
  soft: number;
  /** The most the soft limit may be raised to without privileges. */
  hard: number;
}

/** This process's open file limits, from /proc/self/limits; undefined where they cannot be read. */
export function fileLimit(): FileLimit | undefined {
  try {
    const line = Deno.readTextFileSync("/proc/self/limits")
      .split("\n").find((text) => text.startsWith("Max open files"));
    const [soft, hard] = line!.slice("Max open files".length).trim().split(/\s+/)
      .map((value) => value === "unlimited" ? Infinity : Number(value));
    return soft > 0 && hard > 0 ? { soft, hard } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Raises this process's soft open file limit to its hard limit, where
 * `prlimit` is installed.
 *
 * @returns the limits after the attempt, and the soft limit before when it changed
 */
export async function raiseFileLimit(): Promise<(FileLimit & { raisedFrom?: number }) | undefined> {
  const before = fileLimit();
  const prlimit = findExecutable("prlimit");
  if (!before || before.soft >= before.hard || !prlimit || !Number.isFinite(before.hard)) {
    return before;
  }
  await new Deno.Command(prlimit, {
    args: ["--pid", String(Deno.pid), `--nofile=${before.hard}:${before.hard}`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  const after = fileLimit() ?? before;
  return after.soft > before.soft ? { ...after, raisedFrom: before.soft } : after;
}

/** How many files this process holds open now. */
export function openFiles(): number {
  try {
    return [...Deno.readDirSync("/proc/self/fd")].length;
  } catch {
    return 0;
  }
}
