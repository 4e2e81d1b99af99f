/**
 * The core that every feature's checks share: a section's settings as read
 * (its own entries, then the global ones it inherits), the issues found
 * (errors and warnings, sorted by place), and an active service as built,
 * with where its keys were set.
 *
 * @module
 */

import { KEYS_BY_NAME } from "../keys.ts";
import type { RawEntry } from "../parse.ts";
import type { CommandSpec, ConfigIssue, Location, ServiceConfig } from "../types.ts";
import { INVALID, readValue, type Value } from "../values.ts";

/** One section after every file was read: the last value of each key wins. */
export interface MergedSection {
  /** The section name; "global" for the global section. */
  name: string;
  /** Where the section first appears (line 1 of the first file for the global section). */
  location: Location;
  /** The last entry of each key, by key. */
  entries: Map<string, RawEntry>;
}

/** Errors and warnings, kept apart until they are sorted by place. */
export class Issues {
  readonly #files: string[];
  readonly #errors: ConfigIssue[] = [];
  readonly #warnings: ConfigIssue[] = [];

  /** Sorts by the order of `files`, then by line. */
  constructor(files: string[]) {
    this.#files = files;
  }

  /** Records an error about `key` at `location`. */
  error(location: Location, key: string, message: string): void {
    this.#errors.push({ location, key, message });
  }

  /** Records a warning at `entry`. */
  warn(entry: RawEntry, message: string): void {
    this.#warnings.push({ location: entry.location, key: entry.key, message });
  }

  /** Both lists in file order, then line order. */
  sorted(): { errors: ConfigIssue[]; warnings: ConfigIssue[] } {
    const rank = (issue: ConfigIssue) => this.#files.indexOf(issue.location.file);
    const byPlace = (a: ConfigIssue, b: ConfigIssue) =>
      rank(a) - rank(b) || a.location.line - b.location.line;
    return {
      errors: this.#errors.toSorted(byPlace),
      warnings: this.#warnings.toSorted(byPlace),
    };
  }
}

/** The settings of one service: its own entries, then the global ones it inherits. */
export class Settings {
  /** The section the settings are of. */
  readonly section: MergedSection;
  readonly #inherited?: MergedSection;
  readonly #values: Map<RawEntry, Value | typeof INVALID>;

  /**
   * The settings of `section`, inheriting from `inherited` (the global
   * section; none for the global section itself), with each entry's value
   * as `values` read it.
   */
  constructor(
    section: MergedSection,
    inherited: MergedSection | undefined,
    values: Map<RawEntry, Value | typeof INVALID>,
  ) {
    this.section = section;
    this.#inherited = inherited;
    this.#values = values;
  }

  /** The entry that sets `name` for this service, if any. */
  entry(name: string): RawEntry | undefined {
    const own = this.section.entries.get(name);
    if (own !== undefined || KEYS_BY_NAME.get(name)!.perSection) return own;
    return this.#inherited?.entries.get(name);
  }

  /** The value of `name`, typed by its kind; `undefined` also when it could not be read. */
  get(name: string): Value {
    const entry = this.entry(name);
    const value = entry === undefined
      ? readValue(KEYS_BY_NAME.get(name)!, "", this.#inherited === undefined)
      : this.#values.get(entry);
    return value === INVALID ? undefined : value;
  }

  /** The command set by `name`, with its own timeout key or else `EXEC_CMD_TIMEOUT`. */
  command(name: string, timeoutName?: string): CommandSpec | undefined {
    const text = this.get(name) as string | undefined;
    if (text === undefined) return undefined;
    const own = timeoutName === undefined ? undefined : this.get(timeoutName) as number | undefined;
    const timeout = own ?? this.get("EXEC_CMD_TIMEOUT") as number | undefined;
    const source = this.entry(name)!.location;
    return timeout === undefined || timeout === 0 ? { text, source } : { text, timeout, source };
  }

  /** How messages name the section: `[name]`, or "the global section". */
  describe(): string {
    return this.#inherited === undefined ? "the global section" : `[${this.section.name}]`;
  }
}

/** An active service, where its port was set and how messages name it. */
export interface Built {
  /** The service as configured. */
  service: ServiceConfig;
  /** Where its PORT was set. */
  portAt: Location;
  /** How messages name it: `[name]`, or "the global section". */
  description: string;
  /** Where DEPENDS_ON was set, when it was. */
  dependsOnAt?: Location;
  /** Where HOSTNAMES was set, when it was. */
  hostnamesAt?: Location;
  /** The entry that sets IDLE_TIME for it (its own or the global one), when one does. */
  idleTimeAt?: RawEntry;
  /** The entry that sets START_CMD for it, when one does. */
  startCmdAt?: RawEntry;
}

/** A limit as configured: a number above 0, or undefined for blank and 0 (no limit). */
export function positive(value: Value): number | undefined {
  return typeof value === "number" && value > 0 ? value : undefined;
}

/**
 * The space-separated names of `key`, undefined when blank; records an error
 * naming the line for the first one that does not match `form` (`what` says
 * what it must be).
 */
export function names(
  settings: Settings,
  key: string,
  form: RegExp,
  what: string,
  issues: Issues,
): string[] | undefined {
  const list = ((settings.get(key) as string[] | undefined) ?? []).filter(Boolean);
  if (list.length === 0) return undefined;
  const bad = list.find((name) => !form.test(name));
  if (bad === undefined) return list;
  issues.error(
    settings.entry(key)!.location,
    key,
    `Cannot use "${key}" as each entry must be ${what}: "${bad}" is not`,
  );
  return undefined;
}

/** `{ [key]: value }`, or `{}` when the value is undefined: unset keys stay absent. */
export function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : { [key]: value } as { [P in K]?: V };
}
