/**
 * UDP sockets: a service's listening sockets, and one socket per client flow
 * towards the backend; receiving into one buffer per socket, and sending in
 * order through a bounded queue (docs/ARCHITECTURE.md, "Ports and UDP").
 *
 * They are Deno's own (`Deno.listenDatagram`, which needs `--unstable-net`):
 * `node:dgram` allocated (and zeroed) a 64 KiB buffer for every datagram it
 * received and copied every one it sent, which a profile under `iperf3 -u`
 * showed as the datagram path's largest cost after the system calls.
 *
 * @module
 */

import { lookup } from "node:dns/promises";
import ipaddr from "ipaddr.js";
import type { Budget } from "./budget.ts";
import { formatTarget, type Target } from "./address.ts";

/** A UDP socket. */
export type UdpSocket = Deno.DatagramConn;

/** The largest datagram a socket receives whole: UDP's own limit. */
const MAX_DATAGRAM = 65536;

/**
 * What keeps a datagram that waits besides its bytes: its own buffer's
 * objects and allocation, about 560-650 bytes as measured on Deno 2.9.
 */
const DATAGRAM_OVERHEAD = 640;

/** The memory a datagram of `length` bytes keeps while it waits: its copy and what holds it. */
export function datagramCost(length: number): number {
  return length + DATAGRAM_OVERHEAD;
}

/** Whether Deno's datagram sockets are there: the runtime was started with `--unstable-net`. */
export function datagramsAvailable(): boolean {
  return typeof Deno.listenDatagram === "function";
}

/**
 * Binds a UDP socket on `port` at each address. `::` receives on every IPv6
 * and IPv4 address; where the machine has no IPv6 it falls back to `0.0.0.0`.
 *
 * @throws {Error} naming the address and the reason (e.g. "address already in
 * use"); sockets bound before the failure are closed again
 */
export function bindAll(addresses: string[], port: number): UdpSocket[] {
  const sockets: UdpSocket[] = [];
  try {
    for (const hostname of addresses) sockets.push(bindOne(hostname, port));
    return sockets;
  } catch (error) {
    for (const socket of sockets) closeSocket(socket);
    throw error;
  }
}

function bindOne(hostname: string, port: number): UdpSocket {
  const where = `${formatTarget({ hostname, port })}/udp`;
  if (!datagramsAvailable()) {
    throw new Error(
      `Cannot listen on ${where}: UDP needs Deno's --unstable-net (deno.json sets it; the ` +
        "packaged sleepingd has it)",
    );
  }
  try {
    return Deno.listenDatagram({ hostname, port, transport: "udp" });
  } catch (error) {
    const inUse = error instanceof Deno.errors.AddrInUse;
    if (hostname === "::" && !inUse) return bindOne("0.0.0.0", port);
    const reason = inUse ? "address already in use" : (error as Error).message;
    throw new Error(`Cannot listen on ${where}: ${reason}`);
  }
}

/**
 * A socket for one client flow towards `target`, bound to a port the kernel
 * picks (on the loopback address when the target is on it): the backend sees
 * each client's flow as a client of its own, and its replies come back here.
 *
 * @throws {Error} when it cannot be made (out of file descriptors)
 */
export function openFlowSocket(target: Target): UdpSocket {
  const v6 = target.hostname.includes(":");
  const loopback = v6 ? target.hostname === "::1" : target.hostname.startsWith("127.");
  const hostname = loopback ? target.hostname : v6 ? "::" : "0.0.0.0";
  return Deno.listenDatagram({ hostname, port: 0, transport: "udp" });
}

/**
 * `target` as an address to send datagrams to: an IP address as it is, a
 * host name looked up once (as the system does: /etc/hosts, then DNS).
 *
 * @throws {Error} when the name cannot be looked up
 */
export async function resolveTarget(target: Target): Promise<Deno.NetAddr> {
  const address = ipaddr.isValid(target.hostname)
    ? target.hostname
    : (await lookup(target.hostname)).address;
  return { transport: "udp", hostname: address, port: target.port };
}

/** Whether a datagram from `from` came from `peer` (an IPv4-mapped address is its IPv4 one). */
export function isFrom(from: Deno.NetAddr, peer: Deno.NetAddr): boolean {
  if (from.port !== peer.port) return false;
  if (from.hostname === peer.hostname) return true;
  try {
    return ipaddr.process(from.hostname).toString() === ipaddr.process(peer.hostname).toString();
  } catch {
    return false;
  }
}

/** The pause after a receive that failed, so that a failure that repeats cannot spin. */
const RECEIVE_RETRY_MS = 10;

/**
 * Receives on `socket` until it is closed, handing each datagram to
 * `onDatagram` with who sent it. The datagram is a view of the socket's one
 * buffer, which the next datagram overwrites: copy what is kept.
 * `onError` hears of a failed receive that did not close the socket, and of
 * an error `onDatagram` threw; either way the socket goes on. Never rejects.
 */
