/**
 * Holding a client while its backend wakes: its bytes are read and kept (up
 * to a bound), so that a client that leaves is noticed at once, and a client
 * that speaks first can be told from one that only connects; the bytes reach
 * the backend first, intact, when the hold ends.
 *
 * The bytes are read straight into blocks, each read filling the rest of the
 * last block, so that what is kept is what was sent: a client that sends one
 * byte per packet keeps one byte per byte. A block is 1 KiB, or four times
 * the one before when one read filled that one whole (a client sending in
 * bulk), up to 64 KiB in all; the bytes read before the hold (the first
 * bytes of a port routed by name) are a block of their own, of their exact
 * size. Every block counts in the budget's held bytes
 * until it has been forwarded or the hold ends (docs/ARCHITECTURE.md,
 * "Admission and holding").
 *
 * @module
 */

import type { Budget } from "./budget.ts";
import type { Stream } from "./forward.ts";

/** Bytes kept for a held client; past them it is no longer read (the kernel holds the rest). */
const HOLD_LIMIT_BYTES = 64 * 1024;
/** The first block, and every block after one that a read did not fill to its end. */
const FIRST_BLOCK = 1024;

/** A block of a held client's bytes: filled from the start, forwarded from `taken`. */
interface Block {
  data: Uint8Array;
  filled: number;
  taken: number;
}

/** A client connection that is read, and kept, while it waits. */
export class ClientHold implements Stream {
  readonly #conn: Deno.Conn;
  readonly #budget: Budget;
  readonly #blocks: Block[] = [];
  /** Bytes of the blocks made so far: the hold's bound. */
  #made = 0;
  /** Whether the last read filled a whole block at once: the next block grows. */
  #filledLast = false;
  /** The read under way, if any: it belongs to whoever reads next. */
  #pending?: Promise<void>;
  #ended = false;
  #error?: Error;
  #holding = true;
  /** Whether the hold has given its blocks back for good. */
  #freed = false;
  /** Whether the client has sent a byte (whoever has read it since). */
  #sent = false;
  readonly #data = Promise.withResolvers<void>();
  readonly #gone = Promise.withResolvers<string>();

  /**
   * Holds `conn`, after `first` (bytes read from it already: the first
   * bytes of a port routed by name, kept as a block of their own), its first
   * block counted in `budget`; undefined when the budget's held bytes have no
   * room for it (the caller refuses the client).
   */
  static open(conn: Deno.Conn, budget: Budget, first?: Uint8Array): ClientHold | undefined {
    // An exact copy of a part of a larger buffer, so that what is kept is what is counted.
    const data = first === undefined || first.length === 0
      ? new Uint8Array(FIRST_BLOCK)
      : first.byteLength === first.buffer.byteLength
      ? first
      : first.slice();
    if (!budget.hold("tcp_held", data.length)) return undefined;
    return new ClientHold(conn, budget, data, first !== undefined && first.length > 0);
  }

  private constructor(conn: Deno.Conn, budget: Budget, data: Uint8Array, sent: boolean) {
    this.#conn = conn;
    this.#budget = budget;
    this.#made = data.length;
    this.#blocks.push({ data, filled: sent ? data.length : 0, taken: 0 });
    if (sent) {
      this.#sent = true;
      this.#data.resolve();
    }
    this.#readAhead();
  }

  /** Resolves once the client has sent its first byte. */
  get data(): Promise<void> {
    return this.#data.promise;
  }

  /**
   * Resolves, with why, when the client has left while held: it closed its
   * side before sending anything (nothing to forward), or its connection
   * broke. A client that sent bytes and then closed its side is not gone: the
   * bytes are forwarded and the half-close passed on.
   */
  get gone(): Promise<string> {
    return this.#gone.promise;
  }

  /**
   * Ends the hold: no more reading ahead. Reads then return the held bytes,
   * the read under way, and go to the connection itself after that.
   */
  release(): this {
    this.#holding = false;
    return this;
  }

  /** Reads the held bytes first, then the read under way, then the connection itself. */
  async read(buffer: Uint8Array): Promise<number | null> {
    let block = this.#firstUnread();
    if (block === undefined && this.#pending) {
      await this.#pending;
      block = this.#firstUnread();
    }
    if (block === undefined) {
      this.free();
      if (this.#error) throw this.#error;
      return this.#ended ? null : await this.#conn.read(buffer);
    }
    const n = Math.min(block.filled - block.taken, buffer.length);
    buffer.set(block.data.subarray(block.taken, block.taken + n));
    block.taken += n;
    return n;
  }

  /** Writes to the client. */
  write(chunk: Uint8Array): Promise<number> {
    return this.#conn.write(chunk);
  }

  /** Half-closes the client's side. */
  closeWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }

  /** Closes the client and gives back what it held. */
  close(): void {
    this.free();
    this.#conn.close();
  }

  /** Gives back every block for good, whatever it still holds: the hold is over. Called again, does nothing. */
  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    this.#holding = false;
    for (const block of this.#blocks) this.#budget.free("tcp_held", block.data.length);
    this.#blocks.length = 0;
  }

  /**
   * The oldest block with bytes not yet read; blocks read to their end (and
   * filled to it, or no longer filled) are given back on the way.
   */
  #firstUnread(): Block | undefined {
    while (this.#blocks.length > 0) {
      const block = this.#blocks[0];
      if (block.taken < block.filled) return block;
      const last = this.#blocks.length === 1;
      if (last && block.filled < block.data.length && (this.#holding || this.#pending)) {
        return undefined;
      }
      this.#blocks.shift();
      this.#budget.free("tcp_held", block.data.length);
    }
    return undefined;
  }

  /** Makes the next block, counted in the budget; false past the hold's bound or the budget's. */
  #addBlock(): boolean {
    const last = this.#blocks.at(-1)?.data.length ?? FIRST_BLOCK;
    const size = Math.min(this.#filledLast ? 4 * last : FIRST_BLOCK, HOLD_LIMIT_BYTES - this.#made);
    if (size <= 0 || !this.#budget.hold("tcp_held", size)) return false;
    this.#made += size;
    this.#blocks.push({ data: new Uint8Array(size), filled: 0, taken: 0 });
    return true;
  }

  /** Reads while held, one read at a time, into the rest of the last block, until a bound, the end, or an error. */
  #readAhead() {
    if (!this.#holding || this.#ended || this.#error) return;
    let block = this.#blocks.at(-1);
    if (block === undefined || block.filled === block.data.length) {
      if (!this.#addBlock()) return;
      block = this.#blocks.at(-1)!;
    }
    const into = block;
    const pending = this.#conn.read(into.data.subarray(into.filled)).then(
      (n) => {
        this.#pending = undefined;
        if (n === null) {
          this.#ended = true;
          if (!this.#sent) this.#gone.resolve("it closed the connection before sending anything");
          return;
        }
        into.filled += n;
        this.#filledLast = n === into.data.length;
        this.#sent = true;
        this.#data.resolve();
        this.#readAhead();
      },
      (error: Error) => {
        this.#pending = undefined;
        this.#error = error;
        this.#gone.resolve(`its connection broke: ${error.message}`);
      },
    );
    this.#pending = pending;
  }
}
