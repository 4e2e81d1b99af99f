/**
 * The waiting page in a real browser (Debian's chromium, driven by
 * puppeteer-core) against the real daemon, with a real nginx whose START_CMD
 * waits for a gate the test opens: the browser opening a cold app on a port
 * shared by name sees the waiting page (503, Retry-After, light and dark),
 * then the app's own page without a click; curl without Accept: text/html
 * waits for the app as before; the next wake's page says how long wakes
 * usually take; a failed wake shows its error, and a reload within 30 s shows
 * it again without a new START_CMD; a page of one's own gets its placeholders.
 *
 * Screenshots go to `SLEEPINGD_SCREENSHOTS` (a folder; default: a temporary
 * one, named in the output): `waiting-light.png`, `waiting-dark.png`,
 * `waiting-failed.png`, and the dashboard's cards, `waiting-dashboard.png`.
 */
import assert from "node:assert/strict";
import puppeteer, { type Browser, type HTTPResponse, type Page } from "puppeteer-core";
import { type Daemon, startDaemon } from "./_daemon.ts";
import { REPO, runCli, runProgram } from "./_helpers.ts";
import { freePort, isAlive } from "./_net.ts";
import { serverTest } from "./_servers.ts";

const NGINX = `${REPO}examples/nginx/nginx-on-demand`;

/**
 * Shell text that waits for the gate of this wake: the Nth START_CMD waits for
 * `DIR/gate-N`, so that the test holds each wake until it has seen what it
 * must see meanwhile.
 */
function gated(dir: string): string {
  return `n=$(( $(cat '${dir}/starts' 2>/dev/null || echo 0) + 1 )); echo $n > '${dir}/starts'; ` +
    `while [ ! -f '${dir}/gate-'$n ]; do sleep 0.05; done`;
}

/** The text the page shows. */
function bodyText(page: Page): Promise<string> {
  return page.evaluate("document.body.innerText") as Promise<string>;
}

/** Waits (bounded) until `predicate` holds in the page. */
async function waitInPage(page: Page, what: string, predicate: string): Promise<void> {
  try {
    await page.waitForFunction(predicate, { timeout: 30_000, polling: 100 });
  } catch {
    throw new Error(`The browser never showed ${what} (${predicate})`);
  }
}

