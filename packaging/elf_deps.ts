/**
 * The Debian packages an ELF executable needs: the shared libraries it links
 * (readelf's NEEDED entries), each mapped to its package, and the newest
 * glibc symbol version it uses, as `libc6 (>= 2.27), libgcc-s1`.
 *
 * @module
 */

import { exec } from "./exec.ts";
import { PackagingError } from "./script.ts";

/** The Debian package of each library a Deno runtime links. */
const LIBRARY_PACKAGES: [RegExp, string][] = [
  [/^(libc|libm|libdl|libpthread|librt)\.so\.\d+$|^ld-linux[-.\w]*\.so\.\d+$/, "libc6"],
  [/^libgcc_s\.so\.1$/, "libgcc-s1"],
];

/**
 * The deb's Depends for the executable at `path`.
 *
 * @throws PackagingError when it links a library this does not know the package of
 */
export async function debianDepends(path: string): Promise<string> {
  const options = { debianPackage: "binutils" };
  const dynamic = await exec("readelf", ["--dynamic", "--wide", path], options);
  const libraries = [...dynamic.matchAll(/\(NEEDED\).*\[(.+)\]/g)].map((match) => match[1]);
  const packages = new Set<string>();
  for (const library of libraries) {
    const found = LIBRARY_PACKAGES.find(([pattern]) => pattern.test(library));
    if (!found) throw new PackagingError(`${path} links ${library}, whose package is not known`);
    packages.add(found[1]);
  }
  const versions = await exec("readelf", ["--version-info", "--wide", path], options);
  const glibc = [...versions.matchAll(/GLIBC_(\d+)\.(\d+)/g)]
    .map((match) => [Number(match[1]), Number(match[2])])
    .sort(([a1, a2], [b1, b2]) => a1 - b1 || a2 - b2)
    .at(-1);
  packages.add("libc6");
  return [...packages].sort().map((name) =>
    name === "libc6" && glibc ? `libc6 (>= ${glibc.join(".")})` : name
  ).join(", ");
}