export async function receiveAll(
  socket: UdpSocket,
  onDatagram: (data: Uint8Array, from: Deno.NetAddr) => void,
  onError: (error: Error) => void,
): Promise<void> {
  const buffer = new Uint8Array(MAX_DATAGRAM);
  while (true) {
    let received: [Uint8Array, Deno.Addr];
    try {
      received = await socket.receive(buffer);
    } catch (error) {
      if (isClosed(error)) return;
      onError(error as Error);
      await new Promise((resolve) => setTimeout(resolve, RECEIVE_RETRY_MS));
      continue;
    }
    try {
      onDatagram(received[0], received[1] as Deno.NetAddr);
    } catch (error) {
      onError(error as Error);
    }
  }
}

/** Why a datagram given to an {@linkcode OrderedSender} was not sent. */
export type SendDrop = "send_queue_full" | "held_bytes" | "send_failed";

/** Datagrams one socket may have waiting to be sent, at most. */
const SEND_QUEUE_DATAGRAMS = 1024;
/** Memory one socket may keep for datagrams waiting to be sent, each counted by {@linkcode datagramCost}. */
const SEND_QUEUE_BYTES = 1024 * 1024;

/** A datagram waiting to be sent. */
interface Outgoing {
  data: Uint8Array;
  to: Deno.NetAddr;
}

/**
 * Sends a socket's datagrams one at a time, in the order given. Deno sends
 * datagrams issued in one go in reverse order; waiting for each send before
 * the next keeps them in order. What waits meanwhile is bounded (1024
 * datagrams, 1 MiB) and counted in the budget's held bytes (`udp_sending`);
 * past either, a datagram is dropped and said.
 */
export class OrderedSender {
  readonly #socket: UdpSocket;
  readonly #budget: Budget;
  readonly #onDrop: (why: SendDrop, count: number, error?: Error) => void;
  #queue: (Outgoing | undefined)[] = [];
  /** The next datagram to send: the queue's head. */
  #head = 0;
  /** Memory kept by what waits. */
  #bytes = 0;
  #sending = false;
  #closed = false;

  /**
   * Sends on `socket`, what waits counted in `budget`; `onDrop` hears of
   * each datagram not sent, with why (and the error, when the kernel refused it).
   */
  constructor(
    socket: UdpSocket,
    budget: Budget,
    onDrop: (why: SendDrop, count: number, error?: Error) => void,
  ) {
    this.#socket = socket;
    this.#budget = budget;
    this.#onDrop = onDrop;
  }

  /**
   * Sends `data` to `to` after those given before. `data` is the sender's
   * from now on: a copy, never a view of a buffer that is reused.
   */
  send(data: Uint8Array, to: Deno.NetAddr): void {
    if (this.#closed) return this.#onDrop("send_failed", 1);
    const cost = datagramCost(data.length);
    const waiting = this.#queue.length - this.#head;
    if (waiting >= SEND_QUEUE_DATAGRAMS || this.#bytes + cost > SEND_QUEUE_BYTES) {
      return this.#onDrop("send_queue_full", 1);
    }
    if (!this.#budget.hold("udp_sending", cost)) return this.#onDrop("held_bytes", 1);
    this.#bytes += cost;
    this.#queue.push({ data, to });
    if (!this.#sending) this.#run();
  }

  /** Stops sending: what waits is dropped and given back. */
  close(): void {
    this.#closed = true;
    const dropped = this.#queue.length - this.#head;
    this.#budget.free("udp_sending", this.#bytes);
    this.#bytes = 0;
    this.#queue = [];
    this.#head = 0;
    if (dropped > 0) this.#onDrop("send_failed", dropped);
  }

  async #run() {
    this.#sending = true;
    while (this.#head < this.#queue.length) {
      const { data, to } = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined;
      try {
        await this.#socket.send(data, to);
      } catch (error) {
        if (this.#closed) break;
        if (isClosed(error)) {
          this.#give(data);
          this.close();
          this.#onDrop("send_failed", 1, error as Error);
          break;
        }
        this.#onDrop("send_failed", 1, error as Error);
      }
      if (this.#closed) break;
      this.#give(data);
      // Sent datagrams leave the array now and then, not one shift each.
      if (this.#head === this.#queue.length) {
        this.#queue = [];
        this.#head = 0;
      } else if (this.#head >= SEND_QUEUE_DATAGRAMS) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
    }
    this.#sending = false;
  }

  /** Uncounts a datagram that no longer waits. */
  #give(data: Uint8Array) {
    const cost = datagramCost(data.length);
    this.#bytes -= cost;
    this.#budget.free("udp_sending", cost);
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

/** Whether an error says that the socket was closed (under a receive or a send). */
function isClosed(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted;
}
