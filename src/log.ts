/**
 * Logging: one line per event on stderr, as human text or as JSON lines.
 *
 * Built on `@logtape/logtape` (zero dependencies, Deno-first). Messages use
 * its structured templates so the JSON form keeps every value as a field.
 *
 * @module
 */

import {
  configure,
  getLogger,
  jsonLinesFormatter,
  type Logger,
  type LogLevel,
  type LogRecord,
} from "@logtape/logtape";
import type { Verbosity } from "./cli/options.ts";

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

/** Renders a record as `TIME LEVEL message`, values inline without quotes. */
function formatText(record: LogRecord): string {
  const message = record.message
    .map((part, index) => index % 2 === 0 ? part : renderValue(part))
    .join("");
  const time = new Date(record.timestamp).toISOString();
  return `${time} ${LEVEL_LABEL[record.level].padEnd(5)} ${message}\n`;
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
  const formatter = format === "json" ? jsonLinesFormatter : formatText;
  let output: { writeSync(data: Uint8Array): number } = Deno.stderr;
  if (file !== undefined) {
    try {
      output = Deno.openSync(file, { append: true, create: true });
    } catch (error) {
      throw new Error(`Cannot open log file "${file}": ${(error as Error).message}`);
    }
  }
  await configure({
    reset: true,
    sinks: {
      log: (record: LogRecord) => {
        output.writeSync(encoder.encode(formatter(record)));
      },
    },
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
