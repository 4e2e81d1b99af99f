/**
 * The entry point: parses the command line, dispatches to one command and
 * turns its outcome into an exit code. The only place that calls `Deno.exit`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { checkCommand } from "./cli/check.ts";
import { cleanupCommand } from "./cli/cleanup.ts";
import { reloadCommand } from "./cli/reload.ts";
import { runCommand } from "./cli/run.ts";
import { startCommand } from "./cli/start.ts";
import { statusCommand } from "./cli/status.ts";
import { stopCommand } from "./cli/stop.ts";
import { versionCommand } from "./cli/version.ts";
import { keepAwakeCommand, sleepCommand, wakeCommand } from "./cli/actions.ts";
import { type Command, UsageError } from "./cli/options.ts";
import type { Verbosity } from "./log.ts";
import { printError } from "./cli/report.ts";
import { VERSION } from "./version.ts";

/** Every command, by the word that selects it. */
const COMMANDS: Record<string, Command> = {
  start: startCommand,
  stop: stopCommand,
  wake: wakeCommand,
  sleep: sleepCommand,
  "keep-awake": keepAwakeCommand,
  status: statusCommand,
  reload: reloadCommand,
  run: runCommand,
  check: checkCommand,
  cleanup: cleanupCommand,
  version: versionCommand,
};

/** Options every command accepts. */
const GLOBAL_FLAGS = {
  "config-file": { type: "string", short: "f", multiple: true },
  version: { type: "boolean", short: "V" },
  verbose: { type: "boolean", short: "v" },
  debug: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const commands = Object.entries(COMMANDS)
    .map(([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`)
    .join("\n");
  return `sleepingd ${VERSION}: wakes servers when a client connects, puts them back to sleep when idle

Usage: sleepingd [options] <command>

Commands:
${commands}

Options:
  -f, --config-file FILE  read FILE instead of the default search list (repeatable)
  -v, --verbose           log more (debug level)
      --debug             log everything (trace level)
  -V, --version           print the version
  -h, --help              print this help, or a command's help after it`;
}

/** Finds the command word: the first argument that is neither a flag nor a flag's value. */
function findCommandWord(args: string[]): string | undefined {
  const commandFlags = Object.values(COMMANDS).map((command) => command.flags);
  const { positionals } = parseArgs({
    args,
    options: Object.assign({}, ...commandFlags, GLOBAL_FLAGS),
    strict: false,
    allowPositionals: true,
  });
  return positionals[0];
}

/**
 * Runs sleepingd with the given arguments (without the program name).
 *
 * @param args the command line, e.g. `["-f", "sleepingd.conf", "check"]`
 * @returns the exit code: 0 ok, 1 failure, 2 usage error
 */
export async function main(args: string[]): Promise<number> {
  try {
    const word = findCommandWord(args);
    const command = word === undefined ? undefined : COMMANDS[word];
    if (word !== undefined && command === undefined) {
      throw new UsageError(`Unknown command "${word}"`);
    }
    const { values, positionals } = parseArgs({
      args,
      options: { ...GLOBAL_FLAGS, ...command?.flags },
      strict: true,
      allowPositionals: true,
    });
    if (values.help) {
      console.log(command?.help ?? usage());
      return 0;
    }
    if (values.version) return versionCommand.run(noOptions());
    if (command === undefined) {
      console.error(usage());
      return 2;
    }
    const wanted = command.args ?? [];
    const given = positionals.slice(1);
    if (given.length > wanted.length) {
      throw new UsageError(`Unexpected argument "${given[wanted.length]}" after "${word}"`);
    }
    if (given.length < wanted.length) {
      throw new UsageError(`"${word}" needs ${wanted.slice(given.length).join(" and ")}`);
    }
    const verbosity: Verbosity = values.debug ? "trace" : values.verbose ? "debug" : "info";
    const { "config-file": configFiles = [], ...flags } = values;
    return await command.run({
      configFiles: configFiles as string[],
      verbosity,
      flags: flags as Record<string, string | boolean | undefined>,
      args: given,
    });
  } catch (error) {
    if (error instanceof UsageError || isParseArgsError(error)) {
      console.error(`sleepingd: ${(error as Error).message}`);
      console.error(`Try "sleepingd --help" for the commands and options.`);
      return 2;
    }
    printError(error);
    return 1;
  }
}

function noOptions() {
  return { configFiles: [], verbosity: "info" as const, flags: {}, args: [] };
}

/** `parseArgs` rejects unknown flags and missing values with these codes. */
function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS");
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
