/**
 * Tests that need real server binaries (sshd, redis-server, postgres, nginx):
 * locally they are skipped with the Debian package to install; under
 * `CI=true` a missing binary is a failure, since CI installs them all.
 *
 * @module
 */

import { findExecutable } from "../src/process/which.ts";

/** Folders searched besides PATH: Debian puts some servers outside it. */
const EXTRA_DIRS = ["/usr/sbin", "/sbin", "/usr/local/sbin"];

/** Finds an executable by name on PATH and in `extraDirs` (globs like `/usr/lib/postgresql/*\/bin` allowed). */
export function findBinary(name: string, extraDirs: string[] = []): string | undefined {
  return findExecutable(name, [...EXTRA_DIRS, ...extraDirs.flatMap(expandGlob)]);
}

/** Expands one `*` path segment (enough for `/usr/lib/postgresql/*\/bin`), newest last. */
function expandGlob(pattern: string): string[] {
  const star = pattern.indexOf("*");
  if (star < 0) return [pattern];
  const parent = pattern.slice(0, pattern.lastIndexOf("/", star));
  const rest = pattern.slice(pattern.indexOf("/", star));
  try {
    return [...Deno.readDirSync(parent)]
      .map((entry) => entry.name)
      .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }))
      .reverse()
      .map((name) => `${parent}/${name}${rest}`);
  } catch {
    return [];
  }
}

/** A binary a test needs and the Debian package that brings it. */
export interface Requirement {
  /** Executable name, e.g. `sshd`. */
  binary: string;
  /** Debian package, e.g. `openssh-server`. */
  package: string;
  /** Folders outside PATH to look in (one `*` segment allowed). */
  dirs?: string[];
}

/** Whether this run is CI, where nothing may be skipped. */
export const IN_CI = Deno.env.get("CI") === "true";

/**
 * Resolves every requirement to a path. Returns the paths, or the message
 * saying what to install when one is missing.
 */
export function resolveRequirements(
  requirements: Requirement[],
): { paths: Record<string, string>; missing?: string } {
  const paths: Record<string, string> = {};
  const missing: Requirement[] = [];
  for (const requirement of requirements) {
    const path = findBinary(requirement.binary, requirement.dirs);
    if (path) paths[requirement.binary] = path;
    else missing.push(requirement);
  }
  if (missing.length === 0) return { paths };
  const packages = [...new Set(missing.map((requirement) => requirement.package))].join(" ");
  const binaries = missing.map((requirement) => requirement.binary).join(", ");
  return { paths, missing: `needs ${binaries}: apt-get install ${packages}` };
}

/**
 * Declares a test that needs server binaries. Without them it is skipped
 * (`ignore`) with a message naming the package, except under `CI=true`,
 * where it runs and fails with that message.
 */
export function serverTest(
  name: string,
  requirements: Requirement[],
  fn: (paths: Record<string, string>) => Promise<void>,
) {
  const { paths, missing } = resolveRequirements(requirements);
  if (missing && !IN_CI) {
    console.warn(`skipping "${name}": ${missing}`);
  }
  Deno.test({
    name,
    ignore: missing !== undefined && !IN_CI,
    async fn() {
      if (missing) throw new Error(`Cannot run "${name}": ${missing}`);
      await fn(paths);
    },
  });
}
