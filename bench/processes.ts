/**
 * The processes the bench starts: spawning them, reading their output, waiting
 * until they listen, and stopping every one of them — also on an error or
 * Ctrl-C.
 *
 * @module
 */

import { findExecutable } from "../src/process/which.ts";

/** Folders searched besides PATH: Debian puts servers in sbin. */
const SBIN = ["/usr/sbin", "/sbin", "/usr/local/sbin"];

/** Things to undo before the bench exits, newest first. */
const cleanups: (() => Promise<void> | void)[] = [];
/** The clean-up under way, shared by everyone who asks for it. */
let cleaning: Promise<void> | undefined;
/** Set once SIGINT or SIGTERM arrived: the bench stops measuring and prints nothing more. */
let interruptedBy: Deno.Signal | undefined;

/** Thrown where the bench notices it was interrupted: no error to report. */
export class Interrupted extends Error {}

/**
 * Registers `undo` to run at {@linkcode cleanUp}, e.g. removing a temp dir.
 * Returns a function that unregisters it, once it is no longer needed.
 */
export function onCleanUp(undo: () => Promise<void> | void): () => void {
  cleanups.push(undo);
  return () => {
    const index = cleanups.indexOf(undo);
    if (index >= 0) cleanups.splice(index, 1);
  };
}

/** The full path of the executable `name`, on PATH or in an sbin folder. */
export function findProgram(name: string): string | undefined {
  return findExecutable(name, SBIN);
}

/**
 * Runs every registered undo once, newest first, never throwing; a second
 * call waits for the same clean-up.
 */
export function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      try {
        await cleanups.pop()!();
      } catch {
        // best effort: the remaining cleanups still run
      }
    }
  })();
  return cleaning;
}

/** Throws {@linkcode Interrupted} once a signal asked the bench to stop. */
export function throwIfInterrupted(): void {
  if (interruptedBy !== undefined) throw new Interrupted(interruptedBy);
}

/** On SIGINT or SIGTERM: clean up, then exit 130 (Ctrl-C) or 143. */
export function cleanUpOnSignals(): void {
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    Deno.addSignalListener(signal, () => {
      if (interruptedBy !== undefined) return;
      interruptedBy = signal;
      console.error(`\n${signal}: stopping everything the bench started`);
      cleanUp().finally(() => Deno.exit(code));
    });
  }
}

/** The line saying that `program` is missing and which Debian package brings it. */
export function notInstalled(program: string, debianPackage: string): string {
  return `${program} is not installed (apt-get install ${debianPackage})`;
}

