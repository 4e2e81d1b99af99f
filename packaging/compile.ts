/**
 * `deno task compile`: builds `dist/sleepingd-TARGET`, one executable with no
 * dependencies, for each Linux target, and writes dist/SHA256SUMS.
 *
 * `deno compile` needs the Deno runtime `denort` of the same Deno version for
 * the target. It downloads it, or takes the file named by `DENORT_BIN`, which
 * serves the one target its ELF header names. Where neither works this says
 * why in one line and exits 1. An executable built for this machine is run
 * once, to check it prints the version of src/version.ts.
 *
 * Usage: deno task compile [--target TRIPLE]...
 *   without --target: every target (x86_64 and aarch64 Linux), or DENORT_BIN's alone
 *
 * @module
 */

import { parseArgs } from "node:util";
import { writeChecksums } from "./checksums.ts";
import { PackagingError, runScript } from "./script.ts";
import { mebibytes } from "./size.ts";
import { elfTarget, findTarget, hostTarget, type Target, TARGETS } from "./targets.ts";
import { printedVersion, sourceVersion } from "./version.ts";

/** Where the executables and SHA256SUMS go. */
const DIST = "dist";

/** The targets to build: those asked for, else DENORT_BIN's, else all of them. */
async function chooseTargets(asked: string[] | undefined, denort: string | undefined) {
  const targets = asked?.map(findTarget);
  if (denort === undefined) return targets ?? [...TARGETS];
  try {
    await Deno.stat(denort);
  } catch {
    throw new PackagingError(`DENORT_BIN is set to "${denort}", but there is no such file`);
  }
  const runtime = await elfTarget(denort);
  const other = targets?.find((target) => target !== runtime);
  if (other) {
    throw new PackagingError(
      `DENORT_BIN (${denort}) is the runtime for ${runtime.triple}, not ${other.triple}`,
    );
  }
  return [runtime];
}

/** Why `deno compile` failed, from its stderr, as one line. */
function failure(output: string, stderr: string, target: Target): string {
  const lines = stderr.split("Stack backtrace:")[0].split("\n").map((line) => line.trim());
  const causes = lines.filter((line) => /^\d+: /.test(line)).map((line) =>
    line.replace(/^\d+: /, "")
  );
  const reason = causes.at(-1) ?? lines.find((line) => line.startsWith("error:"))?.slice(6).trim();
  const download = stderr.match(/https:\/\/\S*denort\S*\.zip/)?.[0];
  if (download || /Setting up base binary/.test(stderr)) {
    return `cannot build ${output}: the Deno runtime denort ${Deno.version.deno} for ` +
      `${target.triple} could not be had (${download ? `${download}: ` : ""}${reason}); ` +
      "set DENORT_BIN to that file and run this again";
  }
  return `cannot build ${output}: ${reason ?? "deno compile failed"}`;
}

/** Builds the executable for `target`; checks it when it runs on this machine. */
async function compile(target: Target, version: string): Promise<string> {
  const output = `${DIST}/sleepingd-${target.triple}`;
  // --unstable-net for the UDP sockets, as deno.json says for `deno run`.
  const args = [
    ...["compile", "-A", "--unstable-net", "--no-check"],
    ...["--target", target.triple, "--output", output],
  ];
  console.error(`compile: deno ${args.join(" ")} src/main.ts`);
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [...args, "src/main.ts"],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new PackagingError(failure(output, new TextDecoder().decode(stderr), target));
  }
  if (target === hostTarget()) await checkRuns(output, version);
  return output;
}

/** Removes `executable` and fails unless it prints `version` for --version. */
async function checkRuns(executable: string, version: string): Promise<void> {
  const printed = await printedVersion(executable);
  if (printed === version) return;
  await Deno.remove(executable);
  throw new PackagingError(
    `${executable} printed "${printed.split("\n")[0]}" for --version, not ${version}: ` +
      "DENORT_BIN must be the runtime denort, not deno itself",
  );
}

/** What `--help` prints. */
const USAGE = `Usage: deno task compile [--target TRIPLE]...

Builds dist/sleepingd-TARGET, one executable with no dependencies, for each
target (x86_64-unknown-linux-gnu and aarch64-unknown-linux-gnu; with
DENORT_BIN, the target of that runtime alone), and dist/SHA256SUMS.

Options:
  --target TRIPLE  build for this target only (repeatable)
  -h, --help       print this help

Environment:
  DENORT_BIN       the Deno runtime denort to build with, where deno compile
                   cannot download it`;

/** Builds the executables the command line asks for, then SHA256SUMS. */
async function main() {
  let values;
  try {
    values = parseArgs({
      args: Deno.args,
      options: {
        target: { type: "string", multiple: true },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (error) {
    throw new PackagingError(`${(error as Error).message} (see --help)`);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const denort = Deno.env.get("DENORT_BIN") || undefined;
  const targets = await chooseTargets(values.target, denort);
  const version = await sourceVersion();
  await Deno.mkdir(DIST, { recursive: true });
  for (const target of targets) {
    const output = await compile(target, version);
    const { size } = await Deno.stat(output);
    console.error(`compile: wrote ${output} (sleepingd ${version}, ${mebibytes(size)})`);
  }
  console.error(`compile: wrote ${await writeChecksums(DIST)}`);
}

if (import.meta.main) await runScript("compile", main);
