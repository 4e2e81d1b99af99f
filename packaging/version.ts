/**
 * The version that builds and packages carry: src/version.ts's, the one
 * `sleepingd --version` prints, which deno.json's `version` must match.
 *
 * @module
 */

import { VERSION } from "../src/version.ts";
import { PackagingError } from "./script.ts";

/** A version a deb and an rpm both accept: digits first, then letters, digits, `.`, `+`, `~`. */
const VERSION_PATTERN = /^[0-9][A-Za-z0-9.+~]*$/;

/**
 * The version of the sources.
 *
 * @throws PackagingError when deno.json says another one
 */
export async function sourceVersion(): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  if (config.version !== VERSION) {
    throw new PackagingError(
      `deno.json has version ${config.version} but src/version.ts has ${VERSION}: make them equal`,
    );
  }
  return checkVersion(VERSION);
}

/**
 * Checks a version given on the command line and returns it.
 *
 * @throws PackagingError when a deb or an rpm could not carry it
 */
export function checkVersion(version: string): string {
  if (!VERSION_PATTERN.test(version)) {
    throw new PackagingError(
      `version "${version}" must start with a digit and hold only letters, digits, ".", "+" and "~"`,
    );
  }
  return version;
}

/** What `PROGRAM ARGS... --version` prints, trimmed: a built program says which sources it holds. */
export async function printedVersion(program: string, args: string[] = []): Promise<string> {
  const { stdout } = await new Deno.Command(program, {
    args: [...args, "--version"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(stdout).trim();
}
