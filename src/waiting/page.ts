/**
 * The waiting page a browser gets while a service wakes (`WAITING_PAGE`),
 * and the placeholders of a page of one's own (`WAITING_PAGE_FILE`).
 *
 * sleepingd's page is `page.html`, imported as text (as the dashboard's
 * files are), so `deno run`, the bundle and the compiled executable carry
 * it. It is a template like any page of one's own: `{{name}}` placeholders
 * (spaces inside the braces allowed), each replaced by its value,
 * HTML-escaped. It has no script: it shows the wake as of the answer, and
 * the answer's `Refresh` header reloads it. Light or dark as the browser
 * prefers; it loads nothing from elsewhere (docs/ARCHITECTURE.md, "The
 * waiting page").
 *
 * @module
 */

import PAGE from "./page.html" with { type: "text" };

/** sleepingd's own waiting page, a template. */
export const BUILT_IN_PAGE: string = PAGE;

/** Every placeholder a template may use. */
export const PLACEHOLDERS = [
  "service",
  "host",
  "state",
  "title",
  "message",
  "waited",
  "typical",
  "progress",
  "retry",
  "error",
  "nonce",
] as const;

/** One placeholder's name. */
export type Placeholder = typeof PLACEHOLDERS[number];

/** The value of each placeholder, as text before escaping. */
export type PageValues = Record<Placeholder, string>;

/** `{{name}}`, with spaces allowed inside the braces. */
const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

const KNOWN: ReadonlySet<string> = new Set(PLACEHOLDERS);

/** The placeholders `template` uses that are none of {@linkcode PLACEHOLDERS}, each once. */
export function unknownPlaceholders(template: string): string[] {
  const names = [...template.matchAll(PLACEHOLDER)].map((match) => match[1]);
  return [...new Set(names.filter((name) => !KNOWN.has(name)))];
}

/** `template` with every placeholder replaced by its value, HTML-escaped. */
export function renderPage(template: string, values: PageValues): string {
  return template.replace(PLACEHOLDER, (whole, name: string) => {
    return KNOWN.has(name) ? escapeHtml(values[name as Placeholder]) : whole;
  });
}

/** `text` safe in HTML text and in quoted attribute values. */
function escapeHtml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&#39;");
}
