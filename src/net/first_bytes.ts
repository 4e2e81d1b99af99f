/**
 * Reading the first bytes of a connection on a port routed by name, until
 * they say which name it is for: a TLS ClientHello's server name
 * (`sni.ts`) or an HTTP/1.x request head's host (`http_head.ts`), within a
 * size bound and a time limit (docs/ARCHITECTURE.md, "Ports shared by
 * name"). Every byte read is kept: the backend gets them first, intact.
 *
 * @module
 */

import { type HttpOutcome, type RequestHead, RequestHeadReader } from "./http_head.ts";
import { ClientHelloReader, TLS_HANDSHAKE, type TlsOutcome } from "./sni.ts";

/**
 * The most bytes read before choosing: a ClientHello of 16 KiB with its
 * record headers (it may span records), or a request head as large as
 * nginx takes by default.
 */
export const MAX_FIRST_BYTES = 32 * 1024;

/** The first read's room; it doubles as bytes come, up to the bound. */
const FIRST_ROOM = 4 * 1024;

/** What the first bytes said, or why they said nothing. */
export type FirstBytesOutcome =
  /** A TLS ClientHello, with the server name it asks for, if any (as sent). */
  | { kind: "tls"; name?: string }
  /** An HTTP/1.x request head. */
  | { kind: "http"; head: RequestHead }
  /** Neither TLS nor HTTP/1.x: another protocol, or HTTP/2 without TLS. */
  | { kind: "other"; reason: string }
  /** A ClientHello or request head that breaks the rules. */
  | { kind: "malformed"; protocol: "tls" | "http"; reason: string }
  /** No name within {@linkcode MAX_FIRST_BYTES}. */
  | { kind: "too-long"; protocol: "tls" | "http" }
  /** Not enough within the time limit. */
  | { kind: "timeout" }
  /** The client closed its side, or its connection broke, before saying enough. */
  | { kind: "closed"; reason: string }
  /** The memory to read more was refused (`room` said no). */
  | { kind: "no-room" };

/** The first bytes of a connection and what they said. */
export interface FirstBytes {
  /** Every byte read, in order: the backend gets them first. */
  bytes: Uint8Array;
  /** What they said. */
  outcome: FirstBytesOutcome;
}

/**
 * Looks at a connection's first bytes as they arrive. The first byte tells
 * TLS (a handshake record) from HTTP (a method's first letter); anything
 * else is another protocol.
 */
export class FirstBytesReader {
  #reader?: ClientHelloReader | RequestHeadReader;

  /**
   * Looks at every byte read so far (`bytes` grows from call to call).
   *
   * @returns what they say, or undefined while more are needed
   */
  update(bytes: Uint8Array): FirstBytesOutcome | undefined {
    if (bytes.length === 0) return undefined;
    if (!this.#reader) {
      if (bytes[0] === TLS_HANDSHAKE) this.#reader = new ClientHelloReader();
      else if (isTokenByte(bytes[0]) || bytes[0] === 0x0d || bytes[0] === 0x0a) {
        this.#reader = new RequestHeadReader();
      } else return { kind: "other", reason: `its first byte is 0x${hex(bytes[0])}` };
    }
    return this.#reader instanceof ClientHelloReader
      ? fromTls(this.#reader.update(bytes))
      : fromHttp(this.#reader.update(bytes));
  }

  /** The protocol its first byte said, once there is one. */
  get protocol(): "tls" | "http" | undefined {
    if (!this.#reader) return undefined;
    return this.#reader instanceof ClientHelloReader ? "tls" : "http";
  }
}

/** What the connection reads from: a client connection, or anything that reads alike. */
export type Readable = Pick<Deno.Conn, "read">;

/** How {@linkcode readFirstBytes} reads. */
export interface FirstBytesOptions {
  /** Milliseconds the client has to send enough. */
  timeoutMs: number;
  /** The most bytes read; {@linkcode MAX_FIRST_BYTES} unless said. */
  maxBytes?: number;
  /** Told after each read that did not decide yet, with the bytes read so far. */
  onUndecided?: (bytes: number) => void;
  /**
   * Asked before the buffer takes memory, with the bytes it adds: its first
   * room (4 KiB), then each time it doubles. False ends the read at once
   * (`no-room`). What it allowed in all is the buffer's size.
   */
  room?: (bytes: number) => boolean;
}

/**
 * Reads `conn` until its first bytes say which name they are for, or say
 * they never will. Never reads past `maxBytes`; never throws. On a timeout
 * a read may still be under way: close the connection, which ends it.
 */
export async function readFirstBytes(
  conn: Readable,
  options: FirstBytesOptions,
): Promise<FirstBytes> {
  const max = options.maxBytes ?? MAX_FIRST_BYTES;
  const room = options.room ?? (() => true);
  const reader = new FirstBytesReader();
  const firstRoom = Math.min(FIRST_ROOM, max);
  if (!room(firstRoom)) return { bytes: new Uint8Array(0), outcome: { kind: "no-room" } };
  let buffer = new Uint8Array(firstRoom);
  let length = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), options.timeoutMs);
  });
  const done = (outcome: FirstBytesOutcome): FirstBytes => {
    clearTimeout(timer);
    return { bytes: buffer.subarray(0, length), outcome };
  };
  while (true) {
    if (length === buffer.length) {
      if (length >= max) return done({ kind: "too-long", protocol: reader.protocol! });
      const size = Math.min(buffer.length * 2, max);
      if (!room(size - buffer.length)) return done({ kind: "no-room" });
      const grown = new Uint8Array(size);
      grown.set(buffer);
      buffer = grown;
    }
    const reading = conn.read(buffer.subarray(length));
    let n: number | null | "timeout";
    try {
      n = await Promise.race([reading, timeout]);
    } catch (error) {
      return done({ kind: "closed", reason: `its connection broke: ${(error as Error).message}` });
    }
    if (n === "timeout") {
      reading.catch(() => {}); // ended by the caller's close
      return done({ kind: "timeout" });
    }
    if (n === null) {
      return done({
        kind: "closed",
        reason: length === 0
          ? "it closed the connection before sending anything"
          : `it closed its side after ${length} bytes`,
      });
    }
    length += n;
    const outcome = reader.update(buffer.subarray(0, length));
    if (outcome) return done(outcome);
    options.onUndecided?.(length);
  }
}

function fromTls(outcome: TlsOutcome | undefined): FirstBytesOutcome | undefined {
  switch (outcome?.kind) {
    case undefined:
      return undefined;
    case "name":
      return { kind: "tls", name: outcome.name };
    case "no-name":
      return { kind: "tls" };
    case "malformed":
      return { kind: "malformed", protocol: "tls", reason: outcome.reason };
  }
}

function fromHttp(outcome: HttpOutcome | undefined): FirstBytesOutcome | undefined {
  switch (outcome?.kind) {
    case undefined:
      return undefined;
    case "head":
      return { kind: "http", head: outcome.head };
    case "not-http":
      return { kind: "other", reason: outcome.reason };
    case "malformed":
      return { kind: "malformed", protocol: "http", reason: outcome.reason };
  }
}

/** Whether `byte` may begin an HTTP method (a token character). */
function isTokenByte(byte: number): boolean {
  return (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) ||
    (byte >= 0x30 && byte <= 0x39) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(byte));
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}
