/**
 * The wire protocol between the bench's client and `bench/backend.ts`.
 *
 * Every connection starts with one header byte that picks the mode:
 * - {@linkcode SINK}: the backend discards every following byte and, at the
 *   client's end of stream, answers the count in decimal plus `"\n"`, then closes.
 * - {@linkcode ECHO}: the backend sends every following byte back, and passes
 *   the client's end of stream on (half-close).
 *
 * The header byte itself is neither counted nor echoed. A connection that ends
 * before its header (a readiness probe) is just closed.
 *
 * @module
 */

/** Header byte of a sink connection ("S"). */
export const SINK = 0x53;
/** Header byte of an echo connection ("E"). */
export const ECHO = 0x45;

/** Writes every byte of a chunk, looping over short writes (the proxy's own helper). */
export { writeAll } from "../src/net/conn.ts";
