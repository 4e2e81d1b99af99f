/**
 * How the packaging scripts end: a failure is one line on stderr, prefixed
 * with the script's name, and exit code 1; never a stack trace.
 *
 * @module
 */

/** A failure whose message says what went wrong and what to do about it. */
export class PackagingError extends Error {
  /** Creates the error with its one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "PackagingError";
  }
}

/** Runs a script's `main`, then exits: 0, or 1 with `NAME: message` on stderr. */
export async function runScript(name: string, main: () => Promise<void>): Promise<never> {
  try {
    await main();
    Deno.exit(0);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`${name}: ${message.split("\n")[0]}`);
    Deno.exit(1);
  }
}
