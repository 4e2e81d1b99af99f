/**
 * Many connections held open through a proxy: opened in batches, each
 * proven forwarded by an echo (a few bytes, or a burst), then kept quiet, then
 * closed; and waiting until the proxy has let go of them.
 *
 * @module
 */

import { ECHO, writeAll } from "./protocol.ts";
import { openFiles } from "./proc.ts";
import { throwIfInterrupted } from "./processes.ts";

/** Connections opened at once. */
const BATCH = 500;
/** Bytes of the small echo that proves a connection is forwarded. */
const PROBE = new TextEncoder().encode("0123456789abcdef");

/**
 * Opens `count` echo connections to 127.0.0.1:`port`, each echoing
 * `burstBytes` (16 when not given) before it is left open and quiet.
 */
export async function openHeld(
  port: number,
  count: number,
  burstBytes = PROBE.length,
): Promise<Deno.Conn[]> {
  const open: Deno.Conn[] = [];
  for (let i = 0; i < count; i += BATCH) {
    throwIfInterrupted();
    const batch = Math.min(BATCH, count - i);
    const results = await Promise.allSettled(Array.from({ length: batch }, async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      open.push(conn);
      await echoOnce(conn, burstBytes);
    }));
    const failed = results.find((result) => result.status === "rejected");
    if (failed !== undefined) {
      const opened = open.length;
      closeHeld(open);
      throw new Error(`after ${opened} of ${count} connections: ${failed.reason?.message}`);
    }
  }
  return open;
}

/** Closes every connection of `conns`. */
export function closeHeld(conns: Deno.Conn[]): void {
  for (const conn of conns) {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
  conns.length = 0;
}

/** Sends `bytes` (after the echo header) and reads them all back. */
async function echoOnce(conn: Deno.Conn, bytes: number): Promise<void> {
  const data = bytes === PROBE.length ? PROBE : new Uint8Array(bytes);
  const buffer = new Uint8Array(Math.min(bytes, 256 * 1024));
  let received = 0;
  await Promise.all([
    writeAll(conn, new Uint8Array([ECHO])).then(() => writeAll(conn, data)),
    (async () => {
      while (received < bytes) {
        const read = await conn.read(buffer);
        if (read === null) {
          throw new Error(`the connection closed after ${received} of ${bytes} bytes`);
        }
        received += read;
      }
    })(),
  ]);
}

/**
 * Waits until process `pid` holds at most `files` open files (it has closed
 * the connections the bench closed), for up to `timeoutMs`; returns whether it did.
 */
export async function waitForFiles(
  pid: number,
  files: number,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (openFiles(pid) > files) {
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
