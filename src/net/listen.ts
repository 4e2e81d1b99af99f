/**
 * Opening the listening sockets of a service.
 *
 * @module
 */

import { formatTarget } from "./address.ts";

/** Pending connections the kernel may queue per listener while a wake is under way. */
const BACKLOG = 4096;

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
