/**
 * Sizes written for people.
 *
 * @module
 */

/** `bytes` in MiB with one decimal, e.g. `30.2 MiB`. */
export function mebibytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
