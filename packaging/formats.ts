/**
 * The package formats `deno task package` builds, and the tools each needs:
 * checked on PATH before any work begins, so that a missing tool is said at
 * once, with the package that brings it.
 *
 * @module
 */

import { findExecutable } from "../src/process/which.ts";

/** A tool a build runs, and where it comes from. */
export interface Tool {
  /** The program, looked for on PATH. */
  binary: string;
  /** How to install it, e.g. `apt-get install rpm, or dnf install rpm-build`. */
  install: string;
}

/** A package format. */
export interface Format {
  /** Its name, as `--deb` and `--rpm` name it. */
  name: "deb" | "rpm";
  /** The tools its build runs. */
  tools: readonly Tool[];
}

/** Tools every format needs: the manual page and the changelog are gzipped. */
export const COMMON_TOOLS: readonly Tool[] = [
  { binary: "gzip", install: "apt-get install gzip, or dnf install gzip" },
];

/** Every format, in the order they are built. */
export const FORMATS: readonly Format[] = [
  {
    name: "deb",
    tools: [
      { binary: "dpkg-deb", install: "apt-get install dpkg, or dnf install dpkg" },
      { binary: "readelf", install: "apt-get install binutils, or dnf install binutils" },
    ],
  },
  {
    name: "rpm",
    tools: [{ binary: "rpmbuild", install: "apt-get install rpm, or dnf install rpm-build" }],
  },
];

/**
 * Why `tools` cannot run here, e.g. `rpmbuild is not installed (apt-get
 * install rpm, or dnf install rpm-build)`; undefined when every one is on PATH.
 */
export function missingTools(tools: readonly Tool[]): string | undefined {
  const missing = tools.filter((tool) => findExecutable(tool.binary) === undefined);
  if (missing.length === 0) return undefined;
  return missing.map((tool) => `${tool.binary} is not installed (${tool.install})`).join("; ");
}
