/**
 * The wire protocol between the bench's client and `bench/backend.ts`.
 *
 * Every connection starts with one header byte that picks the mode:
 * - {@linkcode SINK}: 8 bytes follow, a big-endian length; the backend
 *   discards that many bytes, answers the count in decimal plus `"\n"`, then
 *   closes (or answers what it got, if the stream ends first).
 * - {@linkcode ECHO}: the backend sends every following byte back, and passes
 *   the client's end of stream on (half-close).
 *
 * The client never needs to half-close: it knows how many bytes come back.
 * Proxies that cannot pass a half-close on (systemd-socket-proxyd closes
 * both ways at the first end of stream) are measured like the others.
 *
 * The header byte itself is neither counted nor echoed. A connection that ends
 * before its header is just closed.
 *
 * @module
 */

/** Header byte of a sink connection ("S"). */
export const SINK = 0x53;
/** Header byte of an echo connection ("E"). */
export const ECHO = 0x45;
/** Bytes of the length after {@linkcode SINK}. */
export const LENGTH_BYTES = 8;

/** The start of a sink connection that sends `bytes`: the header and the length. */
export function sinkHeader(bytes: number): Uint8Array {
  const header = new Uint8Array(1 + LENGTH_BYTES);
  header[0] = SINK;
  new DataView(header.buffer).setBigUint64(1, BigInt(bytes));
  return header;
}

/** Writes every byte of a chunk, looping over short writes (the proxy's own helper). */
export { writeAll } from "../src/net/conn.ts";
