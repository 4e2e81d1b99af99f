/**
 * Opening the listening sockets of a service.
 *
 * @module
 */

import { sleep } from "../timers.ts";
import { formatTarget } from "./address.ts";

/** Pending connections the kernel may queue per listener while a wake is under way. */
const BACKLOG = 4096;
/** How long a port that a listener of this process has just closed may stay busy. */
const FREED_WAIT_MS = 2_000;
/** How often it is tried meanwhile. */
const FREED_RETRY_MS = 10;

/**
 * Listens on `port` at each address. `::` listens on every IPv6 and IPv4
 * address; where the machine has no IPv6 it falls back to `0.0.0.0`.
 *
 * @throws {Error} naming the address and the reason (e.g. "address already in
 * use"); listeners opened before the failure are closed again
 */
export function listenAll(addresses: string[], port: number): Deno.TcpListener[] {
  const listeners: Deno.TcpListener[] = [];
  try {
    for (const hostname of addresses) {
      listeners.push(listenOne(hostname, port));
    }
    return listeners;
  } catch (error) {
    for (const listener of listeners) listener.close();
    throw error;
  }
}

/**
 * {@linkcode listenAll} on a port that a listener of this process has just
 * closed (a reload moving it): the runtime frees the port a moment after the
 * listener's accept loop has ended, so "address already in use" is tried
 * again, every 10 ms for up to 2 s (docs/ARCHITECTURE.md, "Reload and
 * shutdown").
 *
 * @throws {Error} as listenAll does, once the port is still in use after that
 */
export async function listenAllWhenFreed(
  addresses: string[],
  port: number,
): Promise<Deno.TcpListener[]> {
  const deadline = Date.now() + FREED_WAIT_MS;
  while (true) {
    try {
      return listenAll(addresses, port);
    } catch (error) {
      const inUse = (error as Error).cause instanceof Deno.errors.AddrInUse;
      if (!inUse || Date.now() >= deadline) throw error;
      await sleep(FREED_RETRY_MS);
    }
  }
}

function listenOne(hostname: string, port: number): Deno.TcpListener {
  try {
    return Deno.listen({ hostname, port, tcpBacklog: BACKLOG });
  } catch (error) {
    if (hostname === "::" && !(error instanceof Deno.errors.AddrInUse)) {
      return listenOne("0.0.0.0", port);
    }
    const reason = error instanceof Deno.errors.AddrInUse
      ? "address already in use"
      : error instanceof Error
      ? error.message
      : String(error);
    throw new Error(`Cannot listen on ${formatTarget({ hostname, port })}: ${reason}`, {
      cause: error,
    });
  }
}
