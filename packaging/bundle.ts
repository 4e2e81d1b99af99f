/**
 * The program as one JavaScript file: `deno bundle` of src/main.ts, with the
 * npm dependencies inlined, so that the Deno runtime alone can run it
 * (`deno run --unstable-net --no-config --no-remote --no-npm FILE`).
 *
 * @module
 */

import { exec } from "./exec.ts";

/** The repository root, whose deno.json maps the npm imports. */
const REPO = new URL("../", import.meta.url).pathname;

/** Bundles src/main.ts into `output`, an absolute path. */
export async function bundleProgram(output: string): Promise<void> {
  const args = ["bundle", "--quiet", "--platform", "deno", "--output", output, "src/main.ts"];
  await exec(Deno.execPath(), args, { cwd: REPO });
}
