/**
 * Logging: one line per event on stderr, as human text or as JSON lines.
 *
 * Built on `@logtape/logtape` (zero dependencies, Deno-first). Messages use
 * its structured templates so the JSON form keeps every value as a field.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { configure, getLogger, type Logger, type LogLevel, type LogRecord } from "@logtape/logtape";

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

/**
 * Sends sleepingd's log records to stderr, or appended to `file`, at the
 * given level and format. Writes are synchronous so no line is lost when the
 * process exits.
 *
 * @throws {Error} naming the file when it cannot be opened
 */
export async function setupLogging(
  verbosity: Verbosity,
  format: LogFormat = "text",
  file?: string,
) {
  const formatter = format === "json" ? formatJson : formatText;
  let logFile: Deno.FsFile | undefined;
  if (file !== undefined) {
    try {
      logFile = Deno.openSync(file, { append: true, create: true });
    } catch (error) {
      throw new Error(`Cannot open log file "${file}": ${(error as Error).message}`);
    }
  }
  const output = logFile ?? Deno.stderr;
  // Disposable: a reconfiguration (or a reset) closes the file of the sink it replaces.
  const sink = Object.assign((record: LogRecord) => {
    gather(record);
    output.writeSync(encoder.encode(formatter(record)));
  }, { [Symbol.dispose]: () => logFile?.close() });
  await configure({
    reset: true,
    sinks: { log: sink },
    loggers: [
      { category: ["sleepingd"], lowestLevel: LOWEST_LEVEL[verbosity], sinks: ["log"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["log"] },
    ],
  });
}

/** The logger for one part of sleepingd, e.g. `log("service")`. */
export function log(...category: string[]): Logger {
  return getLogger(["sleepingd", ...category]);
}
