/**
 * Building a configuration from one file's text, for the tests of what the
 * configuration reads and refuses.
 */
import assert from "node:assert/strict";
import { formatIssue, InvalidConfigError } from "../src/config/config_error.ts";
import { buildConfig } from "../src/config/load.ts";
import { parseConfigText } from "../src/config/parse.ts";
import type { Config, ServiceConfig } from "../src/config/types.ts";

/** Builds the configuration of one file's text, named `t.conf`. */
export function build(text: string): Config {
  return buildConfig([parseConfigText(text, "t.conf")]);
}

/** The one service `text` defines. */
export function service(text: string): ServiceConfig {
  const { services } = build(text);
  assert.equal(services.length, 1, `expected one service, got ${services.length}`);
  return services[0];
}

/** The messages of the InvalidConfigError that building `text` throws. */
export function errorsOf(text: string): string[] {
  try {
    build(text);
  } catch (error) {
    assert.ok(error instanceof InvalidConfigError, `expected InvalidConfigError, got ${error}`);
    return error.errors.map(({ message }) => message);
  }
  assert.fail("expected the configuration to be refused");
}

/** The warnings of a valid configuration, formatted as `file:line: message`. */
export function warningsOf(text: string): string[] {
  return build(text).warnings.map(formatIssue);
}
