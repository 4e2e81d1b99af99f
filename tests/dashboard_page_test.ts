/**
 * The dashboard's document (src/dashboard/page.ts): the files of
 * src/dashboard/browser/ made one self-contained page, its style and script
 * inline with the answer's nonce, nothing loaded from elsewhere, the state it
 * draws first inside it as JSON that no text can break out of; and the
 * bundle, which has no files beside it, serves the same page.
 */
import assert from "node:assert/strict";
import { bundleProgram } from "../packaging/bundle.ts";
import { dashboardPage } from "../src/dashboard/page.ts";
import { startDaemon } from "./_daemon.ts";
import { REPO } from "./_helpers.ts";
import { freePort } from "./_net.ts";

const BROWSER = `${REPO}src/dashboard/browser`;
const STYLE = await Deno.readTextFile(`${BROWSER}/page.css`);
const SCRIPT = await Deno.readTextFile(`${BROWSER}/page.js`);

/** The element that holds the first state. */
const FIRST_STATE = '<script type="application/json" id="first-state">';

/** A first state as small as the page takes. */
const FIRST = { status: { services: [] }, history: { services: [] } };

/** The opening tags of `tag` elements in `html`. */
function openings(html: string, tag: string): string[] {
  return [...html.matchAll(new RegExp(`<${tag}\\b[^>]*>`, "gi"))].map((match) => match[0]);
}

/** The first state in `html`, parsed. */
function firstState(html: string): unknown {
  const start = html.indexOf(FIRST_STATE) + FIRST_STATE.length;
  return JSON.parse(html.slice(start, html.indexOf("</script>", start)));
}

/** Checks that `html` is the whole page, its style and script carrying `nonce`. */
function assertWholePage(html: string, nonce: string): void {
  assert.match(html, /^<!doctype html>\n/);
  assert.deepEqual(openings(html, "style"), [`<style nonce="${nonce}">`]);
  // The first state's element holds data, which no browser runs: it needs no nonce.
  assert.deepEqual(openings(html, "script"), [FIRST_STATE, `<script nonce="${nonce}">`]);
  assert.ok(html.includes(`<style nonce="${nonce}">\n${STYLE}</style>`), "page.css, whole");
  assert.ok(html.includes(`<script nonce="${nonce}">\n${SCRIPT}</script>`), "page.js, whole");
  assert.ok(!html.includes("<!--"), "every slot of page.html is filled");
}

Deno.test("the page is one document: page.css and page.js inline with the nonce", () => {
  const html = dashboardPage("bm9uY2U+/=", FIRST);
  assertWholePage(html, "bm9uY2U+/=");
  assert.ok(html.includes('<div class="page">'), "page.html's markup");
  assert.ok(html.trimEnd().endsWith("</html>"));
});

Deno.test("the page loads nothing from elsewhere: no src, no link but its empty icon, no url()", () => {
  const html = dashboardPage("n", FIRST);
  assert.deepEqual([...html.matchAll(/\ssrc\s*=/gi)], [], "no src attribute");
  assert.deepEqual(openings(html, "link"), ['<link rel="icon" href="data:,">']);
  assert.deepEqual([...STYLE.matchAll(/url\(|@import/gi)].map((m) => m[0]), []);
});

Deno.test("the nonce cannot leave its attribute", () => {
  const html = dashboardPage('a"><script>b', FIRST);
  const escaped = 'nonce="a&quot;>&lt;script>b"';
  assert.ok(html.includes(`<style ${escaped}>\n`) && html.includes(`<script ${escaped}>\n`));
  assert.ok(!html.includes("<script>"));
});

Deno.test("the first state is in the page as JSON that no name or error can end early", () => {
  const hostile = "</script><script>alert(1)</script><!-- </SCRIPT ";
  const first = {
    status: { services: [{ name: hostile, state: "asleep" }] },
    history: { services: [{ name: hostile, wakes: [{ ok: false, error: hostile }] }] },
  };
  const html = dashboardPage("n", first);
  assert.deepEqual(firstState(html), first);
  assert.equal(html.match(/<\/script/gi)?.length, 2, "only the page's own elements end");
  assert.ok(!html.includes("<!-- </"), "nor does a comment begin in one");
});

Deno.test("page.css and page.js cannot end their element early, and page.js imports nothing", () => {
  assert.doesNotMatch(STYLE, /<\/style/i);
  assert.doesNotMatch(SCRIPT, /<\/script|<!--|<script/i);
  // A classic script, inlined as it is: an import or export would not run there.
  assert.doesNotMatch(SCRIPT, /^\s*(import|export)\b/m);
});

Deno.test("the bundle serves the whole page, with the nonce of its answer", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-page-" });
  const http = freePort();
  const file = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    file,
    `METRICS_ADDRESS=127.0.0.1:${http}\n\n[web]\nPORT=${freePort()}\n` +
      "LISTEN_ADDRESS=127.0.0.1\nSTART_CMD=echo 127.0.0.1 1\n",
  );
  await bundleProgram(`${dir}/sleepingd.js`);
  const daemon = await startDaemon(file, {
    program: ["run", "-A", "--no-config", "--no-remote", "--no-npm", `${dir}/sleepingd.js`],
  });
  try {
    const response = await fetch(`http://127.0.0.1:${http}/`);
    const html = await response.text();
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
    const nonce = /script-src 'nonce-([^']+)'/.exec(
      response.headers.get("content-security-policy") ?? "",
    )?.[1];
    assert.ok(nonce, "the answer's CSP names a nonce");
    assertWholePage(html, nonce);
    const { status } = firstState(html) as { status: { services: { name: string }[] } };
    assert.deepEqual(status.services.map((service) => service.name), ["web"]);
  } finally {
    assert.equal(await daemon.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});
