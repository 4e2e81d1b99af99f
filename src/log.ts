/**
 * Logging: one line per event on stderr, as human text or as JSON lines.
 *
 * Built on `@logtape/logtape` (zero dependencies, Deno-first). Messages use
 * its structured templates so the JSON form keeps every value as a field.
 *
 * @module
 */

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
