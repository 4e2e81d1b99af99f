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
interface Setting {
  realStart: number;
  clockStart: number;
  rate: number;
}

/** Read at the first use, not at import: `--version` runs without the right to read the environment. */
let setting: Setting | undefined;

function clockSetting(): Setting {
  if (setting) return setting;
  const start = Deno.env.get("SLEEPINGD_CLOCK");
  const rate = Number(Deno.env.get("SLEEPINGD_CLOCK_RATE") ?? "1");
  const clockStart = start === undefined ? NaN : Date.parse(start);
  setting = Number.isNaN(clockStart)
    ? { realStart: 0, clockStart: 0, rate: 1 }
    : { realStart: Date.now(), clockStart, rate: rate > 0 ? rate : 1 };
  return setting;
}

/** The clock's time now, epoch milliseconds. */
export function clockNow(): number {
  const { realStart, clockStart, rate } = clockSetting();
  return clockStart + (Date.now() - realStart) * rate;
}

/** Waits until the clock reads `time`, or `signal` aborts (rejecting with its reason). */
export async function sleepUntil(time: number, signal?: AbortSignal): Promise<void> {
  while (clockNow() < time) {
    await sleep(Math.max(1, (time - clockNow()) / clockSetting().rate), signal);
  }
}
