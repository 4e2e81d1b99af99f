/**
 * Which files the packages install, and where: one list that the deb and the
 * rpm both build from, so that both put the same files in the same places.
 * They differ in three things only (`rpmFiles`): the systemd unit's folder,
 * /lib/systemd/system for Debian and /usr/lib/systemd/system (%{_unitdir}) for
 * rpm distributions, the deb's lintian overrides, and the licence's text, which
 * the rpm carries as /usr/share/licenses/sleepingd/LICENSE while the deb's
 * copyright file points at Debian's /usr/share/common-licenses/Apache-2.0.
 *
 * Two layouts carry the program:
 * - `executable`: the single executable of `deno task compile` as /usr/bin/sleepingd;
 * - `bundle`: the program bundled into /usr/lib/sleepingd/sleepingd.js, the
 *   Deno runtime as /usr/lib/sleepingd/deno, and /usr/bin/sleepingd the
 *   script that runs one with the other (packaging/sleepingd.sh).
 *
 * @module
 */

import { debianChangelog } from "./changelog.ts";
import { installedConfig } from "./conffile.ts";
import { manPage } from "./manpage.ts";

/** The repository root. */
const REPO = new URL("../", import.meta.url).pathname;

/** Where the demo of the installed configuration finds its backend. */
const DEMO_BACKEND = "/usr/share/sleepingd/demo/oneshot.ts";

/** What carries the program. */
export type Program =
  | { layout: "executable"; executable: string }
  | { layout: "bundle"; bundle: string; runtime: string };

/** One file a package installs. */
export interface PackageFile {
  /** Where it is installed, e.g. `/usr/bin/sleepingd`. */
  path: string;
  /** Its permission bits. */
  mode: number;
  /** What it holds: the file at this path, or these bytes. */
  source: string | Uint8Array;
  /** Whether it is configuration the administrator may edit: an upgrade keeps the edits. */
  conffile?: boolean;
  /** Whether only the deb has it. */
  debOnly?: boolean;
  /** Whether only the rpm has it. */
  rpmOnly?: boolean;
  /** Whether it is the licence's text (the rpm's %license). */
  license?: boolean;
}

/** What the list depends on. */
export interface LayoutOptions {
  /** The program and how it is carried. */
  program: Program;
  /** The package's version. */
  version: string;
  /** The release date, for the changelog and the manual page. */
  date: Date;
}

/** The systemd unit's folder in the deb. */
const DEB_UNIT_DIR = "/lib/systemd/system/";
/** The systemd unit's folder in the rpm, %{_unitdir} of rpm distributions. */
const RPM_UNIT_DIR = "/usr/lib/systemd/system/";

