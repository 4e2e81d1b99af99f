/**
 * Checks of events (ON_EVENT_CMD, WEBHOOK_URL): the webhook is an http(s) URL
 * (docs/ARCHITECTURE.md, "Events").
 *
 * @module
 */

import type { Issues, Settings } from "./settings.ts";

/** WEBHOOK_URL when it is an http(s) URL; records an error naming the line when it is not. */
export function webhookUrl(settings: Settings, issues: Issues): string | undefined {
  const url = settings.get("WEBHOOK_URL") as string | undefined;
  if (url === undefined) return undefined;
  if (/^https?:$/.test(URL.parse(url)?.protocol ?? "")) return url;
  issues.error(
    settings.entry("WEBHOOK_URL")!.location,
    "WEBHOOK_URL",
    `Cannot use "WEBHOOK_URL" as it must be an http:// or https:// URL: current value is "${url}"`,
  );
  return undefined;
}
