/**
 * Running the kernel path's tools, `nft` and `conntrack`: their paths, and
 * one run with a deadline, its output and a clear error.
 *
 * @module
 */

import { findExecutable } from "../process/which.ts";

/** Where Debian installs nft and conntrack, which may be off a user's PATH. */
const SBIN = ["/usr/sbin", "/sbin", "/usr/local/sbin"];

/** How long one run of a tool may take: they answer in milliseconds. */
const TOOL_TIMEOUT_MS = 10_000;

/** A tool of the kernel path, and the Debian package that brings it. */
export const TOOLS = {
  nft: { binary: "nft", package: "nftables" },
  conntrack: { binary: "conntrack", package: "conntrack" },
} as const;

/** The name of a tool of the kernel path. */
export type ToolName = keyof typeof TOOLS;

/** The path of `tool`, or undefined when it is not installed. */
export function findTool(tool: ToolName): string | undefined {
  return findExecutable(TOOLS[tool].binary, SBIN);
}

/** A tool that failed: the message has its stderr. */
export class ToolError extends Error {
  /** The exit code, or undefined when it could not run. */
  readonly code?: number;

  /** Creates the error. */
  constructor(message: string, code?: number) {
    super(message);
    this.name = "ToolError";
    this.code = code;
  }
}

/** What a tool printed. */
export interface ToolOutput {
  /** Its exit code. */
  code: number;
  /** Its stdout. */
  stdout: string;
  /** Its stderr. */
  stderr: string;
}

/**
 * Runs `tool ARGS...` (with `input` on its stdin), killed after 10 s.
 *
 * @throws {ToolError} when it is not installed, cannot run, or exits with a
 * code not in `okCodes` (default: 0 only), saying so with its stderr
 */
export async function runTool(
  tool: ToolName,
  args: string[],
  options: { input?: string; okCodes?: number[] } = {},
): Promise<ToolOutput> {
  const path = findTool(tool);
  if (path === undefined) {
    throw new ToolError(`${tool} is not installed (apt-get install ${TOOLS[tool].package})`);
  }
  let child;
  try {
    child = new Deno.Command(path, {
      args,
      stdin: options.input === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(TOOL_TIMEOUT_MS),
    }).spawn();
  } catch (error) {
    throw new ToolError(`Cannot run ${tool}: ${(error as Error).message}`);
  }
  if (options.input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.input)).catch(() => {});
    await writer.close().catch(() => {});
  }
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  const output = { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
  if (!(options.okCodes ?? [0]).includes(code)) {
    const said = (output.stderr || output.stdout).trim().split("\n").slice(0, 6).join("; ");
    throw new ToolError(`${tool} ${args[0] ?? ""} exited with ${code}: ${said}`, code);
  }
  return output;
}
