/**
 * Finding an executable the way a shell would, on PATH.
 *
 * @module
 */

/**
 * The full path of the executable `name` in a folder of PATH, else in one of
 * `extraDirs`, or undefined when there is none.
 */
export function findExecutable(name: string, extraDirs: string[] = []): string | undefined {
  const path = (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":").filter((dir) => dir !== "");
  return [...path, ...extraDirs].map((dir) => `${dir}/${name}`).find(isExecutable);
}

function isExecutable(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}
