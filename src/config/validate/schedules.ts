/**
 * Checks of schedules and dependencies (KEEP_AWAKE, TIME_ZONE, DEPENDS_ON):
 * the zone is one, and DEPENDS_ON names active services with one backend
 * each, without a cycle.
 *
 * @module
 */

import { isTimeZone } from "../schedule.ts";
import type { Built, Issues, Settings } from "./settings.ts";

/** TIME_ZONE when it names a zone; records an error naming the line when it does not. */
export function timeZone(settings: Settings, issues: Issues): string | undefined {
  const zone = settings.get("TIME_ZONE") as string | undefined;
  if (zone === undefined || isTimeZone(zone)) return zone;
  issues.error(
    settings.entry("TIME_ZONE")!.location,
    "TIME_ZONE",
    `Cannot use "TIME_ZONE" as it must be a time zone, e.g. Europe/Paris or UTC: current value ` +
      `is "${zone}"`,
  );
  return undefined;
}

/** Records an error for a DEPENDS_ON that names no active service, and for each cycle. */
export function checkDependencies(built: Built[], issues: Issues): void {
  const byName = new Map(built.map((one) => [one.service.name, one]));
  const names = built.map((one) => one.service.name).join(", ");
  for (const { service, dependsOnAt, description } of built) {
    for (const name of service.dependsOn) {
      const needed = byName.get(name);
      if (needed?.service.routePerConnection) {
        issues.error(
          dependsOnAt!,
          "DEPENDS_ON",
          `Cannot wake ${description} after ${needed.description} as it has ` +
            "ROUTE_PER_CONNECTION=yes: each of its connections gets a backend of its own, " +
            "so there is none to wake first",
        );
      }
      if (needed) continue;
      issues.error(
        dependsOnAt!,
        "DEPENDS_ON",
        `Cannot wake ${description} after "${name}" as no active service is named so ` +
          `(the active services: ${names})`,
      );
    }
  }
  // A depth-first walk; a service met again on the path closes a cycle, reported once.
  const done = new Set<string>();
  const reported = new Set<string>();
  const walk = (name: string, path: string[]) => {
    const at = path.indexOf(name);
    if (at >= 0) {
      const cycle = [...path.slice(at), name];
      const key = [...cycle.slice(0, -1)].sort().join("\n");
      if (!reported.has(key)) {
        reported.add(key);
        const first = byName.get(cycle[0])!;
        issues.error(
          first.dependsOnAt!,
          "DEPENDS_ON",
          `Cannot wake ${first.description} as DEPENDS_ON makes a cycle: ${cycle.join(" -> ")}`,
        );
      }
      return;
    }
    if (done.has(name) || !byName.has(name)) return;
    for (const next of byName.get(name)!.service.dependsOn) walk(next, [...path, name]);
    done.add(name);
  };
  for (const { service } of built) walk(service.name, []);
}
