/**
 * `dist/SHA256SUMS`: the checksum of every release file in dist/, in the
 * format `sha256sum -c` reads.
 *
 * @module
 */

/** The file this writes, in the folder it describes. */
const CHECKSUMS = "SHA256SUMS";

/** Writes `DIR/SHA256SUMS` for every other file in `dir`, sorted by name; returns its path. */
export async function writeChecksums(dir: string): Promise<string> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name !== CHECKSUMS) names.push(entry.name);
  }
  const lines: string[] = [];
  for (const name of names.sort()) {
    const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(`${dir}/${name}`));
    const hex = Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0"));
    lines.push(`${hex.join("")}  ${name}`);
  }
  const path = `${dir}/${CHECKSUMS}`;
  await Deno.writeTextFile(path, lines.map((line) => `${line}\n`).join(""));
  return path;
}
