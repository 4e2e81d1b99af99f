/**
 * Helpers every kind of test uses: the repository's place, running programs
 * and the CLI, files on disk, and bounded waits.
 *
 * @module
 */

import assert from "node:assert/strict";
import { isAlive } from "../src/process/proc_stat.ts";

/** The repository root, where `deno task dev` runs; ends with a slash. */
export const REPO = new URL("../", import.meta.url).pathname;
/** sleepingd's entry point, run with `deno run -A MAIN ARGS...`. */
export const MAIN = new URL("../src/main.ts", import.meta.url).pathname;

/** How long one CLI run may take before the test fails. */
const CLI_TIMEOUT_MS = 30_000;
/** How long any other program may run before it is killed (a bound against hangs, not a timing). */
const PROGRAM_TIMEOUT_MS = 60_000;

/** What a program printed and returned. */
export interface Output {
  /** The exit code. */
  code: number;
  /** Everything printed on stdout. */
  stdout: string;
  /** Everything printed on stderr. */
  stderr: string;
}

/** Where and how to run a program. */
export interface RunOptions {
  /** Variables added to the test's environment. */
  env?: Record<string, string>;
  /** Working folder; the test's own when unset (the repository root for the CLI). */
  cwd?: string;
}

/**
 * Runs `program ARGS...` to its end with stdin from /dev/null, killed after
 * 60 s at most.
 *
 * @param args the arguments, passed as an array (never joined into a shell line)
 */
export async function runProgram(
  program: string,
  args: string[],
  options: RunOptions & { timeoutMs?: number } = {},
): Promise<Output> {
  const { code, stdout, stderr } = await new Deno.Command(program, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(options.timeoutMs ?? PROGRAM_TIMEOUT_MS),
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/**
 * Runs `sleepingd ARGS...` (`deno run -A src/main.ts`) in the repository
 * root, killed after 30 s at most.
 */
export function runCli(args: string[], options: RunOptions = {}): Promise<Output> {
  return runProgram(Deno.execPath(), ["run", "--quiet", "-A", MAIN, ...args], {
    cwd: options.cwd ?? REPO,
    env: { NO_COLOR: "1", ...options.env },
    timeoutMs: CLI_TIMEOUT_MS,
  });
}

/** `text` as a double-quoted configuration value. */
export function quoted(text: string): string {
  return `"${text.replace(/[\\"]/g, "\\$&")}"`;
}

/**
 * Runs curl (a real client) with `args`; returns its stdout, failing the test
 * when curl fails (an HTTP error counts only with `--fail` among the args).
 */
export async function curl(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await runProgram("curl", ["-sS", "--max-time", "60", ...args]);
  assert.equal(code, 0, `curl ${args.join(" ")} failed: ${stderr}`);
  return stdout;
}

/**
 * Polls `condition` every 20 ms until it holds; fails with `what` after
 * `seconds` (a bound against hangs, not a speed assertion).
 */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  seconds = 20,
): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${seconds}s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Waits for `promise`, failing with `what` after `seconds` (a bound against
 * hangs, not a speed assertion).
 */
export async function bounded<T>(promise: Promise<T>, what: string, seconds = 20): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${seconds}s waiting for ${what}`)),
      seconds * 1000,
    );
  });
  try {
    return await Promise.race([promise, hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** The pid a server wrote to `pidfile`, waiting (bounded) until it is written and alive. */
export async function readPid(pidfile: string): Promise<number> {
  let pid = 0;
  await waitFor(`a live pid in ${pidfile}`, async () => {
    pid = Number((await Deno.readTextFile(pidfile).catch(() => "")).trim());
    return pid > 0 && isAlive(pid);
  });
  return pid;
}

/** Whether `path` exists. */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A temporary folder, removed with everything in it at the end of its `await using` block. */
export interface TempDir extends AsyncDisposable {
  /** The folder's path. */
  path: string;
}

/**
 * Writes files into a new temporary folder.
 *
 * @example
 * ```ts
 * await using dir = await tempFiles({ "a.conf": "[web]\nPORT=80\n" });
 * await loadConfig([`${dir.path}/a.conf`]);
 * ```
 *
 * @param files file contents by relative path; folders are created as needed
 * @returns the folder, removed when disposed
 */
export async function tempFiles(files: Record<string, string>): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix: "sleepingd-test-" });
  for (const [name, text] of Object.entries(files)) {
    const file = `${path}/${name}`;
    await Deno.mkdir(file.slice(0, file.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(file, text);
  }
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}
