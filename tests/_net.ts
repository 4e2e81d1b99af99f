/**
 * Helpers for tests on real sockets: local listeners, free ports, reading to
 * the end, checksums.
 *
 * @module
 */

export { isAlive } from "../src/process/proc_stat.ts";
export { writeAll } from "../src/net/conn.ts";
import { Budget } from "../src/net/budget.ts";
import { bindAll, closeSocket, OrderedSender, receiveAll } from "../src/net/datagram.ts";

/** Listens on 127.0.0.1 on a port the kernel picks. */
export function listenLocal(): Deno.TcpListener {
  return Deno.listen({ hostname: "127.0.0.1", port: 0 });
}

/** A TCP port that was free a moment ago (for configs that need a fixed port). */
export function freePort(): number {
  const listener = listenLocal();
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** Whether nothing accepts connections on 127.0.0.1:`port` (the server there is gone). */
export async function refuses(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return false;
  } catch {
    return true;
  }
}

/** Reads `conn` until EOF (or a reset) and returns everything it sent. */
export async function readAll(conn: Deno.Conn): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      chunks.push(buffer.slice(0, n));
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
  }
  const all = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all;
}

/** Reads exactly `size` bytes from `conn`; fails at an early EOF. */
export async function readExactly(
  conn: Deno.Conn,
  size: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const data = new Uint8Array(size);
  let at = 0;
  while (at < size) {
    const n = await conn.read(data.subarray(at));
    if (n === null) throw new Error(`EOF after ${at} of ${size} bytes`);
    at += n;
  }
  return data;
}

/** Hex SHA-256 of `data`. */
export async function sha256(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** `size` pseudo-random bytes (random enough to catch reordering or loss). */
export function randomBytes(size: number): Uint8Array<ArrayBuffer> {
  const data = new Uint8Array(size);
  for (let offset = 0; offset < size; offset += 65536) {
    crypto.getRandomValues(data.subarray(offset, Math.min(offset + 65536, size)));
  }
  return data;
}

/** Text of a byte array. */
export function text(data: Uint8Array): string {
  return new TextDecoder().decode(data);
}

/** A UDP client on 127.0.0.1: its datagrams go out in order; it keeps the replies. */
export function udpClient(): Promise<{
  send(port: number, text: string): void;
  replies: string[];
  close(): void;
}> {
  const [socket] = bindAll(["127.0.0.1"], 0);
  const sender = new OrderedSender(socket, new Budget(), (why, _count, error) => {
    throw error ?? new Error(`a datagram was not sent: ${why}`);
  });
  const replies: string[] = [];
  receiveAll(socket, (data) => replies.push(text(data)), (error) => {
    throw error;
  });
  return Promise.resolve({
    send: (port, message) =>
      sender.send(new TextEncoder().encode(message), {
        transport: "udp",
        hostname: "127.0.0.1",
        port,
      }),
    replies,
    close: () => {
      sender.close();
      closeSocket(socket);
    },
  });
}
