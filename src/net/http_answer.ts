/**
 * Answers sleepingd itself gives over HTTP/1.x before closing a client: a
 * refusal on a port shared by name (421, 400, 431), the waiting page (503).
 *
 * @module
 */

import { writeAll } from "./conn.ts";
import type { Stream } from "./forward.ts";

/** How long a client answered gets to read the answer and close its side. */
const LINGER_MS = 2_000;
/** The most bytes read from it meanwhile. */
const LINGER_BYTES = 64 * 1024;

const ENCODER = new TextEncoder();

/** An answer's status line and headers. */
export interface AnswerHead {
  /** The status code, e.g. 421. */
  status: number;
  /** Its reason phrase, e.g. `Misdirected Request`. */
  reason: string;
  /** More headers, by name. */
  headers?: Record<string, string>;
}

/**
 * An HTTP/1.1 answer that closes the connection, with `body` (not sent
 * after a HEAD, but counted in Content-Length).
 */
export function httpAnswer(head: AnswerHead, body: string, method = "GET"): Uint8Array {
  const bytes = ENCODER.encode(body);
  const headers = {
    "content-type": "text/plain; charset=utf-8",
    ...head.headers,
    "content-length": String(bytes.length),
    "connection": "close",
  };
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join("");
  const start = ENCODER.encode(`HTTP/1.1 ${head.status} ${head.reason}\r\n${lines}\r\n`);
  if (method === "HEAD") return start;
  const all = new Uint8Array(start.length + bytes.length);
  all.set(start);
  all.set(bytes, start.length);
  return all;
}

/**
 * Writes `answer`, half-closes, then reads what the client still sends
 * until it closes its side (at most 2 s and 64 KiB): closing with unread
 * bytes would reset the connection, and the client could lose the answer.
 * The caller closes the connection after. Never throws.
 */
export async function answerAndLinger(conn: Stream, answer: Uint8Array): Promise<void> {
  try {
    await writeAll(conn, answer);
    await conn.closeWrite();
  } catch {
    return; // the client is gone, or broke the connection: the answer is lost with it
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const over = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), LINGER_MS));
  const buffer = new Uint8Array(4096);
  try {
    for (let read = 0; read < LINGER_BYTES;) {
      const reading = conn.read(buffer);
      const n = await Promise.race([reading, over]);
      if (n === null) {
        reading.catch(() => {}); // ended by the caller's close
        return;
      }
      read += n;
    }
  } catch {
    // The client is gone: nothing more to wait for.
  } finally {
    clearTimeout(timer);
  }
}
