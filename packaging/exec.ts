/**
 * Running the tools the packaging uses (dpkg-deb, rpmbuild, readelf, deno):
 * a tool that is missing or fails becomes a PackagingError that says which
 * and why.
 *
 * @module
 */

import { PackagingError } from "./script.ts";

/** Where and how to run a tool. */
export interface ExecOptions {
  /** Working folder; the caller's when unset. */
  cwd?: string;
  /** The Debian package that brings the tool, named when it is missing. */
  debianPackage?: string;
}

/**
 * Runs `program ARGS...` with stdin from /dev/null and returns its stdout.
 *
 * @throws PackagingError when the program is missing or exits non-zero, with
 *   the first line of its stderr that names an error, else the last one
 */
export async function exec(
  program: string,
  args: string[],
  options: ExecOptions = {},
): Promise<string> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(program, {
      args,
      cwd: options.cwd,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    const install = options.debianPackage ? ` (apt-get install ${options.debianPackage})` : "";
    throw new PackagingError(`${program} is not installed${install}`);
  }
  const decoder = new TextDecoder();
  if (output.code !== 0) {
    const lines = decoder.decode(output.stderr).split("\n");
    const reason = lines.find((line) => /error/i.test(line)) ??
      lines.findLast((line) => line.trim() !== "") ?? `exit code ${output.code}`;
    throw new PackagingError(`${program} ${args[0] ?? ""} failed: ${reason.trim()}`);
  }
  return decoder.decode(output.stdout);
}
