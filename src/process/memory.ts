/**
 * Giving memory back to the system after a burst of connections.
 *
 * A daemon that goes quiet after thousands of connections keeps its peak
 * memory: V8 collects garbage only when JavaScript allocates, so the garbage
 * of the burst stays; and glibc's malloc keeps freed memory (the buffers of
 * the closed connections) in its heap. {@linkcode returnMemory} runs a full
 * garbage collection, then glibc's `malloc_trim(0)`, which hands the free
 * pages back. The daemon calls it once it is quiet (docs/ARCHITECTURE.md,
 * "Memory").
 *
 * @module
 */

import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** The process's resident memory, in bytes. */
export function residentBytes(): number {
  return Deno.memoryUsage().rss;
}

/** A full garbage collection, or undefined where V8 does not give one. */
let collectGarbage: (() => void) | undefined | null = null;
/** glibc's `malloc_trim`, or undefined where there is no glibc or no FFI permission. */
let mallocTrim: ((pad: bigint) => number) | undefined | null = null;

function garbageCollector(): (() => void) | undefined {
  if (collectGarbage === null) {
    try {
      // Exposes gc() to contexts made from now on: the new one hands it over.
      setFlagsFromString("--expose-gc");
      collectGarbage = runInNewContext("gc") as () => void;
    } catch {
      collectGarbage = undefined;
    }
  }
  return collectGarbage;
}

function trimmer(): ((pad: bigint) => number) | undefined {
  if (mallocTrim === null) {
    try {
      const libc = Deno.dlopen("libc.so.6", {
        malloc_trim: { parameters: ["usize"], result: "i32" },
      });
      mallocTrim = (pad) => libc.symbols.malloc_trim(pad);
    } catch {
      mallocTrim = undefined;
    }
  }
  return mallocTrim;
}

/**
 * Collects all garbage and returns the allocator's free memory to the
 * system, as far as this runtime allows (a full GC needs V8's `gc`, the
 * trim glibc and FFI permission; what is missing is skipped).
 *
 * @returns the resident memory before and after, in bytes
 */
export function returnMemory(): { before: number; after: number } {
  const before = residentBytes();
  garbageCollector()?.();
  trimmer()?.(0n);
  return { before, after: residentBytes() };
}
