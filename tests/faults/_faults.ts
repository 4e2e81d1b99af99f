/**
 * Helpers of the fault suite: a backend the test owns, what /proc says of a
 * process (memory, files, children, process groups), and reading exactly.
 *
 * @module
 */

import { isAlive, listenLocal, readAll, writeAll } from "../_net.ts";
import { bounded } from "../_helpers.ts";
import type { Daemon } from "../_daemon.ts";
import { exchange } from "../_service.ts";
import { echo } from "../testdata/echo_server.ts";

/** A backend the test owns: always up, each connection taken by the test as it comes. */
export interface OwnBackend extends Disposable {
  /** Where it listens. */
  port: number;
  /** The next connection the proxy made to it (bounded). */
  accept(what?: string): Promise<Deno.TcpConn>;
  /** Stops listening. */
  close(): void;
}

/** Listens on 127.0.0.1 for the proxy's connections, which the test then drives by hand. */
export function ownBackend(): OwnBackend {
  const listener = listenLocal();
  const close = () => {
    try {
      listener.close();
    } catch {
      // Closed already.
    }
  };
  return {
    port: listener.addr.port,
    accept: (what = "the proxy's connection to the backend") => bounded(listener.accept(), what),
    close,
    [Symbol.dispose]: close,
  };
}

/**
 * An always-up echo server of the test process's own (no process to start):
 * echoes each connection and passes on its half-close.
 */
export function echoListener(): OwnBackend & { connections(): number } {
  const listener = listenLocal();
  let connections = 0;
  (async () => {
    try {
      for await (const conn of listener) {
        connections++;
        echo(conn, 16 * 1024);
      }
    } catch {
      // The listener was closed.
    }
  })();
  const close = () => closeQuietly(listener);
  return {
    port: listener.addr.port,
    accept: () => Promise.reject(new Error("an echo listener accepts by itself")),
    connections: () => connections,
    close,
    [Symbol.dispose]: close,
  };
}

/** Closes and never throws. */
export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Closed already.
  }
}

/**
 * How a read of a connection ends: `eof`, `reset`, or `bytes` when the
 * peer sent something instead. Other errors (e.g. a broken pipe) say what they are.
 */
export async function readEnd(conn: Deno.Conn): Promise<string> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    let total = 0;
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) return total === 0 ? "eof" : `eof after ${total} bytes`;
      total += n;
    }
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionReset) return "reset";
    return `error ${(error as Error).name}: ${(error as Error).message}`;
  }
}

/** A process's resident memory in bytes (`VmRSS` of /proc/PID/status). */
export function rssBytes(pid: number | "self" = "self"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`No VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** `bytes` in MiB with one decimal, for the report. */
export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** How many files this process holds open (entries of /proc/self/fd). */
export function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

/** The soft open file limit of this process. */
export function softFileLimit(): number {
  const line = Deno.readTextFileSync("/proc/self/limits").split("\n")
    .find((text) => text.startsWith("Max open files"))!;
  const soft = line.slice("Max open files".length).trim().split(/\s+/)[0];
  return soft === "unlimited" ? Infinity : Number(soft);
}

/** One process of /proc: pid, parent, group, state and command name. */
export interface ProcessEntry {
  pid: number;
  ppid: number;
  pgrp: number;
  state: string;
  comm: string;
}

/** Every process /proc shows now. */
export function processes(): ProcessEntry[] {
  const found: ProcessEntry[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
    } catch {
      continue; // it exited while we looked
    }
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const [state, ppid, pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    found.push({ pid: Number(entry.name), ppid: Number(ppid), pgrp: Number(pgrp), state, comm });
  }
  return found;
}

/** Children of this process that exited and were never reaped. */
export function zombieChildren(): ProcessEntry[] {
  return processes().filter((p) => p.ppid === Deno.pid && p.state === "Z");
}

/** Live processes (zombies do not count) of the process group `pgid`. */
export function liveInGroup(pgid: number): ProcessEntry[] {
  return processes().filter((p) => p.pgrp === pgid && p.state !== "Z" && p.state !== "X");
}

/** Sends SIGKILL to `pid` when it is alive still (clean-up at the end of a test). */
export function killIfAlive(pid: number | undefined): void {
  if (pid === undefined || !Number.isInteger(pid) || pid <= 1 || !isAlive(pid)) return;
  try {
    Deno.kill(pid, "SIGKILL");
  } catch {
    // Gone meanwhile.
  }
}

/** Sends SIGKILL to every live process of group `pgid` (clean-up at the end of a test). */
export function killGroup(pgid: number | undefined): void {
  if (pgid === undefined || !Number.isInteger(pgid) || pgid <= 1) return;
  for (const { pid } of liveInGroup(pgid)) killIfAlive(pid);
}

/** The number in `file`, or undefined when it is missing or holds none. */
export function readNumber(file: string): number | undefined {
  try {
    const value = Number(Deno.readTextFileSync(file).split("\n")[0].trim());
    return Number.isInteger(value) && value > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}

/** A pid no process has: a child that ran and was reaped. */
export async function deadPid(): Promise<number> {
  const child = new Deno.Command("true", { stdin: "null", stdout: "null", stderr: "null" })
    .spawn();
  await child.status;
  return child.pid;
}

/** Sends `data` to 127.0.0.1:`port` (or `hostname`), half-closes, and returns all that came back. */
export async function exchangeBytes(
  port: number,
  data: Uint8Array,
  hostname = "127.0.0.1",
): Promise<Uint8Array<ArrayBuffer>> {
  const conn = await Deno.connect({ hostname, port });
  try {
    await writeAll(conn, data);
    await conn.closeWrite();
    return await readAll(conn);
  } finally {
    closeQuietly(conn);
  }
}

/** {@linkcode exchange}, bounded: sends `message`, half-closes, and returns the answer. */
export function talk(port: number, message: string): Promise<string> {
  return bounded(exchange(port, message), `an answer to ${JSON.stringify(message)} on ${port}`);
}

/** Stops the daemon (SIGTERM unless it has exited) and returns its exit code, bounded. */
export function stopDaemon(daemon: Daemon): Promise<number> {
  return bounded(daemon.stop(), "the daemon to stop", 60);
}