/** A child process started by {@linkcode start}, with its output read as lines. */
export interface Child {
  /** The name the bench uses for it in messages. */
  name: string;
  /** Its process id. */
  pid: number;
  /** Lines of stdout and stderr, as they come (at most the last 200 are kept). */
  lines: string[];
  /** Resolves when it has exited, with its status. */
  exited: Promise<Deno.CommandStatus>;
  /** Resolves with the first line (stdout or stderr) for which `match` is true. */
  waitForLine(match: (line: string) => boolean, timeoutMs: number): Promise<string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts `command args`, with stdin a pipe the bench never writes (a child may
 * exit at its end) and stdout/stderr read line by line and kept draining so the
 * child never blocks on a full pipe. The child is stopped at {@linkcode cleanUp}.
 */
export function start(name: string, command: string, args: string[], cwd?: string): Child {
  const spawned = new Deno.Command(command, {
    args,
    cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const waiters: { match: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  const onLine = (line: string) => {
    lines.push(line);
    if (lines.length > 200) lines.shift();
    for (const waiter of [...waiters]) {
      if (waiter.match(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  };
  readLines(spawned.stdout, onLine);
  readLines(spawned.stderr, onLine);
  let hasExited = false;
  const exited = spawned.status.finally(() => hasExited = true);

  const waitForLine = (match: (line: string) => boolean, timeoutMs: number) => {
    const seen = lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise<string>((resolve, reject) => {
      const waiter = { match, resolve: (line: string) => done(() => resolve(line)) };
      const timer = setTimeout(
        () => done(() => reject(new Error(`${name}: no expected output in ${timeoutMs} ms`))),
        timeoutMs,
      );
      exited.then((s) =>
        done(() => reject(new Error(`${name} exited with code ${s.code}:\n${tail(lines)}`)))
      );
      const done = (settle: () => void) => {
        clearTimeout(timer);
        const index = waiters.indexOf(waiter);
        if (index >= 0) waiters.splice(index, 1);
        settle();
      };
      waiters.push(waiter);
    });
  };

  const stop = async (graceMs = 3000) => {
    if (hasExited) return;
    kill(spawned, "SIGTERM");
    const timer = setTimeout(() => kill(spawned, "SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  };
  onCleanUp(stop);
  return { name, pid: spawned.pid, lines, exited, waitForLine, stop };
}

/** The last lines a child printed, indented, for an error message. */
export function tail(lines: string[], count = 10): string {
  return lines.slice(-count).map((line) => `    ${line}`).join("\n");
}

function kill(child: Deno.ChildProcess, signal: Deno.Signal) {
  try {
    child.kill(signal);
  } catch {
    // it has exited in the meantime
  }
}

async function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  let pending = "";
  try {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (pending + text).split("\n");
      pending = parts.pop()!;
      parts.forEach(onLine);
    }
  } catch {
    // the child is gone
  }
  if (pending !== "") onLine(pending);
}

/**
 * Resolves once something listens on `address`:`port` (127.0.0.1 unless
 * said), read from the child's `/proc/PID/net/tcp` (its own network
 * namespace): no probe connection reaches the listener (nor, through a
 * proxy, the server behind it). Rejects when `child` exits first, or after
 * `timeoutMs`, with the child's last lines.
 */
export async function waitForListener(
  child: Child,
  port: number,
  timeoutMs: number,
  address = "127.0.0.1",
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  // /proc writes an IPv4 address as the hex of its 32 bits in the host's order (little-endian).
  const hexAddress = address.split(".").reverse()
    .map((part) => Number(part).toString(16).toUpperCase().padStart(2, "0")).join("");
  const local = `${hexAddress}:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let exited = false;
  child.exited.then(() => exited = true);
  while (true) {
    const table = await Deno.readTextFile(`/proc/${child.pid}/net/tcp`).catch(() => "");
    const listening = table.split("\n").some((line) => {
      // Columns: sl, local_address, rem_address, st (0A = LISTEN), ...
      const [, address, , state] = line.trim().split(/\s+/);
      return address === local && state === "0A";
    });
    if (listening) return;
    if (exited || performance.now() > deadline) {
      const why = exited ? "it exited" : `nothing listens after ${timeoutMs} ms`;
      throw new Error(
        `${child.name} does not listen on ${address}:${port}: ${why}\n${tail(child.lines)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A TCP port on 127.0.0.1 that is free right now (the kernel picks it). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** What {@linkcode run} gives back. */
export interface Ran {
  /** The exit code (128 + the signal when a signal ended it). */
  code: number;
  /** All of its stdout. */
  stdout: string;
  /** All of its stderr. */
  stderr: string;
}

/**
 * Runs `command args` to its end, stdin from /dev/null, and returns its exit
 * code and output. Aborting `signal`, or {@linkcode cleanUp}, kills it.
 */
export async function run(command: string, args: string[], signal?: AbortSignal): Promise<Ran> {
  const child = new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killIt = () => kill(child, "SIGKILL");
  const forget = onCleanUp(killIt);
  signal?.addEventListener("abort", killIt);
  try {
    const result = await child.output();
    const decoder = new TextDecoder();
    return {
      code: result.code,
      stdout: decoder.decode(result.stdout),
      stderr: decoder.decode(result.stderr),
    };
  } finally {
    signal?.removeEventListener("abort", killIt);
    forget();
  }
}

/** {@linkcode run} on the host `prefix` names (`ip netns exec NS`), or here without one. */
export function runOn(
  prefix: string[] | undefined,
  command: string,
  args: string[],
  signal?: AbortSignal,
): Promise<Ran> {
  const [program, ...rest] = [...(prefix ?? []), command, ...args];
  return run(program, rest, signal);
}

/** Runs `command args` to its end and returns its stdout and stderr, or "" when it fails. */
export async function output(command: string, args: string[]): Promise<string> {
  try {
    const result = await new Deno.Command(command, { args, stdin: "null" }).output();
    const decoder = new TextDecoder();
    return decoder.decode(result.stdout) + decoder.decode(result.stderr);
  } catch {
    return "";
  }
}
