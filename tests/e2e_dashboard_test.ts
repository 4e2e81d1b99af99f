/**
 * The dashboard in a real browser (Debian's chromium, driven by
 * puppeteer-core) against the real daemon: a day of history written by
 * earlier daemons, drawn from the page alone (every request to /api/
 * refused), a wake through the service's port seen live, the idle stop
 * closing its span, and the history still there after a restart.
 *
 * Screenshots go to `SLEEPINGD_SCREENSHOTS` (a folder; default: a temporary
 * one, named in the output): `dashboard.png` (desktop, a tooltip open) and
 * `dashboard-phone.png` (a phone, dark). README's pictures in `docs/` are
 * made by running this test with `SLEEPINGD_SCREENSHOTS=docs`.
 */
import assert from "node:assert/strict";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import type { ChangeEvent, DaemonEvent, HistoryEvent } from "../src/history/event.ts";
import type { State } from "../src/service/lifecycle.ts";
import { type Daemon, startDaemon } from "./_daemon.ts";
import { historySetup } from "./_history.ts";
import { freePort } from "./_net.ts";
import { serverTest } from "./_servers.ts";
import { exchange } from "./_service.ts";

const HOUR = 3_600_000;
const MINUTE = 60_000;

/**
 * A day of history as earlier daemons wrote it, ending an hour ago: `web`
 * woken every two hours for half an hour (one wake failed), `db` twice for
 * three hours, and an hour without any daemon.
 */
function pastDay(now: number): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  const daemon = (time: number, what: DaemonEvent["daemon"], states: Record<string, State>) =>
    events.push({ time: new Date(time).toISOString(), daemon: what, pid: 4242, states });
  const change = (time: number, service: string, from: State, to: State, extra = {}) =>
    events.push({
      time: new Date(time).toISOString(),
      service,
      from,
      to,
      reason: "",
      lasted: 0,
      ...extra,
    } as ChangeEvent);
  const wake = (time: number, service: string, client: string, awakeMinutes: number) => {
    change(time, service, "asleep", "starting", { reason: `connection from ${client}` });
    change(time + 4_000, service, "starting", "awake", {
      reason: "127.0.0.1:8080 accepted after 4.00s",
      lasted: 4,
      target: "127.0.0.1:8080",
    });
    const stop = time + awakeMinutes * MINUTE;
    change(stop, service, "awake", "stopping", { reason: "idle for 600s", stop: "idle" });
    change(stop + 2_000, service, "stopping", "asleep", { reason: "STOP_CMD exit 0", lasted: 2 });
  };
  const start = now - 23 * HOUR;
  daemon(start, "started", { web: "asleep", db: "asleep" });
  for (let hour = 1; hour < 22; hour += 2) {
    if (hour === 15) continue;
    if (hour === 9) {
      change(start + hour * HOUR, "web", "asleep", "starting", {
        reason: "connection from 198.51.100.23:40112",
      });
      change(start + hour * HOUR + 30_000, "web", "starting", "asleep", {
        reason: "wake failed: START_CMD exit 1: VM quota exceeded",
        lasted: 30,
      });
      continue;
    }
    wake(start + hour * HOUR + 7 * MINUTE, "web", `192.0.2.${hour}:5${hour}012`, 25 + hour);
  }
  wake(start + 2 * HOUR, "db", "10.0.0.5:43210", 180);
  daemon(start + 14 * HOUR, "stopped", {});
  daemon(start + 15 * HOUR, "started", { web: "asleep", db: "asleep" });
  wake(start + 17 * HOUR, "db", "10.0.0.5:43388", 150);
  // In the order a daemon writes them: as they happen.
  return events.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
}

/** Waits (bounded) until `predicate` holds in the page. */
async function waitInPage(page: Page, what: string, predicate: string): Promise<void> {
  try {
    await page.waitForFunction(predicate, { timeout: 20_000, polling: 100 });
  } catch {
    throw new Error(`The dashboard never showed ${what} (${predicate})`);
  }
}

/** How many elements match `selector`. */
function count(page: Page, selector: string): Promise<number> {
  return page.$$eval(selector, (elements) => elements.length);
}

