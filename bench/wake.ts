/**
 * What a wake costs on top of START_CMD, and whether one wake serves a crowd:
 *
 * - wake overhead: the time to the first byte of a connection to an asleep
 *   service, minus START_CMD's own run time (as it notes it itself);
 * - one wake for 1000 clients: 1000 clients connect while START_CMD waits
 *   for a gate; once sleepingd holds them all the gate opens, and START_CMD
 *   must have run once and every client must get its echo.
 *
 * @module
 */

import { closeHeld, sleep } from "./held.ts";
import { ECHO, writeAll } from "./protocol.ts";
import { throwIfInterrupted } from "./processes.ts";
import { formatNumber, median } from "./report.ts";
import type { WakeDaemon } from "./wake_daemon.ts";

/** The wake overhead the project aims for, median, in ms. */
export const WAKE_OVERHEAD_TARGET_MS = 5;
/** Longest the bench waits for a state, a count or answers. */
const WAIT_MS = 30_000;
/** The request of every connection: the echo header and 16 bytes. */
const REQUEST = new Uint8Array([ECHO, ...new TextEncoder().encode("0123456789abcdef")]);

/** What the wake overhead measurement found, in ms. */
export interface WakeOverhead {
  /** Cold wakes measured. */
  wakes: number;
  /** Median time from connect to the first byte of the answer. */
  firstByteMs: number;
  /** Median of START_CMD's own run time. */
  startCmdMs: number;
  /** Median of the first minus the second, wake by wake. */
  overheadMs: number;
  /** Median of START_CMD's run time as sleepingd times it (spawn to exit). */
  sleepingdStartCmdMs: number;
  /** Median of the wake's duration as sleepingd times it (connection to awake). */
  sleepingdWakeMs: number;
  /** Every wake's overhead, in the order measured. */
  overheadsMs: number[];
}

/** Measures `wakes` cold wakes of the `wake` service, after one unmeasured. */
export async function wakeOverhead(daemon: WakeDaemon, wakes: number): Promise<WakeOverhead> {
  const firstBytes: number[] = [];
  const startCmds: number[] = [];
  const overheads: number[] = [];
  const timedStartCmds: number[] = [];
  const timedWakes: number[] = [];
  /** A histogram's sum of sleepingd's metrics for the wake service, in ms. */
  const sum = async (name: string, labels: Record<string, string>) =>
    await daemon.metric(`${name}_sum`, { service: "wake", ...labels }) * 1000;
  const startCmdSum = () => sum("sleepingd_command_duration_seconds", { command: "START_CMD" });
  const wakeSum = () => sum("sleepingd_wake_duration_seconds", { outcome: "awake" });
  for (let i = 0; i <= wakes; i++) {
    throwIfInterrupted();
    await waitFor(
      async () =>
        await daemon.metric("sleepingd_service_state", { service: "wake", state: "asleep" }) === 1,
      "the wake service to fall asleep",
    );
    const [startCmdBefore, wakeBefore] = [await startCmdSum(), await wakeSum()];
    const started = performance.now();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: daemon.wakePort });
    try {
      await writeAll(conn, REQUEST);
      const buffer = new Uint8Array(REQUEST.length);
      const read = await conn.read(buffer);
      const firstByteMs = performance.now() - started;
      if (read === null) throw new Error("sleepingd closed a cold connection without an answer");
      let lines: string[] = [];
      await waitFor(async () => {
        lines = (await Deno.readTextFile(daemon.wakeTimesFile)).trim().split("\n");
        return lines.length > i;
      }, "START_CMD to note its times");
      const [start, end] = lines[i].split(" ").map(Number);
      const startCmdMs = (end - start) * 1000;
      if (i === 0) continue; // the JIT's first wake
      firstBytes.push(firstByteMs);
      startCmds.push(startCmdMs);
      overheads.push(firstByteMs - startCmdMs);
      timedStartCmds.push(await startCmdSum() - startCmdBefore);
      timedWakes.push(await wakeSum() - wakeBefore);
    } finally {
      conn.close();
    }
  }
  return {
    wakes,
    firstByteMs: median(firstBytes),
    startCmdMs: median(startCmds),
    overheadMs: median(overheads),
    overheadsMs: overheads,
    sleepingdStartCmdMs: median(timedStartCmds),
    sleepingdWakeMs: median(timedWakes),
  };
}

