/**
 * The bench's client: the four workloads, each run once against a port and
 * timed. Connections go to 127.0.0.1 and speak `protocol.ts`.
 *
 * @module
 */

import { ECHO, sinkHeader, writeAll } from "./protocol.ts";

/** Bytes per write and per read of the bulk workloads. */
const CHUNK_BYTES = 256 * 1024;
/** Bytes the client writes: zeros, the content does not matter to a proxy. */
const ZEROS = new Uint8Array(CHUNK_BYTES);
const MIB = 1024 * 1024;

/** The connections of one workload run, closed all at once when it takes too long. */
export class Connections {
  #open = new Set<Deno.Conn>();
  #aborted = false;

  /** Connects to 127.0.0.1:`port` and keeps track of the connection. */
  async connect(port: number): Promise<Deno.Conn> {
    if (this.#aborted) throw new Error("aborted");
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    this.#open.add(conn);
    return conn;
  }

  /** Closes `conn` and forgets it. */
  close(conn: Deno.Conn): void {
    this.#open.delete(conn);
    conn.close();
  }

  /** Closes every connection still open, which makes the workload fail. */
  abort(): void {
    this.#aborted = true;
    for (const conn of this.#open) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
    this.#open.clear();
  }
}

/** Writes `bytes` zeros to `conn` in chunks. */
async function writeZeros(conn: Deno.Conn, bytes: number): Promise<void> {
  for (let left = bytes; left > 0; left -= CHUNK_BYTES) {
    await writeAll(conn, ZEROS.subarray(0, Math.min(left, CHUNK_BYTES)));
  }
}

/** Reads exactly `bytes` from `conn`. */
async function readExactly(conn: Deno.Conn, bytes: number): Promise<void> {
  const buffer = new Uint8Array(Math.min(bytes, CHUNK_BYTES));
  let total = 0;
  while (total < bytes) {
    const read = await conn.read(buffer);
    if (read === null) throw new Error(`${total} bytes came back, not ${bytes}`);
    total += read;
  }
}

/** Reads `conn` up to its first newline (or its end) and returns the text before it. */
async function readLine(conn: Deno.Conn): Promise<string> {
  const buffer = new Uint8Array(64);
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("\n")) {
    const read = await conn.read(buffer);
    if (read === null) break;
    text += decoder.decode(buffer.subarray(0, read), { stream: true });
  }
  return text.split("\n")[0];
}

/**
 * One connection sends `bytes` one way; the backend discards them and answers
 * the count. Returns MiB/s, from connect to the answer.
 */
export async function oneWay(conns: Connections, port: number, bytes: number): Promise<number> {
  const started = performance.now();
  const conn = await conns.connect(port);
  await writeAll(conn, sinkHeader(bytes));
  await writeZeros(conn, bytes);
  const answer = await readLine(conn);
  conns.close(conn);
  if (answer !== String(bytes)) throw new Error(`the backend got ${answer} bytes, not ${bytes}`);
  return bytes / MIB / seconds(started);
}

/** Sends `bytes` through the echo backend on `conn` while reading them all back. */
async function echoOn(conn: Deno.Conn, bytes: number): Promise<void> {
  const sending = (async () => {
    await writeAll(conn, new Uint8Array([ECHO]));
    await writeZeros(conn, bytes);
  })();
  await Promise.all([sending, readExactly(conn, bytes)]);
}

/**
 * One connection echoes `bytes`, sending and receiving at once. Returns MiB/s
 * each way (bytes / time), from connect to the last byte back.
 */
export async function echo(conns: Connections, port: number, bytes: number): Promise<number> {
  const started = performance.now();
  const conn = await conns.connect(port);
  await echoOn(conn, bytes);
  conns.close(conn);
  return bytes / MIB / seconds(started);
}

/** What {@linkcode connectionRate} measures. */
export interface RateResult {
  /** Connections per second, over the whole sequence. */
  perSecond: number;
  /** Median of connect + request + response, in milliseconds. */
  medianMs: number;
  /** 99th percentile of the same, in milliseconds. */
  p99Ms: number;
}

/**
 * `count` connections one after the other, each: connect, send a 16-byte
 * request, read the 16-byte response, close.
 */
export async function connectionRate(
  conns: Connections,
  port: number,
  count: number,
): Promise<RateResult> {
  const request = new Uint8Array(17);
  request[0] = ECHO;
  request.set(new TextEncoder().encode("0123456789abcdef"), 1);
  const response = new Uint8Array(16);
  const latencies: number[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const opened = performance.now();
    const conn = await conns.connect(port);
    await writeAll(conn, request);
    let got = 0;
    while (got < response.length) {
      const read = await conn.read(response.subarray(got));
      if (read === null) throw new Error(`the response ended after ${got} of 16 bytes`);
      got += read;
    }
    latencies.push(performance.now() - opened);
    conns.close(conn);
  }
  const total = seconds(started);
  latencies.sort((a, b) => a - b);
  return {
    perSecond: count / total,
    medianMs: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

/**
 * `parallel` connections at once, each echoing `bytesEach` (sending and
 * receiving at once). Returns the total MiB/s each way, from the first connect
 * to the last byte back.
 */
export async function concurrency(
  conns: Connections,
  port: number,
  parallel: number,
  bytesEach: number,
): Promise<number> {
  const started = performance.now();
  await Promise.all(Array.from({ length: parallel }, async () => {
    const conn = await conns.connect(port);
    await echoOn(conn, bytesEach);
    conns.close(conn);
  }));
  return parallel * bytesEach / MIB / seconds(started);
}

/** The `p`-th percentile (nearest rank) of `sorted`, which is sorted ascending. */
export function percentile(sorted: number[], p: number): number {
  const rank = Math.max(1, Math.ceil(sorted.length * p / 100));
  return sorted[Math.min(rank, sorted.length) - 1];
}

function seconds(since: number): number {
  return (performance.now() - since) / 1000;
}
