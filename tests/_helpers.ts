/**
 * Helpers for tests that spawn the real CLI or need configuration files on disk.
 *
 * @module
 */

/** The repository root, where `deno task dev` runs. */
export const REPO = new URL("../", import.meta.url).pathname;
const MAIN = new URL("../src/main.ts", import.meta.url).pathname;

/** How long one CLI run may take before the test fails. */
const CLI_TIMEOUT_MS = 30_000;

/** What a CLI run printed and returned. */
export interface CliResult {
  /** The exit code. */
  code: number;
  /** Everything printed on stdout. */
  stdout: string;
  /** Everything printed on stderr. */
  stderr: string;
}

/** Where and how to run the CLI. */
export interface RunCliOptions {
  /** Variables added to the test's environment. */
  env?: Record<string, string>;
  /**
   * Working folder.
   * @default the repository root
   */
  cwd?: string;
}

/**
 * Runs `sleepingd ARGS...` (`deno run -A src/main.ts`) with stdin from /dev/null.
 *
 * @param args the arguments, passed as an array (never joined into a shell line)
 * @param options extra environment and working folder
 * @returns the exit code, stdout and stderr
 * @throws {Error} if the run takes longer than 30 seconds
 */
export async function runCli(args: string[], options: RunCliOptions = {}): Promise<CliResult> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", MAIN, ...args],
    cwd: options.cwd ?? REPO,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(CLI_TIMEOUT_MS),
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
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
