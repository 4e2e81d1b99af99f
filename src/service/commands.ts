/**
 * Running a service's configured commands with its environment, and logging them.
 *
 * @module
 */

import type { CommandSpec, ServiceConfig } from "../config/types.ts";
import { log } from "../log.ts";
import { type Target, unmapped } from "../net/address.ts";
import { describeResult, runShell, type ShellResult } from "../process/run_shell.ts";

/** Which command runs; also `SLEEPINGD_ACTION` in its environment. */
export type Action = "check" | "start" | "ready" | "idle" | "stop";

/** The configuration key of each action's command, for messages. */
export const COMMAND_KEY: Record<Action, string> = {
  check: "CHECK_CMD",
  start: "START_CMD",
  ready: "READY_CMD",
  idle: "IDLE_CMD",
  stop: "STOP_CMD",
};

/** What a command may know besides the service: who connected and where the backend is. */
export interface CommandContext {
  /** The client whose connection caused the command, when there is one. */
  client?: Deno.NetAddr;
  /** The backend's target, when it is known. */
  target?: Target;
  /** Aborting kills the command. */
  signal?: AbortSignal;
  /** Seconds the command may run at most, on top of its own timeout. */
  maxSeconds?: number;
  /** Told the command's pid as soon as it runs. */
  onSpawn?: (pid: number) => void;
  /** A random id of this run, put in its environment as `SLEEPINGD_RUN_ID`, to recognise it later. */
  runId?: string;
}

/** Commands whose failure is an error, logged as such when they end (CHECK_CMD may say "down"). */
const MUST_SUCCEED: readonly Action[] = ["start", "stop"];

/** A command that ran and did not exit 0 (or could not run at all). */
export class CommandError extends Error {
  /**
   * Whether the command's failure is in the log already, as an error line
   * from {@linkcode runServiceCommand}: whoever catches it says nothing more.
   */
  readonly logged: boolean;

  /** Creates an error such as `START_CMD exit 1 after 0.2s: last stderr line`. */
  constructor(message: string, readonly result?: ShellResult, options: { logged?: boolean } = {}) {
    super(message);
    this.name = "CommandError";
    this.logged = options.logged ?? false;
  }
}

/**
 * Whether `error`, or an error it was caused by, is a command's failure that
 * is in the log already: a failed START_CMD is logged once, when it ends.
 */
export function loggedAlready(error: unknown): boolean {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof CommandError && cause.logged) return true;
  }
  return false;
}

/** Runs one of a service's commands; how the wake and the idle monitor run theirs. */
export type RunCommand = (
  action: Action,
  spec: CommandSpec,
  context?: CommandContext,
) => Promise<ShellResult>;

/**
 * Runs the service's command for `action` with the `SLEEPINGD_*` environment,
 * logging its start (debug), its outcome once (info; error for a START_CMD or
 * STOP_CMD that failed; debug for the polling READY_CMD and IDLE_CMD) and, at
 * trace level, what it printed.
 *
 * @returns the result, whatever the exit code
 * @throws {CommandError} when the command cannot be started at all
 */
export async function runServiceCommand(
  service: ServiceConfig,
  action: Action,
  spec: CommandSpec,
  context: CommandContext = {},
): Promise<ShellResult> {
  const logger = log("command");
  const key = COMMAND_KEY[action];
  const limits = [spec.timeout, context.maxSeconds].filter((n) => n !== undefined);
  logger.debug("[{service}] running {key}", { service: service.name, key, command: spec.text });
  let result: ShellResult;
  try {
    result = await runShell(spec.text, {
      timeout: limits.length > 0 ? Math.min(...limits) : undefined,
      env: commandEnv(service, action, context),
      user: service.user,
      passEnv: service.passEnv,
      signal: context.signal,
      onSpawn: context.onSpawn,
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new CommandError(`Cannot run ${key}: ${reason}`);
  }
  // Checks, starts and stops change things and are rare: info, or error for a failed start or
  // stop, whose catchers then say nothing more. READY_CMD and IDLE_CMD poll: debug.
  const level = action === "ready" || action === "idle"
    ? "debug"
    : failedLoudly(action, result)
    ? "error"
    : "info";
  logger[level]("[{service}] {key} {outcome}", {
    service: service.name,
    key,
    outcome: describeResult(result),
    code: result.code,
    durationMs: result.durationMs,
    stderrTail: result.code === 0 ? undefined : result.stderrTail,
  });
  logger.trace("[{service}] {key} printed {stdout} on stdout and {stderr} on stderr", () => ({
    service: service.name,
    key,
    stdout: printed(result.stdout, result.stdoutBytes, "first"),
    stderr: printed(result.stderrTail, result.stderrBytes, "last"),
  }));
  if (result.outputLeftOpen) {
    logger.debug(
      "[{service}] {key} left a process holding its output: redirect it (server > /dev/null 2>&1 &)",
      { service: service.name, key },
    );
  }
  return result;
}

/** Throws a {@linkcode CommandError} unless the command exited 0. */
export function requireSuccess(action: Action, result: ShellResult): ShellResult {
  if (result.code !== 0) {
    throw new CommandError(`${COMMAND_KEY[action]} ${describeResult(result)}`, result, {
      logged: failedLoudly(action, result),
    });
  }
  return result;
}

/** Whether {@linkcode runServiceCommand} logged this result as an error: a start or stop failed. */
function failedLoudly(action: Action, result: ShellResult): boolean {
  return MUST_SUCCEED.includes(action) && result.code !== 0 && !result.aborted;
}

function commandEnv(
  service: ServiceConfig,
  action: Action,
  { client, target, runId }: CommandContext,
): Record<string, string> {
  const env: Record<string, string> = {
    SLEEPINGD_SERVICE: service.name,
    SLEEPINGD_PORT: String(service.port),
    SLEEPINGD_ACTION: action,
  };
  if (runId) env.SLEEPINGD_RUN_ID = runId;
  if (client) {
    env.SLEEPINGD_CLIENT_ADDRESS = unmapped(client.hostname);
    env.SLEEPINGD_CLIENT_PORT = String(client.port);
  }
  return target ? { ...env, ...targetEnv(target) } : env;
}

/** `SLEEPINGD_TARGET` (`IP PORT`), `SLEEPINGD_TARGET_HOST` and `SLEEPINGD_TARGET_PORT`. */
export function targetEnv(target: Target): Record<string, string> {
  return {
    SLEEPINGD_TARGET: `${target.hostname} ${target.port}`,
    SLEEPINGD_TARGET_HOST: target.hostname,
    SLEEPINGD_TARGET_PORT: String(target.port),
  };
}

/** Output for the trace log: quoted, with a note when only part of it was kept. */
function printed(text: string, bytes: number, part: "first" | "last"): string {
  if (bytes === 0) return "nothing";
  const kept = new TextEncoder().encode(text).length;
  const note = kept < bytes ? ` (the ${part} ${kept} of ${bytes} bytes)` : "";
  return `${JSON.stringify(text)}${note}`;
}