serverTest(
  "a browser sees the waiting page while its app wakes, then the app; a failed wake shows its error",
  [
    { binary: "chromium", package: "chromium" },
    { binary: "nginx", package: "nginx" },
    { binary: "curl", package: "curl" },
  ],
  async (paths) => {
    const dir = await Deno.makeTempDir({ prefix: "sleepingd-waiting-" });
    const port = freePort();
    const http = freePort();
    const app = `${dir}/app`;
    const broken = `${dir}/broken`;
    const own = `${dir}/own`;
    for (const folder of [app, broken, own, `${app}/www`]) await Deno.mkdir(folder);
    await Deno.writeTextFile(
      `${app}/www/index.html`,
      "<!doctype html><title>the app</title><h1>The app itself</h1>\n",
    );
    await Deno.writeTextFile(
      `${own}/page.html`,
      '<!doctype html><title>{{title}}</title><style nonce="{{ nonce }}">p{color:red}</style>' +
        "<p data-own>{{service}} for {{host}}: {{state}}, {{waited}} s of {{typical}}</p>\n",
    );
    const nginx = `NGINX_PORT=${freePort()} NGINX_ROOT=${app}/www NGINX_PREFIX=${app}/prefix ` +
      `NGINX_USER=root ${NGINX}`;
    const file = `${dir}/sleepingd.conf`;
    await Deno.writeTextFile(
      file,
      `VARRUN_PATH=${dir}/run
STATE_PATH=${dir}/state
METRICS_ADDRESS=127.0.0.1:${http}
WAITING_PAGE=yes
WAITING_PAGE_AFTER=0.5

[app]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
HOSTNAMES=app.example.test
START_CMD="${gated(app)}; ${nginx} start"
STOP_CMD="${nginx} stop"

[broken]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
HOSTNAMES=broken.example.test
START_CMD="${gated(broken)}; echo 'the VM quota is exhausted for this month' >&2; exit 1"

[own]
PORT=${port}
LISTEN_ADDRESS=127.0.0.1
HOSTNAMES=own.example.test
WAITING_PAGE_FILE=${own}/page.html
START_CMD="${gated(own)}; exit 1"
`,
    );
    const shots = Deno.env.get("SLEEPINGD_SCREENSHOTS") ??
      await Deno.makeTempDir({ prefix: "sleepingd-screenshots-" });
    await Deno.mkdir(shots, { recursive: true });
    const gate = (folder: string, n: number) => Deno.writeTextFile(`${folder}/gate-${n}`, "");
    const url = (name: string) => `http://${name}.example.test:${port}/`;
    let daemon: Daemon | undefined;
    let browser: Browser | undefined;
    try {
      const check = await runCli(["-f", file, "check"]);
      assert.match(
        check.stdout,
        /waiting page: after 0\.5s, for browsers over HTTP \(sleepingd's own page\)/,
      );
      assert.match(
        check.stdout,
        new RegExp(`waiting page: after 0\\.5s, for browsers over HTTP \\(${own}/page\\.html\\)`),
      );
      daemon = await startDaemon(file, { env: { NGINX_BINARY: paths.nginx } });
      browser = await puppeteer.launch({
        executablePath: paths.chromium,
        args: [
          "--no-sandbox",
          "--disable-gpu",
          "--font-render-hinting=none",
          "--host-resolver-rules=MAP *.example.test 127.0.0.1",
        ],
        headless: true,
      });
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on("pageerror", (error) => problems.push(`page error: ${error}`));
      page.on("console", (message) => {
        // The 503s are the point, and nginx has no favicon.ico; anything else (a CSP
        // violation) is a problem.
        if (message.type() === "error" && !/status of (503|404)/.test(message.text())) {
          problems.push(`console: ${message.text()}`);
        }
      });
      await page.setViewport({ width: 900, height: 600 });
      // Each visit asks sleepingd: nginx's page would otherwise come from the cache.
      await page.setCacheEnabled(false);

      // A cold app: the browser waits WAITING_PAGE_AFTER, then gets the page.
      const curlWaiting = runProgram(paths.curl, [
        "-sS",
        "--max-time",
        "60",
        "--resolve",
        `app.example.test:${port}:127.0.0.1`,
        url("app"),
      ]);
      let curlDone = false;
      curlWaiting.then(() => curlDone = true);
      const first = (await page.goto(url("app"), { waitUntil: "load" })) as HTTPResponse;
      assert.equal(first.status(), 503);
      const headers = first.headers();
      assert.equal(headers["retry-after"], "1");
      assert.equal(headers["refresh"], "1");
      assert.match(headers["content-security-policy"], /^default-src 'none'; style-src 'nonce-/);
      assert.equal(await page.title(), "app is waking up");
      const text = await bodyText(page);
      assert.match(text, /Waking for [\d.]+ s; no earlier wake to compare with\./);
      assert.match(text, /becomes app\.example\.test as soon as app is ready/);
      await page.screenshot({ path: `${shots}/waiting-light.png` });
      const light = await page.evaluate("getComputedStyle(document.body).backgroundColor");
      await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "dark" }]);
      await waitInPage(
        page,
        "the waiting page again, dark",
        `document.title === "app is waking up"`,
      );
      const dark = await page.evaluate("getComputedStyle(document.body).backgroundColor");
      assert.notEqual(dark, light);
      await page.screenshot({ path: `${shots}/waiting-dark.png` });
      await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "light" }]);
      assert.equal(curlDone, false, "curl without Accept: text/html still waits for the app");

      // The wake goes on: the page turns into the app by itself, and curl gets the app too.
      await gate(app, 1);
      await waitInPage(page, "the app's own page", `document.title === "the app"`);
      assert.match(
        await bodyText(page),
        /The app itself/,
      );
      const curled = await curlWaiting;
      assert.equal(curled.code, 0, curled.stderr);
      assert.match(curled.stdout, /The app itself/);

      // Put to sleep and opened again: this time the page knows how long a wake takes.
      // (--force: the browser keeps its connection to the app open.)
      const slept = await runCli(["-f", file, "sleep", "--force", "app"]);
      assert.equal(slept.code, 0, slept.stderr);
      const second = (await page.goto(url("app"), { waitUntil: "load" })) as HTTPResponse;
      assert.equal(second.status(), 503);
      assert.match(
        await bodyText(page),
        /Waking for [\d.]+ s; its wakes usually take about [\d.]+ s\./,
      );
      await gate(app, 2);
      await waitInPage(page, "the app again", `document.title === "the app"`);

      // A wake that fails: the waiting page, then its error, without a click.
      const failing = (await page.goto(url("broken"), { waitUntil: "load" })) as HTTPResponse;
      assert.equal(failing.status(), 503);
      assert.equal(await page.title(), "broken is waking up");
      await gate(broken, 1);
      await waitInPage(page, "the failed wake", `document.title === "broken could not wake"`);
      const error = await bodyText(page);
      assert.match(error, /the VM quota is exhausted for this month/);
      assert.match(error, /Reload this page in \d+ s to try again/);
      await page.screenshot({ path: `${shots}/waiting-failed.png` });
      // Reloaded at once, it shows the error again, and START_CMD does not run again.
      const again = (await page.reload({ waitUntil: "load" })) as HTTPResponse;
      assert.equal(again.status(), 503);
      assert.equal(await page.title(), "broken could not wake");
      assert.equal(Number(await Deno.readTextFile(`${broken}/starts`)), 1);
      // A client that is not a browser still wakes it (and sees it fail).
      await gate(broken, 2);
      const api = await runProgram(paths.curl, [
        "-sS",
        "--resolve",
        `broken.example.test:${port}:127.0.0.1`,
        url("broken"),
      ]);
      assert.notEqual(api.code, 0);
      assert.equal(Number(await Deno.readTextFile(`${broken}/starts`)), 2);

      // A page of one's own: its placeholders filled, its nonce'd style allowed.
      const ownPage = (await page.goto(url("own"), { waitUntil: "load" })) as HTTPResponse;
      assert.equal(ownPage.status(), 503);
      assert.match(
        await page.$eval("[data-own]", (element) => element.textContent!),
        /^own for own\.example\.test: waking, [\d.]+ s of $/,
      );
      assert.equal(
        await page.evaluate('getComputedStyle(document.querySelector("[data-own]")).color'),
        "rgb(255, 0, 0)",
      );
      await gate(own, 1);

      const status = JSON.parse((await runCli(["-f", file, "status", "--json"])).stdout);
      const pages = Object.fromEntries(
        status.services.map((
          service: { name: string; pages: unknown },
        ) => [service.name, service.pages]),
      );
      assert.ok((pages.app as { waiting: number }).waiting >= 2);
      assert.ok((pages.broken as { failed: number }).failed >= 2);
      // The dashboard's card of each service says its names and its waiting page, on one line.
      await page.goto(`http://127.0.0.1:${http}/`);
      await waitInPage(page, "the dashboard", `document.body.dataset.ready === "yes"`);
      assert.equal(
        await page.$eval(
          '[data-service="broken"] [data-hostnames]',
          (node) => node.parentElement!.textContent,
        ),
        "names broken.example.test · waiting page",
      );
      await page.setViewport({ width: 1280, height: 720 });
      await page.screenshot({ path: `${shots}/waiting-dashboard.png` });
      assert.deepEqual(problems, []);
      console.log(`screenshots in ${shots}`);
    } catch (error) {
      console.error(`sleepingd's log:\n${daemon?.lines.join("\n")}`);
      throw error;
    } finally {
      await browser?.close();
      const code: number | undefined = await daemon?.stop();
      const pid = Number(await Deno.readTextFile(`${app}/prefix/nginx.pid`).catch(() => "0"));
      if (pid > 0 && isAlive(pid)) Deno.kill(pid, "SIGKILL");
      for (const folder of [app, broken, own]) {
        for (let n = 1; n <= 3; n++) {
          await Deno.writeTextFile(`${folder}/gate-${n}`, "").catch(() => {});
        }
      }
      await Deno.remove(dir, { recursive: true });
      if (code !== undefined) assert.equal(code, 0);
    }
  },
);
