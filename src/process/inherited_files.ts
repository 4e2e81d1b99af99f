/**
 * Files sleepingd inherited open from whoever started it (a shell's
 * redirection, a supervisor's socket) are kept from the commands it runs:
 * marked close-on-exec at start, so that no command, whatever user it runs
 * as, gets a descriptor above 2 it was not meant to have (docs/ARCHITECTURE.md,
 * "Commands"). What Deno opens itself is close-on-exec already.
 *
 * @module
 */

/** `CLOSE_RANGE_CLOEXEC`: mark the range close-on-exec rather than close it. */
const CLOSE_RANGE_CLOEXEC = 4;
/** `fcntl`'s `F_SETFD` and its one flag, `FD_CLOEXEC`. */
const F_SETFD = 2;
const FD_CLOEXEC = 1;

/**
 * Marks every descriptor above 2 close-on-exec: with Linux's `close_range`
 * (5.11 and later), else one by one with `fcntl` as `/proc/self/fd` lists them.
 *
 * @returns how it was done, or why it could not be (no FFI permission, no libc)
 */
export function keepInheritedFilesFromCommands(): { done: boolean; how: string } {
  let libc;
  try {
    libc = Deno.dlopen("libc.so.6", {
      close_range: { parameters: ["u32", "u32", "i32"], result: "i32", optional: true },
      fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
    });
  } catch (error) {
    return { done: false, how: (error as Error).message };
  }
  try {
    if (libc.symbols.close_range?.(3, 0xffff_ffff, CLOSE_RANGE_CLOEXEC) === 0) {
      return { done: true, how: "close_range" };
    }
    return markEach((fd) => libc.symbols.fcntl(fd, F_SETFD, FD_CLOEXEC) === 0);
  } finally {
    libc.close();
  }
}

/**
 * Marks each descriptor above 2 that `/proc/self/fd` lists with `mark`, which
 * says whether it could (the listing's own descriptor, closed by then, aside).
 */
export function markEach(mark: (fd: number) => boolean): { done: boolean; how: string } {
  const fds = [...Deno.readDirSync("/proc/self/fd")].map((entry) => Number(entry.name))
    .filter((fd) => fd > 2);
  const failed = fds.filter((fd) => !mark(fd) && isOpen(fd));
  return failed.length === 0
    ? { done: true, how: `fcntl on ${fds.length} descriptors` }
    : { done: false, how: `fcntl failed on descriptors ${failed.join(", ")}` };
}

function isOpen(fd: number): boolean {
  try {
    Deno.lstatSync(`/proc/self/fd/${fd}`);
    return true;
  } catch {
    return false;
  }
}
