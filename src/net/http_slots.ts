/**
 * What the HTTP side of the daemon may hold at once: connections, and among
 * them event streams, each kind with its cap. Every connection and stream the
 * HTTP server keeps is acquired and released here, and nowhere else
 * (docs/ARCHITECTURE.md, "HTTP server"). A connection also counts in the
 * daemon's budget, as `http`, whose share of the open file limit may be
 * smaller than the cap here when the limit is low (docs/ARCHITECTURE.md,
 * "Budget").
 *
 * @module
 */

import type { Budget } from "./budget.ts";

/** A kind of slot: any HTTP connection, or one of them that streams events. */
export type SlotKind = "connection" | "stream";

/**
 * Connections the HTTP server holds at most (one descriptor each): also the
 * HTTP share the budget plans for when METRICS_ADDRESS is set.
 */
export const MAX_HTTP_CONNECTIONS = 128;

/** Event streams (`/api/live`) open at most, each also one of the connections. */
export const MAX_HTTP_STREAMS = 32;

/** The caps of each kind. */
export type SlotCaps = Record<SlotKind, number>;

/** Counts what the HTTP side holds, against a cap per kind. */
export class HttpSlots {
  readonly #caps: SlotCaps;
  readonly #budget?: Budget;
  readonly #held: Record<SlotKind, number> = { connection: 0, stream: 0 };

  /**
   * Creates the slots with `caps`, the defaults above unless told otherwise;
   * each connection also counts in `budget`, when there is one.
   */
  constructor(
    caps: SlotCaps = { connection: MAX_HTTP_CONNECTIONS, stream: MAX_HTTP_STREAMS },
    budget?: Budget,
  ) {
    this.#caps = caps;
    this.#budget = budget;
  }

  /**
   * Takes a slot of `kind` if one is free, and for a connection the budget's
   * room for it; the caller releases it when done.
   */
  tryAcquire(kind: SlotKind): boolean {
    if (this.#held[kind] >= this.#caps[kind]) return false;
    if (kind === "connection" && this.#budget && !this.#budget.acquire("http")) return false;
    this.#held[kind]++;
    return true;
  }

  /** Gives back a slot that {@linkcode tryAcquire} gave. */
  release(kind: SlotKind): void {
    if (this.#held[kind] === 0) return;
    this.#held[kind]--;
    if (kind === "connection") this.#budget?.release("http");
  }

  /** Why a slot of `kind` is refused now, in words. */
  full(kind: SlotKind): string {
    if (this.#held[kind] < this.#caps[kind] && kind === "connection" && this.#budget) {
      return this.#budget.full("http");
    }
    return `${this.#held[kind]} are open, the most it holds`;
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
