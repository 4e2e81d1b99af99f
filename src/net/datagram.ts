/**
 * UDP sockets: a service's listening sockets, and one connected socket per
 * client flow towards the backend. They come from `node:dgram`, as Deno's own
 * UDP API still needs `--unstable-net`.
 *
 * @module
 */

import dgram from "node:dgram";
import { formatTarget, type Target } from "./address.ts";

/** A UDP socket. */
export type UdpSocket = dgram.Socket;

/**
 * Binds a UDP socket on `port` at each address. `::` receives on every IPv6
 * and IPv4 address; where the machine has no IPv6 it falls back to `0.0.0.0`.
 *
 * @throws {Error} naming the address and the reason (e.g. "address already in
 * use"); sockets bound before the failure are closed again
 */
export async function bindAll(addresses: string[], port: number): Promise<UdpSocket[]> {
  const sockets: UdpSocket[] = [];
  try {
    for (const hostname of addresses) sockets.push(await bindOne(hostname, port));
    return sockets;
  } catch (error) {
    for (const socket of sockets) socket.close();
    throw error;
  }
}

async function bindOne(hostname: string, port: number): Promise<UdpSocket> {
  const socket = dgram.createSocket({ type: familyOf(hostname), ipv6Only: false });
  try {
    await bind(socket, port, hostname);
    return socket;
  } catch (error) {
    socket.close();
    const inUse = (error as { code?: string }).code === "EADDRINUSE";
    if (hostname === "::" && !inUse) return bindOne("0.0.0.0", port);
    const reason = inUse ? "address already in use" : (error as Error).message;
    throw new Error(`Cannot listen on ${formatTarget({ hostname, port })}/udp: ${reason}`);
  }
}

/**
 * A socket bound to a port the kernel picks and connected to `target`, so
 * that only the backend's datagrams reach it: one per client flow.
 *
 * @throws {Error} when it cannot be made (out of file descriptors, no route)
 */
export async function connectDatagram(target: Target): Promise<UdpSocket> {
  const socket = dgram.createSocket(familyOf(target.hostname));
  try {
    await bind(socket, 0, target.hostname.includes(":") ? "::" : "0.0.0.0");
    await new Promise<void>((resolve, reject) => {
      socket.connect(target.port, target.hostname, (error?: Error) => {
        if (error) reject(error);
        else resolve();
      });
    });
    return socket;
  } catch (error) {
    socket.close();
    throw error;
  }
}

/**
 * Sends a socket's datagrams one at a time, in the order given. Deno's
 * `node:dgram` sends datagrams issued in one go in reverse order; waiting for
 * each send to be handed to the kernel before the next keeps them in order.
 */
export class OrderedSender {
  readonly #socket: UdpSocket;
  readonly #onError: (error: Error) => void;
  #queue: { data: Uint8Array; port?: number; address?: string }[] = [];
  #sending = false;

  /** Sends on `socket`; `onError` hears of each datagram the kernel would not take. */
  constructor(socket: UdpSocket, onError: (error: Error) => void) {
    this.#socket = socket;
    this.#onError = onError;
  }

  /** Sends `data` after those sent before: to `port` and `address`, or where it is connected. */
  send(data: Uint8Array, port?: number, address?: string): void {
    this.#queue.push({ data, port, address });
    if (!this.#sending) this.#next();
  }

  #next() {
    const item = this.#queue.shift();
    if (!item) {
      this.#sending = false;
      return;
    }
    this.#sending = true;
    const done = (error?: Error | null) => {
      if (error) this.#onError(error);
      this.#next();
    };
    try {
      if (item.port === undefined) this.#socket.send(item.data, done);
      else this.#socket.send(item.data, item.port, item.address, done);
    } catch (error) {
      // Closed meanwhile: nothing more goes out.
      this.#queue = [];
      this.#sending = false;
      this.#onError(error as Error);
    }
  }
}

/** Closes a socket that may be closed already. */
export function closeSocket(socket: UdpSocket): void {
  try {
    socket.close();
  } catch {
    // Closed already.
  }
}

function familyOf(hostname: string): "udp4" | "udp6" {
  return hostname.includes(":") ? "udp6" : "udp4";
}

function bind(socket: UdpSocket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.bind({ port, address, exclusive: true }, () => {
      socket.off("error", reject);
      resolve();
    });
  });
}
