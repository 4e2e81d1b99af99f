/**
 * Errors for configuration files that cannot be used, pointing at the line.
 *
 * @module
 */

import type { ConfigIssue } from "./types.ts";

/**
 * Formats an issue as `FILE:LINE: message`, the way errors and warnings are printed.
 *
 * @param issue the issue to format
 * @returns e.g. `sleepingd.conf:12: Cannot read "START_CMD": the quote opened here is never closed`
 */
export function formatIssue(issue: ConfigIssue): string {
  return `${issue.location.file}:${issue.location.line}: ${issue.message}`;
}

/**
 * One problem that makes a configuration unusable, e.g. a bad line or a bad number.
 *
 * Its message starts with `FILE:LINE: `; the fields give the same place to code.
 */
export class ConfigError extends Error {
  /** Path of the file, as it was given or found. */
  readonly file: string;
  /** 1-based line number. */
  readonly line: number;
  /** The key concerned, when there is one. */
  readonly key?: string;

  /** Creates the error for an issue found at a place in a file. */
  constructor(issue: ConfigIssue) {
    super(formatIssue(issue));
    this.name = "ConfigError";
    this.file = issue.location.file;
    this.line = issue.location.line;
    this.key = issue.key;
  }
}

/**
 * Every problem found in a configuration, thrown together so that one run shows them all.
 *
 * The message is the single error's message, or a count followed by one line per error.
 */
export class InvalidConfigError extends AggregateError {
  /** The problems, in file order then line order. */
  declare readonly errors: ConfigError[];
  /** Warnings found on the way: they often explain an error (e.g. a misspelt `PORT`). */
  readonly warnings: ConfigIssue[];
  /**
   * VARRUN_PATH as the files set it, when they parsed: the CLI still finds a
   * running daemon (to reload it or stop it) while its configuration is broken.
   */
  varrunPath?: string;

  /** Creates the error from at least one {@linkcode ConfigError}. */
  constructor(errors: ConfigError[], warnings: ConfigIssue[] = []) {
    const message = errors.length === 1
      ? errors[0].message
      : `Cannot use the configuration as it has ${errors.length} errors:\n` +
        errors.map((error) => error.message).join("\n");
    super(errors, message);
    this.name = "InvalidConfigError";
    this.warnings = warnings;
  }
}