/** The wake overhead's lines. */
export function renderWakeOverhead(result: WakeOverhead): string {
  const ms = (value: number) => `${formatNumber(value)} ms`;
  const met = result.overheadMs <= WAKE_OVERHEAD_TARGET_MS ? "met" : "NOT met";
  return [
    `  median of ${result.wakes} cold wakes: overhead ${ms(result.overheadMs)} ` +
    `(target ≤ ${WAKE_OVERHEAD_TARGET_MS} ms: ${met}) = first byte after ` +
    `${ms(result.firstByteMs)} - START_CMD's own ${ms(result.startCmdMs)}`,
    `  each wake's overhead: ${result.overheadsMs.map(formatNumber).join(" ")} ms`,
    `  as sleepingd times them (metrics): START_CMD spawn to exit ` +
    `${ms(result.sleepingdStartCmdMs)}, connection to awake ${ms(result.sleepingdWakeMs)}`,
  ].join("\n");
}

/** What the crowd test found. */
export interface OneWake {
  /** Clients that connected. */
  clients: number;
  /** Connections sleepingd held before the gate opened. */
  held: number;
  /** Runs of START_CMD. */
  starts: number;
  /** Clients that got their whole echo. */
  answered: number;
  /** Time from opening the gate to the last answer, in ms. */
  answeredInMs: number;
  /** Why clients did not get their answer, by message, with their count. */
  errors: Record<string, number>;
}

/** `clients` clients connect to the asleep `gate` service; one wake must answer them all. */
export async function oneWakeForAll(daemon: WakeDaemon, clients: number): Promise<OneWake> {
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < clients; i += 100) {
      throwIfInterrupted();
      const batch = Math.min(100, clients - i);
      conns.push(
        ...await Promise.all(Array.from({ length: batch }, async () => {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: daemon.gatePort });
          await writeAll(conn, REQUEST);
          return conn;
        })),
      );
    }
    const openConnections = () => daemon.metric("sleepingd_connections_open", { service: "gate" });
    await waitFor(async () => await openConnections() >= clients, `sleepingd to hold ${clients}`)
      .catch(() => {});
    const held = await openConnections();
    const gateOpened = performance.now();
    await Deno.writeTextFile(daemon.gateFile, "");
    const errors: Record<string, number> = {};
    let answered = 0;
    await Promise.all(conns.map(async (conn) => {
      try {
        await readEcho(conn);
        answered++;
      } catch (error) {
        const message = (error as Error).message;
        errors[message] = (errors[message] ?? 0) + 1;
      }
    }));
    const answeredInMs = performance.now() - gateOpened;
    const starts = (await Deno.readTextFile(daemon.gateStartsFile).catch(() => ""))
      .split("\n").filter((line) => line !== "").length;
    return { clients, held, starts, answered, answeredInMs, errors };
  } finally {
    closeHeld(conns);
  }
}

/** The crowd test's line: `1 START, 1000 answered` when all went well. */
export function renderOneWake(result: OneWake): string {
  const errors = Object.entries(result.errors).map(([message, count]) => `${count}× ${message}`);
  return `  ${result.starts} START, ${result.answered} answered ` +
    `(${result.clients} clients, ${result.held} held by sleepingd when the gate opened, ` +
    `all answered ${formatNumber(result.answeredInMs)} ms after)` +
    (errors.length > 0 ? `; failed: ${errors.join("; ")}` : "");
}

/** Reads the echo of {@linkcode REQUEST} (without its header byte), within {@linkcode WAIT_MS}. */
async function readEcho(conn: Deno.Conn): Promise<void> {
  const want = REQUEST.length - 1;
  const buffer = new Uint8Array(want);
  let got = 0;
  const timer = setTimeout(() => conn.close(), WAIT_MS);
  try {
    while (got < want) {
      const read = await conn.read(buffer.subarray(got));
      if (read === null) throw new Error(`closed after ${got} of ${want} bytes`);
      got += read;
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every 10 ms until it is true; throws after {@linkcode WAIT_MS}. */
async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = performance.now() + WAIT_MS;
  while (!await check()) {
    if (performance.now() > deadline) throw new Error(`waited ${WAIT_MS} ms for ${what}`);
    await sleep(10);
  }
}
