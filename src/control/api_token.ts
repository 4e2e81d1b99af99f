/**
 * The HTTP API's token, from API_TOKEN_FILE: read at each request (so that it
 * can change without a restart), long enough to be beyond guessing, and kept
 * from other users (docs/ARCHITECTURE.md, "Wake API").
 *
 * @module
 */

import { untrustedMode } from "../fs/trusted_path.ts";

/** Characters a token holds at least: 16 random ones are beyond any guessing over HTTP. */
export const MIN_TOKEN_LENGTH = 16;

/** How to make a good token, for messages. */
const HOW_TO_MAKE = "e.g. openssl rand -hex 32 >";

/** The token file cannot be used: missing, unreadable, empty or too short. */
export class TokenFileError extends Error {
  /** Creates the error; the message names the file and the fix. */
  constructor(message: string) {
    super(message);
    this.name = "TokenFileError";
  }
}

/**
 * The token in `file`, without surrounding whitespace.
 *
 * @throws {TokenFileError} naming the file and the fix when it cannot be read,
 * is empty or holds fewer than {@linkcode MIN_TOKEN_LENGTH} characters
 */
export async function readToken(file: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    throw new TokenFileError(`Cannot read API_TOKEN_FILE ${file}: ${(error as Error).message}`);
  }
  const token = text.trim();
  const length = [...token].length;
  if (length < MIN_TOKEN_LENGTH) {
    const holds = length === 0 ? "no token" : `a token of ${length} character(s)`;
    throw new TokenFileError(
      `API_TOKEN_FILE ${file} holds ${holds}: it needs ${MIN_TOKEN_LENGTH} at least ` +
        `(${HOW_TO_MAKE} ${file})`,
    );
  }
  return token;
}

/**
 * Why `file` is not kept from other users (readable by its group or by
 * anyone, or changeable by another user), with the fix; undefined when it is,
 * or cannot be looked at.
 */
export function exposure(file: string): string | undefined {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(file);
  } catch {
    return undefined;
  }
  const changeable = untrustedMode(file, info);
  if (changeable) {
    return `API_TOKEN_FILE ${changeable}: another user could set the token; chown and chmod 600 it`;
  }
  const mode = info.mode ?? 0;
  if ((mode & 0o044) === 0) return undefined;
  const who = mode & 0o004 ? "every user" : "its group";
  return `API_TOKEN_FILE ${file} is readable by ${who} (mode ${(mode & 0o777).toString(8)}): ` +
    `chmod 600 ${file}`;
}
