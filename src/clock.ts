/**
 * The time schedules go by. It is the system's; for tests only, it can start
 * at `SLEEPINGD_CLOCK` (an ISO time) and run `SLEEPINGD_CLOCK_RATE` times as
 * fast, so that a test sees 08:00 come without waiting for it
 * (docs/ARCHITECTURE.md, "Schedules").
 *
 * @module
 */

import { sleep } from "./timers.ts";

/** Real milliseconds and clock milliseconds at the clock's start, and its rate. */
const { realStart, clockStart, rate } = (() => {
  const start = Deno.env.get("SLEEPINGD_CLOCK");
  const rate = Number(Deno.env.get("SLEEPINGD_CLOCK_RATE") ?? "1");
  const clockStart = start === undefined ? NaN : Date.parse(start);
  if (Number.isNaN(clockStart)) return { realStart: 0, clockStart: 0, rate: 1 };
  return { realStart: Date.now(), clockStart, rate: rate > 0 ? rate : 1 };
})();

/** The clock's time now, epoch milliseconds. */
export function clockNow(): number {
  return clockStart + (Date.now() - realStart) * rate;
}

/** Waits until the clock reads `time`, or `signal` aborts (rejecting with its reason). */
export async function sleepUntil(time: number, signal?: AbortSignal): Promise<void> {
  while (clockNow() < time) {
    await sleep(Math.max(1, (time - clockNow()) / rate), signal);
  }
}
