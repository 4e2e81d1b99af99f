/**
 * Finds, reads and merges configuration files into a validated {@linkcode Config}.
 *
 * @module
 */

import { folderDefaults, type UserFolders } from "./folders.ts";
import { KEYS_BY_NAME } from "./keys.ts";
import { parseConfigText, type ParsedFile } from "./parse.ts";
import type { Config } from "./types.ts";
import { type MergedConfig, type MergedSection, validateConfig } from "./validate.ts";

/** Where configuration files are looked for when none is named with `-f`. */
export interface SearchList {
  /** Files read in this order when they exist; `~/` is the user's home folder. */
  files: string[];
  /** Folder whose `*.conf` files are read last, in name order. */
  confDir: string;
}

/** The seed's search list, plus a `conf.d` folder for drop-in files. */
export const DEFAULT_SEARCH_LIST: SearchList = {
  files: [
    "/etc/default/sleepingd.conf",
    "/etc/sleepingd/sleepingd.conf",
    "/etc/sleepingd.conf",
    "~/.sleepingd",
    "etc/sleepingd.conf",
    "etc/sleepingd/sleepingd.conf",
  ],
  confDir: "/etc/sleepingd/conf.d",
};

/**
 * Reads configuration files and returns the validated configuration.
 *
 * Every file is read; a later file's keys override an earlier file's, for the global
 * section and for each section of the same name. A user other than root who cannot
 * write the default VARRUN_PATH or STATE_PATH gets folders of its own when the files
 * leave them blank (`folders.ts`).
 *
 * @param files the files named with `-f`, read exactly; empty means `search`, where every
 *   file found is read
 * @param search where to look when `files` is empty
 * @returns the configuration, with its warnings
 * @throws {Error} when a named file cannot be read, or no file is found in `search`
 * @throws {InvalidConfigError} listing every error found in the files
 */
export async function loadConfig(
  files: string[],
  search: SearchList = DEFAULT_SEARCH_LIST,
): Promise<Config> {
  const texts = files.length > 0 ? await readNamed(files) : await readFound(search);
  const folders = folderDefaults({
    varrunPath: KEYS_BY_NAME.get("VARRUN_PATH")!.default,
    statePath: KEYS_BY_NAME.get("STATE_PATH")!.default,
  });
  return buildConfig(texts.map(({ file, text }) => parseConfigText(text, file)), folders);
}

/**
 * Merges parsed files, later ones overriding earlier ones, and validates the
 * result. The lines the files could not read are errors too, listed with the
 * others; what could be read is still checked.
 *
 * @param files the parsed files, in the order they were read
 * @param folders VARRUN_PATH and STATE_PATH for when the files leave them blank
 * @returns the configuration, with its warnings
 * @throws {InvalidConfigError} listing every error
 */
export function buildConfig(files: ParsedFile[], folders: Partial<UserFolders> = {}): Config {
  return validateConfig(merge(files), files.flatMap((file) => file.errors), folders);
}

function merge(files: ParsedFile[]): MergedConfig {
  const global: MergedSection = {
    name: "global",
    location: { file: files[0]?.file ?? "", line: 1 },
    entries: new Map(),
  };
  const sections = new Map<string, MergedSection>();
  for (const file of files) {
    for (const entry of file.global) global.entries.set(entry.key, entry);
    for (const { name, location, entries } of file.sections) {
      let section = sections.get(name);
      if (section === undefined) {
        section = { name, location, entries: new Map() };
        sections.set(name, section);
      }
      for (const entry of entries) section.entries.set(entry.key, entry);
    }
  }
  return { files: files.map(({ file }) => file), global, sections: [...sections.values()] };
}

/** A file's path and contents. */
interface FileText {
  file: string;
  text: string;
}

/** Reads every named file; any that cannot be read is an error. */
async function readNamed(files: string[]): Promise<FileText[]> {
  const texts: FileText[] = [];
  for (const file of files) {
    const text = await readIfFound(file);
    if (text === undefined) {
      throw new Error(`Cannot read config file "${file}": it does not exist`);
    }
    texts.push({ file, text });
  }
  return texts;
}

/** Reads every file of the search list that exists; finding none is an error. */
async function readFound(search: SearchList): Promise<FileText[]> {
  const home = Deno.env.get("HOME");
  const candidates = search.files.flatMap((file) => {
    if (!file.startsWith("~/")) return [file];
    return home === undefined ? [] : [`${home}${file.slice(1)}`];
  });
  candidates.push(...await listConfDir(search.confDir));
  const texts: FileText[] = [];
  for (const file of candidates) {
    const text = await readIfFound(file);
    if (text !== undefined) texts.push({ file, text });
  }
  if (texts.length === 0) {
    throw new Error(
      `Cannot find a configuration file: looked for ${search.files.join(", ")} and ` +
        `${search.confDir}/*.conf; name one with -f FILE`,
    );
  }
  return texts;
}

/** The `*.conf` files of a folder, in name order; none when the folder does not exist. */
async function listConfDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isDirectory && entry.name.endsWith(".conf")) names.push(entry.name);
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw new Error(`Cannot read config folder "${dir}": ${(error as Error).message}`, {
      cause: error,
    });
  }
  return names.sort().map((name) => `${dir}/${name}`);
}

/** Reads a file, or returns `undefined` when it does not exist. */
async function readIfFound(file: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`Cannot read config file "${file}": ${(error as Error).message}`, {
      cause: error,
    });
  }
}
