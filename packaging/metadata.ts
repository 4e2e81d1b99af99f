/**
 * What the deb and the rpm say about themselves: name, summary, description,
 * maintainer, license.
 *
 * @module
 */

/** The package name, in both formats. */
export const NAME = "sleepingd";

/** One line: the deb's synopsis, the rpm's Summary. */
export const SUMMARY = "wakes servers when a client connects, puts them to sleep when idle";

/** A few lines, each under 80 characters. */
export const DESCRIPTION = [
  "sleepingd keeps servers asleep (a stopped VM, container, database or",
  "process) and wakes them when a client connects. It listens on a TCP port",
  "per service, runs the service's start command, holds the client until the",
  "backend accepts, then forwards the bytes both ways. When the service has",
  "been idle long enough it runs the stop command.",
];

/** Who answers for the packages, `Name <address>`: set a real address before a release. */
export const MAINTAINER = "sleepingd maintainers <maintainers@sleepingd.invalid>";

/** The licence of sleepingd, as an SPDX id: the rpm's License field, deno.json's `license`. */
export const LICENSE = "Apache-2.0";

/** The deb's section. */
export const SECTION = "net";

/**
 * What FORWARD=kernel runs (`nft`, `conntrack`), which sleepingd works
 * without otherwise: weak dependencies, by each family's package names.
 */
export const RECOMMENDS = {
  deb: ["nftables", "conntrack"],
  rpm: ["nftables", "conntrack-tools"],
} as const;
