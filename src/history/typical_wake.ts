/**
 * How long a service's wakes usually take, from its own history: what its
 * waiting page tells a browser to expect.
 *
 * @module
 */

import { type HistoryEvent, isChange } from "./event.ts";

/** How many of the last wakes count. */
const LAST_WAKES = 10;

/**
 * The median duration, in seconds, of `service`'s last 10 wakes that ended
 * awake (`starting → awake`); undefined when it has none in `events`.
 */
export function typicalWakeSeconds(
  events: readonly HistoryEvent[],
  service: string,
): number | undefined {
  const durations: number[] = [];
  for (let index = events.length - 1; index >= 0 && durations.length < LAST_WAKES; index--) {
    const event = events[index];
    if (
      isChange(event) && event.service === service && event.from === "starting" &&
      event.to === "awake"
    ) durations.push(event.lasted);
  }
  if (durations.length === 0) return undefined;
  durations.sort((a, b) => a - b);
  const middle = Math.floor(durations.length / 2);
  return durations.length % 2 === 1
    ? durations[middle]
    : (durations[middle - 1] + durations[middle]) / 2;
}
