/**
 * `deno task package`: builds the deb and the rpm of sleepingd into dist/, and
 * rewrites dist/SHA256SUMS.
 *
 * The program goes in as the single executable `dist/sleepingd-TARGET` when
 * `deno task compile` built it; otherwise as the bundle layout (see
 * packaging/layout.ts), which ships the Deno runtime running this script and
 * so is built for this machine's target only.
 *
 * The tools of each format are looked for before any work begins: without
 * `--deb` or `--rpm`, every format whose tools are installed is built and the
 * others are named with what to install; a format asked for whose tools are
 * missing fails at once.
 *
 * Reads SOURCE_DATE_EPOCH, when set, for the changelog and manual page date.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { bundleProgram } from "./bundle.ts";
import { writeChecksums } from "./checksums.ts";
import { buildDeb } from "./deb.ts";
import { debianDepends } from "./elf_deps.ts";
import { debFiles, packageFiles, type Program, rpmFiles } from "./layout.ts";
import { buildRpm } from "./rpm.ts";
import { COMMON_TOOLS, type Format, FORMATS, missingTools } from "./formats.ts";
import { PackagingError, runScript } from "./script.ts";
import { mebibytes } from "./size.ts";
import { elfTarget, findTarget, hostTarget, type Target } from "./targets.ts";
import { checkVersion, printedVersion, sourceVersion } from "./version.ts";

/** What `--help` prints. */
const USAGE = `Usage: deno task package [--deb] [--rpm] [--target TRIPLE] [--version VERSION]
                         [--dist DIR] [--fast]

Builds the deb and the rpm of sleepingd into DIR (dist), and DIR/SHA256SUMS.
Without --deb or --rpm, builds every format whose tools are installed and says
which it skips: the deb needs dpkg-deb (dpkg) and readelf (binutils), the rpm
rpmbuild (rpm on Debian and Ubuntu, rpm-build on Fedora).

Options:
  --deb, --rpm       build only these formats; fail at once if their tools are missing
  --target TRIPLE    the platform (default: this machine's): x86_64-unknown-linux-gnu
                     or aarch64-unknown-linux-gnu; another one needs "deno task compile"
  --version VERSION  the packages' version (default: src/version.ts's); the program
                     still prints its own: for trying upgrades
  --dist DIR         where the executables are looked for and the packages written
  --fast             compress quickly instead of small (for tests)
  -h, --help         print this help`;

/**
 * The formats to build: those asked for, else all; each without its tools is
 * skipped with a line saying what to install, unless it was asked for.
 *
 * @throws PackagingError when a format asked for, or every format, cannot be built
 */
function chooseFormats(deb: boolean, rpm: boolean): Format[] {
  const common = missingTools(COMMON_TOOLS);
  if (common) throw new PackagingError(`cannot build any package: ${common}`);
  const asked = deb || rpm;
  const formats: Format[] = [];
  const skipped: string[] = [];
  for (const format of FORMATS) {
    if (asked && !(format.name === "deb" ? deb : rpm)) continue;
    const missing = missingTools(format.tools);
    if (missing === undefined) formats.push(format);
    else if (asked) throw new PackagingError(`cannot build the ${format.name}: ${missing}`);
    else skipped.push(`the ${format.name}: ${missing}`);
  }
  if (formats.length === 0) throw new PackagingError(`cannot build ${skipped.join("; nor ")}`);
  for (const why of skipped) console.error(`package: skipping ${why}`);
  return formats;
}

/** The release date: SOURCE_DATE_EPOCH (seconds) when set, else now. */
function releaseDate(): Date {
  const epoch = Deno.env.get("SOURCE_DATE_EPOCH");
  if (epoch === undefined) return new Date();
  if (!/^\d+$/.test(epoch)) throw new PackagingError(`SOURCE_DATE_EPOCH "${epoch}" is not seconds`);
  return new Date(Number(epoch) * 1000);
}

/** Fails unless `printed` (what a program printed for --version) is `version`. */
function expectVersion(what: string, printed: string, version: string): void {
  if (printed !== version) {
    throw new PackagingError(
      `${what} printed "${printed.split("\n")[0]}" for --version, not ${version}: rebuild it`,
    );
  }
}

/** The program to package for `target`: the compiled executable in `dist`, else a bundle made in `work`. */
async function chooseProgram(
  target: Target,
  dist: string,
  version: string,
  work: string,
): Promise<Program> {
  const host = hostTarget();
  const executable = `${dist}/sleepingd-${target.triple}`;
  const compiled = await Deno.stat(executable).then(() => true, () => false);
  if (compiled) {
    const built = await elfTarget(executable);
    if (built !== target) throw new PackagingError(`${executable} is built for ${built.triple}`);
    if (target === host) expectVersion(executable, await printedVersion(executable), version);
    return { layout: "executable", executable };
  }
  if (target !== host) {
    throw new PackagingError(
      `there is no ${executable}: build it with "deno task compile --target ${target.triple}" ` +
        `(without it, the package ships this machine's Deno runtime, for ${host.triple})`,
    );
  }
  const bundle = `${work}/sleepingd.js`;
  await bundleProgram(bundle);
  const runtime = Deno.execPath();
  const args = ["run", "--no-config", bundle];
  expectVersion("the bundle", await printedVersion(runtime, args), version);
  return { layout: "bundle", bundle, runtime };
}

/** The command line, read; an unknown option says where the help is. */
function readArgs() {
  try {
    return parseArgs({
      args: Deno.args,
      options: {
        deb: { type: "boolean", default: false },
        rpm: { type: "boolean", default: false },
        target: { type: "string" },
        version: { type: "string" },
        dist: { type: "string", default: "dist" },
        fast: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (error) {
    throw new PackagingError(`${(error as Error).message} (see --help)`);
  }
}

/** Builds the packages the command line asks for, then SHA256SUMS. */
async function main() {
  const values = readArgs();
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const formats = chooseFormats(values.deb, values.rpm);
  const target = values.target ? findTarget(values.target) : hostTarget();
  const source = await sourceVersion();
  const version = values.version === undefined ? source : checkVersion(values.version);
  const { dist, fast } = values;
  const date = releaseDate();
  await Deno.mkdir(dist, { recursive: true });
  const work = await Deno.makeTempDir({ prefix: "sleepingd-package-" });
  try {
    const program = await chooseProgram(target, dist, source, work);
    const elf = program.layout === "executable" ? program.executable : program.runtime;
    const files = await packageFiles({ program, version, date });
    for (const format of formats) {
      const path = format.name === "deb"
        ? await buildDeb({
          files: debFiles(files),
          version,
          target,
          depends: await debianDepends(elf),
          dist,
          fast,
        })
        : await buildRpm({ files: rpmFiles(files), version, target, date, dist, fast });
      const { size } = await Deno.stat(path);
      console.error(`package: wrote ${path} (${mebibytes(size)}, ${program.layout} layout)`);
    }
    console.error(`package: wrote ${await writeChecksums(dist)}`);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

if (import.meta.main) await runScript("package", main);
