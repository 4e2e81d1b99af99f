/**
 * The waiting page in a browser's wait (`WAITING_PAGE`): a GET or HEAD that
 * accepts text/html and still waits after WAITING_PAGE_AFTER seconds is
 * answered 503 with a page saying which service wakes, for how long, and how
 * long its wakes usually take; the page's `Refresh` brings the browser back,
 * and the real page once the backend is ready. A wake that fails shows its
 * error, and for 30 seconds after it browsers get that error rather than a
 * new wake (docs/ARCHITECTURE.md, "The waiting page").
 *
 * @module
 */

import { answerAndLinger, httpAnswer } from "../net/http_answer.ts";
import type { FirstBytes } from "../net/first_bytes.ts";
import type { Stream } from "../net/forward.ts";
import { type RequestHead, wantsHtml } from "../net/http_head.ts";
import { startTimer } from "../timers.ts";
import { BUILT_IN_PAGE, type PageValues, renderPage } from "../waiting/page.ts";
import { NoBackendError } from "./routing.ts";
import type { Service } from "./service.ts";

/** Seconds after a failed wake during which browsers get its error instead of a new wake. */
export const FAILURE_SHOWN_SECONDS = 30;

/** Seconds after which the waiting page reloads itself. */
const REFRESH_SECONDS = 1;

/** A browser was answered with a page: its wait is over, and it is closed. */
export class PageAnswered extends Error {
  /** Creates the error saying which page; `cause` is what ended the wait. */
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = "PageAnswered";
  }
}

/** The wait lasted WAITING_PAGE_AFTER: time for the page. */
class PageDue extends Error {}

/** The last wake failed moments ago: the page shows why instead of waking the service again. */
class FailedRecently extends Error {}

/** A browser's wait for a service that has a waiting page. */
export class BrowserWait {
  readonly #service: Service;
  readonly #head: RequestHead;
  #cancelTimer = () => {};

  private constructor(service: Service, head: RequestHead) {
    this.#service = service;
    this.#head = head;
  }

  /**
   * The browser's wait, when the service has a waiting page and the client's
   * first bytes are a request for a page (`wantsHtml`); undefined otherwise:
   * the client waits as any other.
   */
  static of(service: Service, first: FirstBytes | undefined): BrowserWait | undefined {
    const outcome = first?.outcome;
    if (!service.config.waitingPage || outcome?.kind !== "http") return undefined;
    return wantsHtml(outcome.head) ? new BrowserWait(service, outcome.head) : undefined;
  }

  /**
   * Begins the wait: after WAITING_PAGE_AFTER, `wait` is aborted so that the
   * page can be served.
   *
   * @throws {FailedRecently} at once when the service is asleep after a wake
   * that failed less than 30 seconds ago: the browser gets its error, and no
   * wake begins
   */
  begin(wait: AbortController): void {
    const failure = this.#service.lastWakeFailure;
    if (
      this.#service.state === "asleep" && failure &&
      secondsSince(failure.at) < FAILURE_SHOWN_SECONDS
    ) {
      throw new FailedRecently(failure.message);
    }
    const after = this.#service.config.waitingPage!.after;
    this.#cancelTimer = startTimer(after * 1000, () => wait.abort(new PageDue()));
  }

  /** Ends the wait's timer. */
  end(): void {
    this.#cancelTimer();
  }

  /**
   * Answers the browser with the page when `error`, which ended its wait,
   * is one a page explains: the wait's time is up (or HOLD_TIMEOUT's), or the
   * wake failed or was refused. Nothing is answered to a client that left.
   *
   * @returns the error saying which page was served, or undefined when none was
   */
  async answer(client: Stream, error: unknown): Promise<PageAnswered | undefined> {
    const service = this.#service;
    let failure: { at: number; message: string } | undefined;
    if (error instanceof FailedRecently) failure = service.lastWakeFailure;
    else if (error instanceof NoBackendError && error.refusal !== "hold_timeout") {
      failure = { at: Date.now(), message: error.message };
    } else if (!(error instanceof PageDue || error instanceof NoBackendError)) return undefined;
    const nonce = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const values = failure ? this.#failed(failure) : this.#waking();
    values.nonce = nonce;
    const page = service.config.waitingPage!;
    const body = renderPage(page.file?.text ?? BUILT_IN_PAGE, values);
    const headers: Record<string, string> = {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "retry-after": values.retry,
      "content-security-policy": `default-src 'none'; style-src 'nonce-${nonce}'; ` +
        `script-src 'nonce-${nonce}'; img-src data:; base-uri 'none'; form-action 'none'`,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
    };
    if (!failure) headers.refresh = String(REFRESH_SECONDS);
    const answer = { status: 503, reason: "Service Unavailable", headers };
    await answerAndLinger(client, httpAnswer(answer, body, this.#head.method));
    if (failure) service.stats.errorPages++;
    else service.stats.waitingPages++;
    return new PageAnswered(
      failure
        ? `answered with the page of the failed wake: ${failure.message}`
        : "answered with the waiting page",
      error,
    );
  }

  /** The values of the page while the service wakes. */
  #waking(): PageValues {
    const service = this.#service;
    const name = service.config.name;
    const typical = service.typicalWakeSeconds();
    const waited = service.state === "starting" ? secondsSince(service.stateSince) : 0;
    let message = "Waking.";
    if (service.state === "stopping") message = "It is finishing a stop, and wakes right after.";
    else if (service.state === "starting") {
      message = `Waking for ${seconds(waited)} s; ` +
        (typical === undefined
          ? "no earlier wake to compare with."
          : `its wakes usually take about ${seconds(typical)} s.`);
    }
    return this.#values({
      state: "waking",
      title: `${name} is waking up`,
      message,
      waited: seconds(waited),
      typical: typical === undefined ? "" : seconds(typical),
      progress: typical ? String(Math.min(99, Math.round((100 * waited) / typical))) : "0",
      retry: String(REFRESH_SECONDS),
      error: "",
    });
  }

  /** The values of the page after a failed wake. */
  #failed(failure: { at: number; message: string }): PageValues {
    const name = this.#service.config.name;
    const ago = secondsSince(failure.at);
    const typical = this.#service.typicalWakeSeconds();
    return this.#values({
      state: "failed",
      title: `${name} could not wake`,
      message: ago < 1
        ? "Its wake failed just now."
        : `Its last wake failed ${seconds(ago)} s ago.`,
      waited: "0",
      typical: typical === undefined ? "" : seconds(typical),
      progress: "0",
      retry: String(Math.max(1, Math.ceil(FAILURE_SHOWN_SECONDS - ago))),
      error: failure.message,
    });
  }

  #values(values: Omit<PageValues, "service" | "host" | "nonce">): PageValues {
    const service = this.#service.config.name;
    return { ...values, service, host: this.#head.host ?? service, nonce: "" };
  }
}

function secondsSince(at: number): number {
  return Math.max(0, (Date.now() - at) / 1000);
}

/** `7`, `12`, `0.4`: whole seconds from 10 on, one decimal below. */
function seconds(value: number): string {
  return value >= 10 ? String(Math.round(value)) : String(Math.round(value * 10) / 10);
}
