/**
 * Durations as people write them on a command line or in a request:
 * `90`, `90s`, `30m`, `2h`, `1h30m`, `1d`.
 *
 * @module
 */

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
const DURATION = /^(?:\d+(?:\.\d+)?[smhd])+$|^\d+(?:\.\d+)?$/;

/**
 * Reads a duration into seconds: a number of seconds, or amounts with units
 * s, m, h and d, written together (`1h30m`).
 *
 * @throws {Error} saying what a duration looks like
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim().toLowerCase();
  if (!DURATION.test(trimmed)) {
    throw new Error(`"${text}" is not a duration: e.g. 90s, 30m, 2h, 1h30m or 0`);
  }
  if (/^[\d.]+$/.test(trimmed)) return Number(trimmed);
  let seconds = 0;
  for (const [, amount, unit] of trimmed.matchAll(/(\d+(?:\.\d+)?)([smhd])/g)) {
    seconds += Number(amount) * UNIT_SECONDS[unit];
  }
  return seconds;
}
