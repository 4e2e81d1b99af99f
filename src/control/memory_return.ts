/**
 * When the daemon gives memory back: once it is quiet after a burst of
 * connections (docs/ARCHITECTURE.md, "Memory").
 *
 * @module
 */

import { log } from "../log.ts";
import { trimForwardBuffers } from "../net/forward.ts";
import { residentBytes, returnMemory } from "../process/memory.ts";

/** How often the daemon looks whether it is quiet, unless told otherwise. */
const CHECK_INTERVAL_MS = 2_000;
/** Connections accepted or closed since the last return that make the next one worth it. */
const EVENTS_WORTH_RETURNING = 256;
/** Growth of resident memory since the last return that makes the next one worth it. */
const GROWTH_WORTH_RETURNING = 16 * 1024 * 1024;

const logger = log("memory");
const MIB = 1024 * 1024;

/**
 * Every `intervalMs` (2 s), shrinks the pools of forwarding buffers and
 * returns memory to the system ({@linkcode returnMemory}) when no connection
 * came or went since the last look (a full garbage collection pauses the
 * daemon for a moment, so never while busy), and since the last return
 * either many did or the resident memory grew.
 *
 * @param connectionEvents connections accepted plus closed so far
 * @param intervalMs how often it looks
 * @returns a function that stops it
 */
export function returnMemoryWhenQuiet(
  connectionEvents: () => number,
  intervalMs: number = CHECK_INTERVAL_MS,
): () => void {
  let floor = residentBytes();
  let eventsAtReturn = connectionEvents();
  let eventsAtLastLook = eventsAtReturn;
  const look = () => {
    const events = connectionEvents();
    const quiet = events === eventsAtLastLook;
    eventsAtLastLook = events;
    if (!quiet) return;
    const manyEvents = events - eventsAtReturn >= EVENTS_WORTH_RETURNING;
    if (!manyEvents && residentBytes() < floor + GROWTH_WORTH_RETURNING) return;
    trimForwardBuffers();
    const { before, after } = returnMemory();
    logger.debug("quiet after {events} connection events: memory {before} MiB -> {after} MiB", {
      events: events - eventsAtReturn,
      before: (before / MIB).toFixed(1),
      after: (after / MIB).toFixed(1),
    });
    floor = after;
    eventsAtReturn = events;
  };
  const interval = setInterval(look, intervalMs);
  Deno.unrefTimer(interval);
  return () => clearInterval(interval);
}
