/**
 * `deno task compile`: builds `dist/sleepingd`, one executable with no
 * dependencies, with `deno compile`.
 *
 * `deno compile` needs the Deno runtime `denort` of the same version for the
 * target. It downloads it, or takes it from the file named by `DENORT_BIN`.
 * Where neither works this says so and exits 1, without a stack trace.
 *
 * Usage: deno task compile [--target TRIPLE]   (e.g. aarch64-unknown-linux-gnu)
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({ args: Deno.args, options: { target: { type: "string" } } });
const denort = Deno.env.get("DENORT_BIN");
if (denort !== undefined) {
  try {
    Deno.statSync(denort);
  } catch {
    console.error(`compile: DENORT_BIN is set to "${denort}", but there is no such file`);
    Deno.exit(1);
  }
}

const output = values.target ? `dist/sleepingd-${values.target}` : "dist/sleepingd";
const args = ["compile", "-A", "--no-check", "--output", output];
if (values.target) args.push("--target", values.target);
args.push("src/main.ts");
console.error(`compile: deno ${args.join(" ")}${denort ? ` (DENORT_BIN=${denort})` : ""}`);
const { code, stderr } = await new Deno.Command(Deno.execPath(), {
  args,
  env: { NO_COLOR: "1" },
  stdin: "null",
  stdout: "inherit",
  stderr: "piped",
}).output();
if (code === 0) {
  console.error(`compile: wrote ${output}`);
  Deno.exit(0);
}
const lines = new TextDecoder().decode(stderr).split("\n");
// deno prints "error: ..." and then numbered causes; the second cause says what really failed.
const reason = lines.find((line) => /^\s*1: /.test(line)) ??
  lines.find((line) => /^error/.test(line));
console.error(
  `compile: cannot build ${output}: ${reason?.replace(/^\s*1: /, "").trim() ?? "unknown"}`,
);
console.error(
  "compile: deno compile needs the Deno runtime (denort) for the target. Where it cannot be\n" +
    "downloaded, set DENORT_BIN to a denort binary of the same Deno version " +
    `(${Deno.version.deno}) and run this again.`,
);
Deno.exit(1);
