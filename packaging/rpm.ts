/**
 * The .rpm, built with rpmbuild (Debian's rpm package does) from the same
 * files as the deb, in a temporary _topdir with its own rpm database, with
 * the spec packaging/rpm/sleepingd.spec.in.
 *
 * @module
 */

import { rpmChangelog } from "./changelog.ts";
import { exec } from "./exec.ts";
import { ownFolders, type PackageFile, stage } from "./layout.ts";
import { DESCRIPTION, LICENSE, MAINTAINER, NAME, RECOMMENDS, SUMMARY } from "./metadata.ts";
import { PackagingError } from "./script.ts";
import type { Target } from "./targets.ts";

/** What the .rpm is built from. */
export interface RpmOptions {
  /** Every file it installs. */
  files: PackageFile[];
  /** Its version. */
  version: string;
  /** Its architecture. */
  target: Target;
  /** The date of its changelog entry. */
  date: Date;
  /** The folder it is written to. */
  dist: string;
  /** Compress quickly rather than small. */
  fast: boolean;
}

/** The %files lines: the package's own folders, then every file with its mode. */
function filesSection(files: PackageFile[]): string {
  const folders = ownFolders(files).map((folder) => `%dir ${folder}`);
  const lines = files.map((file) => {
    const attr = `%attr(${file.mode.toString(8).padStart(4, "0")},root,root)`;
    const kind = file.conffile
      ? "%config(noreplace) "
      : file.license
      ? "%license "
      : file.path.startsWith("/usr/share/doc/")
      ? "%doc "
      : "";
    return `${attr} ${kind}${file.path}`;
  });
  return [...folders, ...lines].join("\n");
}

/** The spec, from its template. */
async function spec(options: RpmOptions, stageDir: string): Promise<string> {
  const template = await Deno.readTextFile(new URL("rpm/sleepingd.spec.in", import.meta.url));
  const fields: Record<string, string> = {
    VERSION: options.version,
    SUMMARY,
    LICENSE,
    MAINTAINER,
    RECOMMENDS: RECOMMENDS.rpm.join(", "),
    DESCRIPTION: DESCRIPTION.join("\n"),
    STAGE: stageDir,
    FILES: filesSection(options.files),
    CHANGELOG: rpmChangelog(options.version, options.date).trimEnd(),
  };
  return template.replace(/@([A-Z]+)@/g, (_, name: string) => {
    if (name in fields) return fields[name];
    throw new PackagingError(`packaging/rpm/sleepingd.spec.in names an unknown field @${name}@`);
  });
}

/** Builds the .rpm; returns its path. */
export async function buildRpm(options: RpmOptions): Promise<string> {
  const top = await Deno.makeTempDir({ prefix: "sleepingd-rpm-" });
  try {
    const stageDir = `${top}/stage`;
    await Deno.mkdir(stageDir);
    await stage(options.files, stageDir);
    const specFile = `${top}/${NAME}.spec`;
    await Deno.writeTextFile(specFile, await spec(options, stageDir));
    const arch = options.target.rpmArch;
    const name = `${NAME}-${options.version}-1.${arch}.rpm`;
    await exec("rpmbuild", [
      "-bb",
      "--quiet",
      "--target",
      `${arch}-linux`,
      "--define",
      `_topdir ${top}`,
      "--define",
      `_dbpath ${top}/rpmdb`,
      "--define",
      `_build_name_fmt ${name}`,
      "--define",
      `_binary_payload ${options.fast ? "w1.gzdio" : "w6T.xzdio"}`,
      specFile,
    ], { debianPackage: "rpm" });
    const output = `${options.dist}/${name}`;
    await Deno.copyFile(`${top}/RPMS/${name}`, output);
    return output;
  } finally {
    await Deno.remove(top, { recursive: true });
  }
}
