/**
 * The changelog of the packages, in Debian's format (the deb's
 * /usr/share/doc/sleepingd/changelog.gz) and in rpm's (%changelog).
 *
 * @module
 */

import { MAINTAINER, NAME } from "./metadata.ts";

/** The entry for `version`, dated `date`, in Debian's format. */
export function debianChangelog(version: string, date: Date): string {
  return `${NAME} (${version}) unstable; urgency=medium

  * sleepingd ${version}: see /usr/share/doc/sleepingd/README.md.

 -- ${MAINTAINER}  ${date.toUTCString().replace("GMT", "+0000")}
`;
}

/** The entry for `version`, dated `date`, for an rpm spec's %changelog. */
export function rpmChangelog(version: string, date: Date): string {
  const [weekday, day, month, year] = date.toUTCString().split(" ");
  return `* ${weekday.slice(0, 3)} ${month} ${Number(day)} ${year} ${MAINTAINER} - ${version}-1
- sleepingd ${version}: see /usr/share/doc/sleepingd/README.md.
`;
}
