/**
 * A service's `KEEP_AWAKE` windows in its time zone: whether a time is inside
 * one (and until when), and when the next one begins. Each window is two cron
 * patterns (npm `croner`), its start and its end, so that days, time zones
 * and daylight saving time are the library's business, not ours
 * (docs/ARCHITECTURE.md, "Schedules").
 *
 * @module
 */

import { Cron } from "croner";
import type { KeepAwakeWindow } from "../config/schedule.ts";

/** A window and the crons of its start and end. */
interface Timed {
  window: KeepAwakeWindow;
  start: Cron;
  end: Cron;
}

/** The windows of one service. */
export class KeepAwakeSchedule {
  readonly #windows: Timed[];
  readonly #format: Intl.DateTimeFormat;

  /** Makes the crons of `windows`, in `timeZone` (the system's when undefined). */
  constructor(windows: KeepAwakeWindow[], timeZone?: string) {
    const options = { timezone: timeZone, paused: true };
    this.#windows = windows.map((window) => {
      const overnight = window.end.hour * 60 + window.end.minute <=
        window.start.hour * 60 + window.start.minute;
      const endDays = overnight ? window.days.map((day) => (day + 1) % 7) : window.days;
      const cron = (time: { hour: number; minute: number }, days: number[]) =>
        new Cron(`${time.minute} ${time.hour} * * ${days.join(",")}`, options);
      return { window, start: cron(window.start, window.days), end: cron(window.end, endDays) };
    });
    this.#format = new Intl.DateTimeFormat("en-GB", {
      timeZone,
      weekday: "short",
      hour: "2-digit",
      minute: "2-digit",
    });
  }

  /**
   * The window `time` is in, and when it ends (epoch milliseconds; Infinity
   * for a window that never ends, `daily 08:00-08:00`); undefined outside
   * every window. Inside means its last start came at or after its last end:
   * a 24-hour window ends at the very time the next day's begins.
   */
  openAt(time: number): { window: KeepAwakeWindow; until: number } | undefined {
    // A second ahead: a start at this very second counts (crons have seconds, not milliseconds).
    const probe = new Date(time + 1000);
    for (const { window, start, end } of this.#windows) {
      const started = start.previousRuns(1, probe)[0]?.getTime();
      const ended = end.previousRuns(1, probe)[0]?.getTime() ?? -Infinity;
      if (started === undefined || started < ended) continue;
      return { window, until: lastEnd(start, end, end.nextRun(new Date(time))!.getTime()) };
    }
    return undefined;
  }

  /** The next start of a window after `time`, or undefined when there is none. */
  nextStart(time: number): { window: KeepAwakeWindow; at: number } | undefined {
    let next: { window: KeepAwakeWindow; at: number } | undefined;
    for (const { window, start } of this.#windows) {
      const at = start.nextRun(new Date(time))?.getTime();
      if (at !== undefined && (next === undefined || at < next.at)) next = { window, at };
    }
    return next;
  }

  /** A time as people read it in the schedule's zone: `Mon 18:00`. */
  format(time: number): string {
    return this.#format.format(time);
  }
}

/**
 * The end of a window that began, following each next start that falls on
 * the very time it ends (`Mon-Fri 08:00-08:00` runs from Monday 08:00 to
 * Saturday 08:00); Infinity when a start follows every end of a week.
 */
function lastEnd(start: Cron, end: Cron, first: number): number {
  let until = first;
  for (let days = 0; days < 7; days++) {
    if (start.nextRun(new Date(until - 1000))?.getTime() !== until) return until;
    until = end.nextRun(new Date(until))!.getTime();
  }
  return Infinity;
}
