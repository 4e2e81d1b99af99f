/**
 * Logging: one line per event on stderr or in a log file (`log_file.ts`), as
 * human text or as JSON lines.
 *
 * Built on `@logtape/logtape` (zero dependencies, Deno-first). Messages use
 * its structured templates so the JSON form keeps every value as a field.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { configure, getLogger, type Logger, type LogLevel, type LogRecord } from "@logtape/logtape";
import { LogFile, type Rotation } from "./log_file.ts";

/**
 * How much is logged: `info` by default, `debug` with `-v` (polling commands,
 * why a service is not idle), `trace` with `--debug` (every connect attempt,
 * each command's output, each idle check).
 */
export type Verbosity = "info" | "debug" | "trace";

/** How log lines are written: `text` for people, `json` for log collectors. */
export type LogFormat = "text" | "json";

const LOWEST_LEVEL: Record<Verbosity, LogLevel> = {
  info: "info",
  debug: "debug",
  trace: "trace",
};

const LEVEL_LABEL: Record<LogLevel, string> = {
  trace: "TRACE",
  debug: "DEBUG",
  info: "INFO",
  warning: "WARN",
  error: "ERROR",
  fatal: "FATAL",
};

const encoder = new TextEncoder();

/** The most warnings one start or reload keeps to tell; past them, their count. */
const GATHERED_LIMIT = 100;

/** Warnings being gathered for a start or a reload, while it runs. */
interface Gathering {
  warnings: string[];
  more: number;
  open: boolean;
}

/** The gathering of the start or reload that the code logging now runs for, if any. */
const gathering = new AsyncLocalStorage<Gathering>();

/** Keeps a warning's text for the start or reload it was logged for. */
function gather(record: LogRecord): void {
  const current = gathering.getStore();
  if (!current?.open || record.level !== "warning") return;
  if (current.warnings.length < GATHERED_LIMIT) current.warnings.push(renderMessage(record));
  else current.more++;
}

/** What a gathering holds: each warning's text, then how many more there were. */
function gathered({ warnings, more }: Gathering): string[] {
  return more === 0 ? [...warnings] : [...warnings, `and ${more} more warnings: see the log`];
}

/**
 * Gathers the text of every warning logged from now on by this code and what
 * it begins (its async context), until the returned function is called,
 * which returns them: what a daemon's start warned of, for `sleepingd start`.
 */
export function gatherWarningsFromNow(): () => string[] {
  const current: Gathering = { warnings: [], more: 0, open: true };
  gathering.enterWith(current);
  return () => {
    current.open = false;
    return gathered(current);
  };
}

/**
 * Runs `work` and returns its result with the text of every warning it
 * logged (it and what it began, until it settled): what a reload warned of,
 * for `sleepingd reload`. Warnings of other work logged meanwhile are not
 * among them.
 */
export async function gatherWarnings<T>(
  work: () => Promise<T>,
): Promise<{ result: T; warnings: string[] }> {
  const current: Gathering = { warnings: [], more: 0, open: true };
  try {
    const result = await gathering.run(current, work);
    return { result, warnings: gathered(current) };
  } finally {
    current.open = false;
  }
}

/** A record's message with its values inline, without quotes: the same in text and JSON. */
function renderMessage(record: LogRecord): string {
  return record.message
    .map((part, index) => index % 2 === 0 ? part : renderValue(part))
    .join("");
}

/** Renders a record as `TIME LEVEL message`. */
function formatText(record: LogRecord): string {
  const time = new Date(record.timestamp).toISOString();
  return `${time} ${LEVEL_LABEL[record.level].padEnd(5)} ${renderMessage(record)}\n`;
}

/** Renders a record as one JSON object: time, level, message, logger, and every value as a field. */
function formatJson(record: LogRecord): string {
  const line = {
    "@timestamp": new Date(record.timestamp).toISOString(),
    level: LEVEL_LABEL[record.level],
    message: renderMessage(record),
    logger: record.category.join("."),
    properties: record.properties,
  };
  const errorsAsText = (_key: string, value: unknown) =>
    value instanceof Error ? value.message : value;
  return `${JSON.stringify(line, errorsAsText)}\n`;
}

function renderValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.message;
  if (typeof value === "object" && value !== null) return JSON.stringify(value);
  return String(value);
}

/** The log file records go to, when they do not go to stderr. */
let logFile: LogFile | undefined;

/**
 * Sends sleepingd's log records to stderr, or appended to `file` (rotated as
 * `rotation` says; by default never), at the given level and format. Writes
 * are synchronous so no line is lost when the process exits. A line that
 * cannot be written (a full disk) is counted, and the count logged once
 * writing works again.
 *
 * @throws {Error} naming the file when it cannot be opened
 */
export async function setupLogging(
  verbosity: Verbosity,
  format: LogFormat = "text",
  file?: string,
  rotation: Rotation = { maxBytes: 0, maxFiles: 1 },
) {
  const formatter = format === "json" ? formatJson : formatText;
  const opened = file === undefined ? undefined : new LogFile(file, rotation, (error) => {
    log("log").error("cannot rotate the log file {path}: {error}; it goes on growing", {
      path: file,
      error: error.message,
    });
  });
  const write = opened
    ? (bytes: Uint8Array) => opened.write(bytes)
    : (bytes: Uint8Array) => writeAllSync(Deno.stderr, bytes);
  let lost = 0;
  let why = "";
  // Disposable: a reconfiguration (or a reset) closes the file of the sink it replaces.
  const sink = Object.assign((record: LogRecord) => {
    gather(record);
    try {
      write(encoder.encode(formatter(record)));
    } catch (error) {
      lost++;
      why = (error as Error).message;
      return;
    }
    if (lost > 0) {
      const count = lost;
      lost = 0;
      log("log").warn("{count} log line(s) could not be written: {error}", { count, error: why });
    }
  }, {
    [Symbol.dispose]: () => {
      opened?.close();
      if (logFile === opened) logFile = undefined;
    },
  });
  await configure({
    reset: true,
    sinks: { log: sink },
    loggers: [
      { category: ["sleepingd"], lowestLevel: LOWEST_LEVEL[verbosity], sinks: ["log"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["log"] },
    ],
  });
  logFile = opened;
}

/**
 * Opens the log file again (SIGUSR1, once logrotate moved it): the next
 * lines go to a new file at its path.
 *
 * @returns the file's path, or undefined when the log goes to stderr
 * @throws {Error} when it cannot be opened: the log goes on in the file it had
 */
export function reopenLog(): string | undefined {
  logFile?.reopen();
  return logFile?.path;
}

/** Writes every byte of `bytes`, looping over short writes. */
function writeAllSync(output: { writeSync(bytes: Uint8Array): number }, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += output.writeSync(bytes.subarray(written));
}

/** The logger for one part of sleepingd, e.g. `log("service")`. */
export function log(...category: string[]): Logger {
  return getLogger(["sleepingd", ...category]);
}
