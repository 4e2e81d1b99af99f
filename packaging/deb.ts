/**
 * The .deb, built with dpkg-deb from the package's files, a control file, the
 * conffiles and md5sums lists, and the maintainer scripts of packaging/debian/.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { exec } from "./exec.ts";
import { type PackageFile, stage } from "./layout.ts";
import { DESCRIPTION, MAINTAINER, NAME, RECOMMENDS, SECTION, SUMMARY } from "./metadata.ts";
import type { Target } from "./targets.ts";

/** The maintainer scripts, in packaging/debian/. */
const SCRIPTS = ["postinst", "prerm", "postrm"];

/** What the .deb is built from. */
export interface DebOptions {
  /** Every file it installs. */
  files: PackageFile[];
  /** Its version. */
  version: string;
  /** Its architecture. */
  target: Target;
  /** Its Depends field. */
  depends: string;
  /** The folder it is written to. */
  dist: string;
  /** Compress quickly rather than small. */
  fast: boolean;
}

/** The md5sum of the file at `path`, in hex. */
async function md5(path: string): Promise<string> {
  return createHash("md5").update(await Deno.readFile(path)).digest("hex");
}

/** The control file. */
async function control(options: DebOptions, root: string): Promise<string> {
  let kibibytes = 0;
  for (const file of options.files) {
    kibibytes += Math.ceil((await Deno.stat(`${root}${file.path}`)).size / 1024);
  }
  return [
    `Package: ${NAME}`,
    `Version: ${options.version}`,
    `Architecture: ${options.target.debArch}`,
    `Maintainer: ${MAINTAINER}`,
    `Installed-Size: ${kibibytes}`,
    `Depends: ${options.depends}`,
    `Recommends: ${RECOMMENDS.deb.join(", ")}`,
    `Section: ${SECTION}`,
    "Priority: optional",
    `Description: ${SUMMARY}`,
    ...DESCRIPTION.map((line) => ` ${line}`),
    "",
  ].join("\n");
}

/** Builds the .deb; returns its path. */
export async function buildDeb(options: DebOptions): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "sleepingd-deb-" });
  try {
    await stage(options.files, root);
    const debian = `${root}/DEBIAN`;
    await Deno.mkdir(debian, { mode: 0o755 });
    await Deno.writeTextFile(`${debian}/control`, await control(options, root));
    const conffiles = options.files.filter((file) => file.conffile).map((file) => file.path);
    await Deno.writeTextFile(`${debian}/conffiles`, conffiles.map((path) => `${path}\n`).join(""));
    const sums = [];
    for (const file of options.files.filter((file) => !file.conffile)) {
      sums.push(`${await md5(`${root}${file.path}`)}  ${file.path.slice(1)}\n`);
    }
    await Deno.writeTextFile(`${debian}/md5sums`, sums.join(""));
    for (const script of SCRIPTS) {
      await Deno.copyFile(new URL(`debian/${script}`, import.meta.url), `${debian}/${script}`);
      await Deno.chmod(`${debian}/${script}`, 0o755);
    }
    for (const name of ["control", "conffiles", "md5sums"]) {
      await Deno.chmod(`${debian}/${name}`, 0o644);
    }
    const output = `${options.dist}/${NAME}_${options.version}_${options.target.debArch}.deb`;
    const compression = options.fast ? ["-Zgzip", "-z1"] : ["-Zxz"];
    await exec("dpkg-deb", ["--root-owner-group", ...compression, "--build", root, output], {
      debianPackage: "dpkg",
    });
    return output;
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}