/** The states of a service's timeline spans, in order. */
function spans(page: Page, service: string): Promise<string[]> {
  return page.$$eval(
    `[data-service="${service}"] [data-timeline] [data-span]`,
    (elements) => elements.map((element) => element.getAttribute("data-span")!),
  );
}

serverTest(
  "the dashboard shows a wake live, closes its span at the idle stop, and keeps it across a restart",
  [{ binary: "chromium", package: "chromium" }],
  async (paths) => {
    const { dir, file, port, http, cleanup } = await historySetup({
      name: "web",
      idleTime: 3,
      cost: "0.12 USD",
      global: (dir) => `API_TOKEN_FILE=${dir}/token`,
      more: `[db]\nPORT=${freePort()}\nLISTEN_ADDRESS=127.0.0.1\nSTART_CMD=echo 127.0.0.1 1\n` +
        "COST_PER_HOUR=0.85 USD\n",
    });
    const token = crypto.randomUUID();
    await Deno.writeTextFile(`${dir}/token`, token);
    await Deno.writeTextFile(
      `${dir}/state/events.jsonl`,
      pastDay(Date.now()).map((event) => JSON.stringify(event) + "\n").join(""),
    );
    const shots = Deno.env.get("SLEEPINGD_SCREENSHOTS") ??
      await Deno.makeTempDir({ prefix: "sleepingd-screenshots-" });
    await Deno.mkdir(shots, { recursive: true });
    const daemons: Daemon[] = [];
    let browser: Browser | undefined;
    try {
      daemons.push(await startDaemon(file));
      browser = await puppeteer.launch({
        executablePath: paths.chromium,
        args: ["--no-sandbox", "--disable-gpu", "--font-render-hinting=none"],
        headless: true,
      });
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on("pageerror", (error) => problems.push(`page error: ${error}`));
      // Errors the test causes on purpose: the live stream lost while the daemon restarts, and
      // the wrong token refused (401).
      const expected = /ERR_CONNECTION_REFUSED|api\/live|status of 401/;
      page.on("console", (message) => {
        if (message.type() === "error" && !expected.test(message.text())) {
          problems.push(`console: ${message.text()}`);
        }
      });
      await page.setViewport({ width: 1280, height: 720 });
      await page.goto(`http://127.0.0.1:${http}/`);
      await waitInPage(page, "its first data", `document.body.dataset.ready === "yes"`);

      // The day written by earlier daemons: both rows, their spans, the failed wake in red.
      assert.deepEqual(
        await page.$$eval("[data-service]", (rows) => rows.map((row) => row.dataset.service)),
        ["web", "db"],
      );
      assert.equal(await count(page, '[data-service="web"] [data-wake="failed"]'), 1);
      const pastWakes = await count(page, '[data-service="web"] [data-wake="ok"]');
      assert.equal(pastWakes, 9);
      assert.equal(await count(page, '[data-service="db"] [data-wake="ok"]'), 2);
      assert.ok((await spans(page, "web")).includes("unknown"), "the hour without a daemon");
      assert.match(
        await page.$eval('[data-service="db"] [data-saved]', (element) => element.textContent!),
        /^\$?\d+\.\d\d( USD)?$/,
      );

      // The page draws what it came with, before any request of its own: with every request to
      // /api/ refused, it still shows both services, their states and their day.
      const alone = await browser.newPage();
      await alone.setRequestInterception(true);
      alone.on("request", (request) => {
        if (new URL(request.url()).pathname.startsWith("/api/")) request.abort();
        else request.continue();
      });
      await alone.goto(`http://127.0.0.1:${http}/`);
      await waitInPage(alone, "its first state", `document.body.dataset.ready === "yes"`);
      assert.deepEqual(
        await alone.$$eval("[data-service]", (rows) => rows.map((row) => row.dataset.state)),
        ["asleep", "asleep"],
      );
      assert.equal(await count(alone, '[data-service="web"] [data-wake="ok"]'), pastWakes);
      assert.equal(await count(alone, '[data-service="web"] [data-wake="failed"]'), 1);
      assert.match(
        await alone.$eval("#uptime", (node) => node.textContent!),
        /^up \d+s · 2 services/,
      );
      await alone.close();

      // A wake through the service's port, seen live: the row turns awake, a span and a wake appear.
      const loads = Number(await page.evaluate("document.body.dataset.historyLoads"));
      assert.equal(await exchange(port, "hello"), "hello");
      await waitInPage(
        page,
        "web awake",
        `document.querySelector('[data-service="web"]').dataset.state === "awake"`,
      );
      await waitInPage(
        page,
        "the new wake on the timeline",
        `document.querySelectorAll('[data-service="web"] [data-wake="ok"]').length === ${
          pastWakes + 1
        } && Number(document.body.dataset.historyLoads) > ${loads}`,
      );
      assert.equal((await spans(page, "web")).at(-1), "awake");
      const stopsBefore = await count(page, '[data-service="web"] [data-stop="idle"]');

      // The idle stop closes the span.
      await waitInPage(
        page,
        "web asleep again with its stop",
        `document.querySelector('[data-service="web"]').dataset.state === "asleep" && ` +
          `document.querySelectorAll('[data-service="web"] [data-stop="idle"]').length === ${
            stopsBefore + 1
          }`,
      );
      assert.equal((await spans(page, "web")).at(-1), "asleep");
      // Hovering the failed wake tells what caused it and why it failed.
      await page.hover('[data-service="web"] [data-wake="failed"]');
      await waitInPage(
        page,
        "the failed wake's tooltip",
        `!document.getElementById("tooltip").hidden && ` +
          `document.getElementById("tooltip").innerText.includes("198.51.100.23:40112") && ` +
          `document.getElementById("tooltip").innerText.includes("VM quota exceeded")`,
      );
      await page.screenshot({ path: `${shots}/dashboard.png` });

      // A restart: the page reconnects by itself, and the history is still there.
      assert.equal(await daemons[0].stop(), 0);
      await waitInPage(
        page,
        "that it lost the daemon",
        `/reconnect/i.test(document.body.innerText)`,
      );
      daemons.push(await startDaemon(file));
      await waitInPage(
        page,
        "the history after the restart",
        `!/reconnect/i.test(document.body.innerText) && ` +
          `document.querySelectorAll('[data-service="web"] [data-wake="ok"]').length === ${
            pastWakes + 1
          } && [...document.querySelectorAll('[data-service="web"] [data-span]')].at(-2)` +
          `?.dataset.span === "unknown"`,
      );
      const reloaded = await browser.newPage();
      await reloaded.setViewport({ width: 390, height: 844, isMobile: true, deviceScaleFactor: 2 });
      await reloaded.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "dark" }]);
      await reloaded.goto(`http://127.0.0.1:${http}/`);
      await waitInPage(reloaded, "its first data", `document.body.dataset.ready === "yes"`);
      assert.equal(await count(reloaded, '[data-service="web"] [data-wake="ok"]'), pastWakes + 1);
      const overflow = await reloaded.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth",
      );
      assert.equal(overflow, 0, "nothing is wider than the phone");
      await reloaded.screenshot({ path: `${shots}/dashboard-phone.png`, fullPage: true });
      // With API_TOKEN_FILE set, the buttons act with the token typed in the header; without it,
      // they say what is missing and do nothing. (The first tab again: a tab behind runs no frames.)
      await page.bringToFront();
      await page.click('[data-service="web"] [data-action="wake"]');
      await waitInPage(
        page,
        "the missing token said",
        `/type the token/.test(document.body.innerText)`,
      );
      await page.type("#token", "wrong");
      await page.click('[data-service="web"] [data-action="wake"]');
      await waitInPage(
        page,
        "the wrong token refused",
        `/A valid token is needed/.test(document.body.innerText)`,
      );
      await page.$eval("#token", (field) => (field as unknown as { value: string }).value = "");
      await page.type("#token", token);
      await page.click('[data-service="web"] [data-action="wake"]');
      await waitInPage(
        page,
        "web woken by its button",
        `document.querySelector('[data-service="web"]').dataset.state === "awake"`,
      );
      await page.click('[data-service="web"] [data-action="sleep"]');
      await waitInPage(
        page,
        "web put to sleep by its button",
        `document.querySelector('[data-service="web"]').dataset.state === "asleep" && ` +
          `document.querySelector('[data-service="web"] [data-stop="requested"]') !== null`,
      );
      assert.deepEqual(problems, [], "the page ran without errors");
      console.log(`screenshots in ${shots}`);
    } finally {
      await browser?.close();
      await cleanup(...daemons);
    }
  },
);