/** Compresses `text` with `gzip -9n`: the best compression, no name or timestamp. */
async function gzip(text: string): Promise<Uint8Array> {
  const child = new Deno.Command("gzip", {
    args: ["-9n"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout } = await child.output();
  if (code !== 0) throw new Error(`gzip failed with exit code ${code}`);
  return stdout;
}

/** Every file under `dir` of the repository, installed under `target` with its mode. */
async function tree(dir: string, target: string): Promise<PackageFile[]> {
  const files: PackageFile[] = [];
  const entries = [];
  for await (const entry of Deno.readDir(`${REPO}${dir}`)) entries.push(entry);
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const source = `${dir}/${entry.name}`;
    if (entry.isDirectory) files.push(...await tree(source, `${target}/${entry.name}`));
    if (!entry.isFile) continue;
    const { mode } = await Deno.stat(`${REPO}${source}`);
    const executable = ((mode ?? 0) & 0o111) !== 0;
    files.push({
      path: `${target}/${entry.name}`,
      mode: executable ? 0o755 : 0o644,
      source: `${REPO}${source}`,
    });
  }
  return files;
}

/**
 * The lintian overrides: the Deno runtime is one upstream build with its
 * libraries linked in, which lintian would report as embedded copies.
 */
function lintianOverrides(program: Program): PackageFile {
  const runtime = program.layout === "bundle" ? "usr/lib/sleepingd/deno" : "usr/bin/sleepingd";
  const text = "# The Deno runtime is one upstream build with its libraries linked in.\n" +
    `sleepingd: embedded-library * [${runtime}]\n`;
  return {
    path: "/usr/share/lintian/overrides/sleepingd",
    mode: 0o644,
    source: new TextEncoder().encode(text),
    debOnly: true,
  };
}

/** The files that carry the program. */
function programFiles(program: Program): PackageFile[] {
  if (program.layout === "executable") {
    return [{ path: "/usr/bin/sleepingd", mode: 0o755, source: program.executable }];
  }
  return [
    { path: "/usr/bin/sleepingd", mode: 0o755, source: `${REPO}packaging/sleepingd.sh` },
    { path: "/usr/lib/sleepingd/deno", mode: 0o755, source: program.runtime },
    { path: "/usr/lib/sleepingd/sleepingd.js", mode: 0o644, source: program.bundle },
  ];
}

/** Every file the packages install, sorted by path; `debOnly` and `rpmOnly` say which has it. */
export async function packageFiles(options: LayoutOptions): Promise<PackageFile[]> {
  const { program, version, date } = options;
  const deno = program.layout === "bundle" ? "/usr/lib/sleepingd/deno" : "deno";
  const config = installedConfig(await Deno.readTextFile(`${REPO}sleepingd.conf`), {
    deno,
    backend: DEMO_BACKEND,
  });
  const doc = "/usr/share/doc/sleepingd";
  const files: PackageFile[] = [
    ...programFiles(program),
    {
      path: "/etc/sleepingd/sleepingd.conf",
      mode: 0o644,
      source: new TextEncoder().encode(config),
      conffile: true,
    },
    {
      path: "/etc/logrotate.d/sleepingd",
      mode: 0o644,
      source: `${REPO}packaging/sleepingd.logrotate`,
      conffile: true,
    },
    { path: DEMO_BACKEND, mode: 0o644, source: `${REPO}examples/demo/oneshot.ts` },
    {
      path: `${DEB_UNIT_DIR}sleepingd.service`,
      mode: 0o644,
      source: `${REPO}packaging/sleepingd.service`,
    },
    {
      path: "/usr/share/man/man8/sleepingd.8.gz",
      mode: 0o644,
      source: await gzip(await manPage(version, date.toISOString().slice(0, 10))),
    },
    { path: `${doc}/README.md`, mode: 0o644, source: `${REPO}README.md` },
    { path: `${doc}/copyright`, mode: 0o644, source: `${REPO}packaging/debian/copyright` },
    {
      path: "/usr/share/licenses/sleepingd/LICENSE",
      mode: 0o644,
      source: `${REPO}LICENSE`,
      rpmOnly: true,
      license: true,
    },
    {
      path: `${doc}/changelog.gz`,
      mode: 0o644,
      source: await gzip(debianChangelog(version, date)),
    },
    ...await tree("examples", `${doc}/examples`),
    lintianOverrides(program),
  ];
  return files.sort((a, b) => a.path.localeCompare(b.path));
}

/** The deb's files: all but the rpm's own. */
export function debFiles(files: PackageFile[]): PackageFile[] {
  return files.filter((file) => !file.rpmOnly);
}

/** The rpm's files: the systemd unit in %{_unitdir}, no lintian overrides, the licence. */
export function rpmFiles(files: PackageFile[]): PackageFile[] {
  return files.filter((file) => !file.debOnly).map((file) =>
    file.path.startsWith(DEB_UNIT_DIR)
      ? { ...file, path: RPM_UNIT_DIR + file.path.slice(DEB_UNIT_DIR.length) }
      : file
  );
}

/** Writes `files` under the folder `root` with their modes; every folder gets mode 755. */
export async function stage(files: PackageFile[], root: string): Promise<void> {
  await Deno.chmod(root, 0o755);
  for (const file of files) {
    const path = `${root}${file.path}`;
    await mkdirs(root, file.path.slice(0, file.path.lastIndexOf("/")));
    if (typeof file.source === "string") await Deno.copyFile(file.source, path);
    else await Deno.writeFile(path, file.source);
    await Deno.chmod(path, file.mode);
  }
}

/** Creates each folder of `dir` under `root` with mode 755, whatever the umask. */
async function mkdirs(root: string, dir: string): Promise<void> {
  let path = root;
  for (const part of dir.split("/").filter((part) => part !== "")) {
    path += `/${part}`;
    await Deno.mkdir(path, { recursive: true });
    await Deno.chmod(path, 0o755);
  }
}

/** The folders that are the package's own: those named sleepingd and everything under them. */
export function ownFolders(files: PackageFile[]): string[] {
  const folders = new Set<string>();
  for (const { path } of files) {
    const parts = path.split("/").slice(0, -1);
    for (let end = parts.indexOf("sleepingd") + 1; end > 0 && end <= parts.length; end++) {
      folders.add(parts.slice(0, end).join("/"));
    }
  }
  return [...folders].sort();
}
