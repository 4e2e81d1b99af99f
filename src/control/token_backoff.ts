/**
 * Guessing the API token, slowed down: each source (an IPv4 address, or an
 * IPv6 /64) that sent wrong tokens in a row must wait before its next try
 * counts, longer after each one; and the lines that say so are few, whatever
 * the rate of tries (docs/ARCHITECTURE.md, "Wake API").
 *
 * @module
 */

import { sourceOf } from "../net/address.ts";

/** Wrong tokens in a row a source may send before it must wait. */
export const FREE_FAILURES = 5;
/** The first wait; each further wrong token doubles it. */
export const FIRST_WAIT_MS = 30_000;
/** The longest wait. */
export const MAX_WAIT_MS = 15 * 60_000;
/** Sources followed at most; past it, the one quiet the longest is forgotten. */
const MAX_SOURCES = 10_000;
/** A source quiet this long is forgotten: its count begins again. */
const FORGET_MS = 60 * 60_000;
/** Refusal lines in any minute, over every source; past it they are counted, not written. */
const LINES_PER_MINUTE = 20;

/** What a wrong token leads to: whether to log it, and how long the source now waits. */
export interface Failure {
  /** The source the client counts as. */
  source: string;
  /** Wrong tokens in a row from it. */
  failures: number;
  /** Milliseconds before its next try counts; 0 when it need not wait. */
  waitMs: number;
  /** Whether this refusal gets a log line (the first of a source, or a new wait), within the line budget. */
  log: boolean;
  /** Refusals not logged since the last line that was (tries during waits, lines past the budget). */
  unlogged: number;
}

interface SourceState {
  failures: number;
  /** Epoch milliseconds before which tries are refused unread. */
  until: number;
  last: number;
}

/** Wrong tokens by source, and the waits they earned. */
export class TokenBackoff {
  readonly #sources = new Map<string, SourceState>();
  #lines = { minute: 0, count: 0 };
  #unlogged = 0;

  /** Milliseconds `peer`'s source must still wait before a try counts; 0 when it may try. */
  waitFor(peer: Deno.NetAddr, now = Date.now()): number {
    const state = this.#sources.get(sourceOf(peer.hostname));
    const left = state ? state.until - now : 0;
    if (left > 0) this.#unlogged++;
    return Math.max(0, left);
  }

  /** Counts a wrong token from `peer`; says how long its source now waits and whether to log. */
  failed(peer: Deno.NetAddr, now = Date.now()): Failure {
    const source = sourceOf(peer.hostname);
    const before = this.#sources.get(source);
    const state: SourceState = before && now - before.last < FORGET_MS
      ? before
      : { failures: 0, until: 0, last: now };
    state.failures++;
    state.last = now;
    const beyond = state.failures - FREE_FAILURES;
    const waitMs = beyond < 0 ? 0 : Math.min(FIRST_WAIT_MS * 2 ** beyond, MAX_WAIT_MS);
    state.until = now + waitMs;
    // Map order is insertion order: re-inserting keeps the quietest source first.
    this.#sources.delete(source);
    this.#sources.set(source, state);
    if (this.#sources.size > MAX_SOURCES) {
      this.#sources.delete(this.#sources.keys().next().value!);
    }
    const wanted = state.failures === 1 || waitMs > 0;
    const log = wanted && this.#withinLineBudget(now);
    if (!log) {
      this.#unlogged++;
      return { source, failures: state.failures, waitMs, log, unlogged: 0 };
    }
    const unlogged = this.#unlogged;
    this.#unlogged = 0;
    return { source, failures: state.failures, waitMs, log, unlogged };
  }

  /** Forgets the wrong tokens of `peer`'s source: it sent the right one. */
  succeeded(peer: Deno.NetAddr): void {
    this.#sources.delete(sourceOf(peer.hostname));
  }

  #withinLineBudget(now: number): boolean {
    const minute = Math.floor(now / 60_000);
    if (minute !== this.#lines.minute) this.#lines = { minute, count: 0 };
    return ++this.#lines.count <= LINES_PER_MINUTE;
  }
}
