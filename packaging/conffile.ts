/**
 * /etc/sleepingd/sleepingd.conf as the packages install it: the shipped
 * sleepingd.conf, with the demo's backend run from where the package puts it
 * instead of from the repository root.
 *
 * @module
 */

import { PackagingError } from "./script.ts";

/** Where the installed demo finds its backend and the runtime that runs it. */
export interface DemoPaths {
  /** The demo backend, oneshot.ts. */
  backend: string;
  /** The deno that runs it: the packaged runtime, or `deno` from PATH. */
  deno: string;
}

/** Each text of the shipped demo section that names a repository path, and its replacement. */
function replacements(paths: DemoPaths): [string, string][] {
  const runtime = paths.deno === "deno"
    ? "It needs deno on\n# PATH (https://deno.com)"
    : "It runs with the Deno\n# runtime installed with sleepingd";
  return [
    [
      "Paths are relative to the\n# repository root, where `deno task dev` runs.",
      `${runtime}; set ACTIVE=no below once you have tried it.`,
    ],
    [
      "deno run --allow-net examples/demo/oneshot.ts",
      `${paths.deno} run --no-config --allow-net ${paths.backend}`,
    ],
  ];
}

/**
 * The installed configuration made from the shipped one.
 *
 * @throws PackagingError when the demo section no longer reads as expected
 */
export function installedConfig(shipped: string, paths: DemoPaths): string {
  let text = shipped;
  for (const [from, to] of replacements(paths)) {
    if (text.split(from).length !== 2) {
      throw new PackagingError(
        `sleepingd.conf no longer holds "${from.split("\n")[0]}" once: ` +
          "update packaging/conffile.ts to match its demo section",
      );
    }
    text = text.replace(from, () => to);
  }
  return text;
}
