/**
 * Reading `WAITING_PAGE_FILE`, a waiting page of one's own, when the
 * configuration is read: so that `check` and a reload say at once what is
 * wrong with it.
 *
 * @module
 */

import { untrustedReason } from "../fs/trusted_path.ts";
import { PLACEHOLDERS, unknownPlaceholders } from "../waiting/page.ts";

/** The largest page file taken: a page, not a site. */
export const MAX_PAGE_FILE_BYTES = 64 * 1024;

/**
 * Reads a page file: a regular file of at most {@linkcode MAX_PAGE_FILE_BYTES},
 * UTF-8, whose placeholders are all known, on a path no other user can
 * change: its text goes to any browser, so a link planted there must not make
 * sleepingd serve another file it can read (docs/ARCHITECTURE.md, "The
 * waiting page").
 *
 * @returns its text, or the reason it cannot be used
 */
export function readPageFile(path: string): { text: string } | { error: string } {
  const untrusted = untrustedReason(path);
  if (untrusted) {
    return {
      error: `${untrusted}, so another user could make sleepingd serve any file it can read: ` +
        "keep the page where only root and sleepingd's user can change it (chown, chmod go-w)",
    };
  }
  let bytes: Uint8Array;
  try {
    using file = Deno.openSync(path);
    const info = file.statSync();
    if (!info.isFile) return { error: `"${path}" is not a regular file` };
    if (info.size > MAX_PAGE_FILE_BYTES) {
      return { error: `"${path}" is larger than ${MAX_PAGE_FILE_BYTES / 1024} KiB` };
    }
    // Read to the end, one byte past the bound at most: the file may have grown since fstat.
    bytes = new Uint8Array(MAX_PAGE_FILE_BYTES + 1);
    let length = 0;
    while (length < bytes.length) {
      const n = file.readSync(bytes.subarray(length));
      if (n === null) break;
      length += n;
    }
    if (length > MAX_PAGE_FILE_BYTES) {
      return { error: `"${path}" is larger than ${MAX_PAGE_FILE_BYTES / 1024} KiB` };
    }
    bytes = bytes.subarray(0, length);
  } catch (error) {
    return { error: `cannot read "${path}": ${(error as Error).message}` };
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return { error: `"${path}" is not UTF-8 text` };
  }
  const unknown = unknownPlaceholders(text);
  if (unknown.length > 0) {
    return {
      error: `"${path}" uses ${unknown.map((name) => `{{${name}}}`).join(", ")}, which ` +
        `${unknown.length === 1 ? "is" : "are"} not a placeholder (the placeholders: ` +
        `${PLACEHOLDERS.map((name) => `{{${name}}}`).join(" ")})`,
    };
  }
  return { text };
}
