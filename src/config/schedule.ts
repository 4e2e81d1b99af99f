/**
 * `KEEP_AWAKE` windows as written: `Mon-Fri 08:00-18:00; Sat 10:00-14:00`,
 * each days then a start and an end time; an end at or before the start ends
 * the next day (`Fri 22:00-02:00`). `TIME_ZONE` says in which zone
 * (docs/ARCHITECTURE.md, "Schedules").
 *
 * @module
 */

/** One window of a week, in the service's time zone. */
export interface KeepAwakeWindow {
  /** The days it begins on: 0 is Sunday. */
  days: number[];
  /** When it begins: hour and minute. */
  start: { hour: number; minute: number };
  /** When it ends: hour and minute, the next day when not after the start. */
  end: { hour: number; minute: number };
  /** The window as written, for the log and `status`. */
  text: string;
}

const DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const WINDOW = /^(\S+)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$/;

/**
 * Reads a `KEEP_AWAKE` value: windows separated by `;`.
 *
 * @throws {Error} saying which window is wrong and what one looks like
 */
export function parseKeepAwake(text: string): KeepAwakeWindow[] {
  return text.split(";").map((part) => part.trim()).filter(Boolean).map(parseWindow);
}

function parseWindow(text: string): KeepAwakeWindow {
  const match = WINDOW.exec(text);
  const hint = 'as it must be DAYS HH:MM-HH:MM, e.g. "Mon-Fri 08:00-18:00" or "daily 22:00-02:00"';
  if (!match) throw new Error(`"${text}" is not a window ${hint}`);
  const [, days, startHour, startMinute, endHour, endMinute] = match;
  const time = (hour: string, minute: string) => {
    const value = { hour: Number(hour), minute: Number(minute) };
    if (value.hour > 23 || value.minute > 59) {
      throw new Error(`"${text}": ${hour}:${minute} is no time of day`);
    }
    return value;
  };
  return {
    days: parseDays(days, text),
    start: time(startHour, startMinute),
    end: time(endHour, endMinute),
    text,
  };
}

/** `Mon-Fri`, `Sat,Sun`, `Mon,Wed-Fri`, `daily`. */
function parseDays(text: string, window: string): number[] {
  if (["daily", "*"].includes(text.toLowerCase())) return [0, 1, 2, 3, 4, 5, 6];
  const days = new Set<number>();
  for (const part of text.toLowerCase().split(",")) {
    const [from, to = from] = part.split("-").map((name) => DAY_NAMES.indexOf(name.slice(0, 3)));
    if (from < 0 || to < 0 || part.split("-").some((name) => name.length < 3)) {
      throw new Error(
        `"${window}": "${part}" is no day: use Mon, Tue, ..., Sun, ranges (Mon-Fri), or daily`,
      );
    }
    for (let day = from;; day = (day + 1) % 7) {
      days.add(day);
      if (day === to) break;
    }
  }
  return [...days].sort();
}

/**
 * Whether `zone` is a time zone this runtime knows (`Europe/Paris`, `UTC`).
 */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
