/**
 * The platforms sleepingd is built for: Linux on x86_64 and aarch64, named as
 * `deno compile --target` names them, with their deb and rpm architectures.
 *
 * sleepingd runs on Linux only: it reads /proc and runs commands as another
 * user with setpriv or runuser, so there is no macOS or Windows build.
 *
 * @module
 */

import { PackagingError } from "./script.ts";

/** One platform sleepingd is built for. */
export interface Target {
  /** The target triple of `deno compile --target`, e.g. `x86_64-unknown-linux-gnu`. */
  triple: string;
  /** Its Debian architecture, e.g. `amd64`. */
  debArch: string;
  /** Its rpm architecture, e.g. `x86_64`. */
  rpmArch: string;
  /** Its `e_machine` in an ELF header, to tell which platform a binary is for. */
  elfMachine: number;
}

/** Every platform sleepingd is built for. */
export const TARGETS: readonly Target[] = [
  { triple: "x86_64-unknown-linux-gnu", debArch: "amd64", rpmArch: "x86_64", elfMachine: 0x3e },
  { triple: "aarch64-unknown-linux-gnu", debArch: "arm64", rpmArch: "aarch64", elfMachine: 0xb7 },
];

/**
 * The target named `triple`.
 *
 * @throws PackagingError for a platform sleepingd does not run on, saying why
 */
export function findTarget(triple: string): Target {
  const target = TARGETS.find((candidate) => candidate.triple === triple);
  if (target) return target;
  const known = TARGETS.map((candidate) => candidate.triple).join(", ");
  const why = /linux/.test(triple)
    ? `use one of ${known}`
    : `sleepingd runs on Linux only (it reads /proc and uses setpriv/runuser); use one of ${known}`;
  throw new PackagingError(`no build for ${triple}: ${why}`);
}

/** The target of the machine this runs on. */
export function hostTarget(): Target {
  return findTarget(Deno.build.target);
}

/**
 * The target an ELF executable was built for, read from its header.
 *
 * @throws PackagingError when `path` is not an ELF executable of a known target
 */
export async function elfTarget(path: string): Promise<Target> {
  const header = new Uint8Array(20);
  const file = await Deno.open(path);
  try {
    await file.read(header);
  } finally {
    file.close();
  }
  const isElf = header[0] === 0x7f && header[1] === 0x45 && header[2] === 0x4c &&
    header[3] === 0x46;
  if (!isElf) throw new PackagingError(`${path} is not a Linux (ELF) executable`);
  const machine = header[18] | (header[19] << 8);
  const target = TARGETS.find((candidate) => candidate.elfMachine === machine);
  if (!target) {
    throw new PackagingError(`${path} is built for ELF machine 0x${machine.toString(16)}`);
  }
  return target;
}
