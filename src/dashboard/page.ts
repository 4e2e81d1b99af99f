/**
 * The dashboard page: each service's state, a timeline of the last 24 hours
 * or 7 days (asleep, starting, awake, stopping, not watched), its wakes and
 * stops, and what sleeping saved, kept live from `/api/live`.
 *
 * The page is written in `browser/`: `page.html` (the markup), `page.css` (the
 * style) and `page.js` (the script that draws it and keeps it live). They are
 * imported here as text, so `deno run`, the bundle and the compiled executable
 * all carry them. Each answer makes them one document: style and script
 * inline, allowed by the answer's CSP nonce, with the state at that moment as
 * JSON, which the script draws at once. Every byte of it is served by
 * sleepingd itself: no CDN, font or image from elsewhere.
 *
 * @module
 */

import PAGE from "./browser/page.html" with { type: "text" };
import STYLE from "./browser/page.css" with { type: "text" };
import SCRIPT from "./browser/page.js" with { type: "text" };

/** Where page.html takes page.css. */
const STYLE_SLOT = "<!-- page.css -->";

/** Where page.html takes the first state and page.js. */
const SCRIPT_SLOT = "<!-- first state, page.js -->";

/** page.html cut at its slots: before the style, between style and scripts, after them. */
const [HEAD, BODY, END] = cutAt(PAGE, [STYLE_SLOT, SCRIPT_SLOT]);

/**
 * What the page draws first, as `/api/status` and `/api/history?period=24h`
 * give them (page.js reads them).
 */
export interface FirstState {
  /** The daemon's status. */
  status: unknown;
  /** The timelines of the last 24 hours. */
  history: unknown;
}

/**
 * The dashboard: one self-contained HTML page showing `first`, its script and
 * style carrying `nonce` for the Content-Security-Policy.
 */
export function dashboardPage(nonce: string, first: FirstState): string {
  const n = attribute(nonce);
  return HEAD + `<style nonce="${n}">\n${STYLE}</style>` + BODY +
    `<script type="application/json" id="first-state">${scriptData(first)}</script>\n` +
    `<script nonce="${n}">\n${SCRIPT}</script>` + END;
}

/** `text` in the pieces around each of `slots`, which it must hold once each, in order. */
function cutAt(text: string, slots: string[]): string[] {
  const pieces: string[] = [];
  let rest = text;
  for (const slot of slots) {
    const [before, ...after] = rest.split(slot);
    if (after.length !== 1) {
      throw new Error(`page.html must hold ${slot} once, after the slots before it`);
    }
    pieces.push(before);
    rest = after[0];
  }
  return [...pieces, rest];
}

/**
 * `value` as JSON to put inside a <script> element: no `<` in it, so no text
 * in it (a service's name, a command's error) can end the element.
 */
function scriptData(value: unknown): string {
  return JSON.stringify(value).replaceAll("<", "\\u003c");
}

/** Escapes `text` for an HTML attribute value in double quotes. */
function attribute(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll('"', "&quot;").replaceAll("<", "&lt;");
}
