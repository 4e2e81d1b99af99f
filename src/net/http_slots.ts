/**
 * What the HTTP side of the daemon may hold at once: connections, and among
 * them event streams, each kind with its cap. Every connection and stream the
 * HTTP server keeps is acquired and released here, and nowhere else
 * (docs/ARCHITECTURE.md, "HTTP server").
 *
 * @module
 */

/** A kind of slot: any HTTP connection, or one of them that streams events. */
export type SlotKind = "connection" | "stream";

/** Connections the HTTP server holds at most (one descriptor each). */
export const MAX_HTTP_CONNECTIONS = 128;

/** Event streams (`/api/live`) open at most, each also one of the connections. */
export const MAX_HTTP_STREAMS = 32;

/** The caps of each kind. */
export type SlotCaps = Record<SlotKind, number>;

/** Counts what the HTTP side holds, against a cap per kind. */
export class HttpSlots {
  readonly #caps: SlotCaps;
  readonly #held: Record<SlotKind, number> = { connection: 0, stream: 0 };

  /** Creates the slots with `caps`, the defaults above unless told otherwise. */
  constructor(caps: SlotCaps = { connection: MAX_HTTP_CONNECTIONS, stream: MAX_HTTP_STREAMS }) {
    this.#caps = caps;
  }

  /** Takes a slot of `kind` if one is free; the caller releases it when done. */
  tryAcquire(kind: SlotKind): boolean {
    if (this.#held[kind] >= this.#caps[kind]) return false;
    this.#held[kind]++;
    return true;
  }

  /** Gives back a slot that {@linkcode tryAcquire} gave. */
  release(kind: SlotKind): void {
    this.#held[kind] = Math.max(0, this.#held[kind] - 1);
  }

  /** How many slots of `kind` are held now. */
  held(kind: SlotKind): number {
    return this.#held[kind];
  }

  /** The cap of `kind`. */
  cap(kind: SlotKind): number {
    return this.#caps[kind];
  }
}
