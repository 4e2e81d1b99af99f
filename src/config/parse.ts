/**
 * Reads text in the seed's configuration dialect into sections of raw `KEY=value` entries.
 *
 * The rules are those of the original bash reader (docs/ARCHITECTURE.md, "Configuration"):
 * one `KEY=value` per line, values made of bare text, `"double quoted"` and `'single quoted'`
 * parts, `#` comments, quotes that go on over several lines, and `[Section name]` headers.
 * Values are kept literally: `$VAR` is left for the shell that runs the command.
 *
 * @module
 */

import { ConfigError } from "./config_error.ts";
import type { Location } from "./types.ts";

/** One `KEY=value` line (or lines, when a quote goes on) as written, before validation. */
export interface RawEntry {
  /** The key, e.g. `START_CMD`; any `[A-Za-z_][A-Za-z0-9_]*`, known or not. */
  key: string;
  /** The value with quotes removed and escapes applied; may hold newlines. */
  value: string;
  /** Where the line starts. */
  location: Location;
}

/** The entries under one `[Section name]` header. */
export interface RawSection {
  /** The text between the brackets, trimmed. */
  name: string;
  /** Where the header is. */
  location: Location;
  /** The entries in file order; a key set twice appears twice, the last one wins. */
  entries: RawEntry[];
}

/** A whole file: its global entries (before the first header), its sections, and the lines it could not read. */
export interface ParsedFile {
  /** Path of the file, as it was given or found. */
  file: string;
  /** Entries before the first `[section]`, in file order. */
  global: RawEntry[];
  /** Sections in file order; a name may appear more than once. */
  sections: RawSection[];
  /**
   * The lines that could not be read, in file order. Reading goes on past
   * each, so the rest of the file still counts: the CLI finds VARRUN_PATH
   * (and the running daemon) in a file being fixed, and one run shows every
   * error.
   */
  errors: ConfigError[];
}

/** `[Section name]`, optionally followed by a comment. */
const SECTION = /^\[(?<name>[^\]]*)\]\s*(?:#.*)?$/;
/** `KEY=` and the rest of the line, on a line whose leading whitespace is removed. */
const ASSIGNMENT = /^(?<key>[A-Za-z_][A-Za-z0-9_]*)\s*=(?<rest>.*)$/s;
/** Line endings: `\n` and `\r\n`. */
const LINE_BREAK = /\r?\n/;

/**
 * Parses the text of one configuration file.
 *
 * @example Reading a section
 * ```ts
 * const parsed = parseConfigText('[web]\nPORT=8080 # the port\n', "web.conf");
 * parsed.sections[0].entries[0]; // { key: "PORT", value: "8080", location: { file: "web.conf", line: 2 } }
 * ```
 *
 * @param text the file's contents
 * @param file the path to name in locations and errors
 * @returns the global entries and the sections, in file order, and every
 *   line that could not be read, e.g.
 *   `x.conf:3: Cannot read line "foo bar": expected KEY=value or [section]`
 */
export function parseConfigText(text: string, file: string): ParsedFile {
  const lines = text.replace(/^\uFEFF/, "").split(LINE_BREAK);
  const parsed: ParsedFile = { file, global: [], sections: [], errors: [] };
  let entries = parsed.global;
  for (let index = 0; index < lines.length; index++) {
    // A stray \r at the end (a file saved with \r\r\n) is whitespace like any other.
    const line = lines[index].trimStart().replace(/\r+$/, "");
    const trimmed = line.trimEnd();
    const location = { file, line: index + 1 };
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const section = SECTION.exec(trimmed);
    if (section) {
      const name = section.groups!.name.trim();
      if (name === "") {
        parsed.errors.push(
          new ConfigError({
            location,
            message: `Cannot read section header "${trimmed}": the section name is empty`,
          }),
        );
        entries = []; // its keys belong to no section: kept nowhere
        continue;
      }
      entries = [];
      parsed.sections.push({ name, location, entries });
      continue;
    }
    const assignment = ASSIGNMENT.exec(line);
    if (!assignment) {
      parsed.errors.push(
        new ConfigError({
          location,
          message: `Cannot read line "${trimmed}": expected KEY=value or [section]`,
        }),
      );
      continue;
    }
    const { key, rest } = assignment.groups!;
    const read = readValue(key, lines, index, rest, file);
    if (read instanceof ConfigError) {
      parsed.errors.push(read);
      break; // the open quote took the rest of the file
    }
    entries.push({ key, value: read.value, location });
    index = read.lastIndex;
  }
  return parsed;
}

/** A value and the index of the last line it took (later than the first for open quotes). */
interface ValueRead {
  value: string;
  lastIndex: number;
}

/**
 * Reads a value that starts with `rest`, on line `index`, going on over the next lines
 * while a quote is open.
 *
 * @returns the value, or the error when a quote is never closed
 */
function readValue(
  key: string,
  lines: string[],
  index: number,
  rest: string,
  file: string,
): ValueRead | ConfigError {
  let value = "";
  let started = false;
  // Unquoted whitespace is kept only when more of the value follows it.
  let space = "";
  let line = rest;
  let at = 0;
  const append = (text: string) => {
    value += (started ? space : "") + text;
    space = "";
    started = true;
  };
  while (at < line.length) {
    const char = line[at];
    if (char === '"' || char === "'") {
      const openedAt = index;
      let part = "";
      at++;
      while (line[at] !== char) {
        if (at >= line.length) {
          index++;
          if (index >= lines.length) {
            return new ConfigError({
              location: { file, line: openedAt + 1 },
              key,
              message: `Cannot read "${key}": the quote opened here is never closed`,
            });
          }
          line = lines[index];
          at = 0;
          part += "\n";
        } else if (char === '"' && line[at] === "\\" && /["\\]/.test(line[at + 1] ?? "")) {
          part += line[at + 1];
          at += 2;
        } else {
          part += line[at++];
        }
      }
      at++;
      append(part);
    } else if (char === " " || char === "\t") {
      space += char;
      at++;
    } else if (char === "#" && (space !== "" || !started)) {
      break;
    } else {
      append(char);
      at++;
    }
  }
  return { value, lastIndex: index };
}
