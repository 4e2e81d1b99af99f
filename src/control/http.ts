/**
 * The HTTP server of `METRICS_ADDRESS`: the dashboard at `/`, Prometheus
 * metrics at `/metrics`, `/healthz`, and JSON for other tools at
 * `/api/status`, `/api/history` and `/api/live` (docs/ARCHITECTURE.md,
 * "Dashboard"). Read-only: it answers GET and HEAD.
 *
 * @module
 */

import { LiveFeed } from "../dashboard/live.ts";
import { dashboardPage } from "../dashboard/page.ts";
import type { HistoryEvent } from "../history/event.ts";
import type { History, Period } from "../history/timeline.ts";
import { log } from "../log.ts";
import { formatTarget } from "../net/address.ts";
import type { DaemonStatus } from "./status.ts";

/** What the server shows, read at each request. */
export interface HttpSources {
  /** The Prometheus exposition. */
  metrics(): string;
  /** The daemon's status, as `status --json` prints it. */
  status(): DaemonStatus;
  /** The history of `period`, of one service when `service` is set. */
  history(period: Period, service?: string): History;
  /** Calls `listener` with each event of the history; returns how to stop. */
  subscribe(listener: (event: HistoryEvent) => void): () => void;
}

/** The periods `/api/history?period=` takes: `24h`, `7d`, any `Nh` or `Nd` up to 31 days. */
const PERIOD = /^(\d{1,3})([hd])$/;
const DAY_MS = 86_400_000;
const MAX_PERIOD_MS = 31 * DAY_MS;

/** Headers every answer carries: nothing cached, nothing sniffed, no page framing it. */
const COMMON_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

/** A request that names a bad period or service: answered 400 or 404 with this message. */
class BadRequest extends Error {
  constructor(message: string, readonly status = 400) {
    super(message);
  }
}

/**
 * Serves the dashboard, the metrics and the API on `address`.
 *
 * @returns how to shut it down (live streams end first)
 * @throws {Error} naming METRICS_ADDRESS when it cannot listen
 */
export function serveHttp(
  address: { hostname: string; port: number },
  sources: HttpSources,
): { shutdown(): Promise<void> } {
  const logger = log("http");
  let lastStatus = "";
  const sendStatus = () => {
    const status = JSON.stringify(sources.status());
    if (status !== lastStatus) feed.send("status", JSON.parse(lastStatus = status));
  };
  const feed = new LiveFeed(sendStatus);
  const unsubscribe = sources.subscribe((event) => {
    feed.send("history", event);
    sendStatus();
  });
  const handle = (request: Request): Response => {
    const url = new URL(request.url);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return text("Only GET and HEAD: this server is read-only\n", 405, { allow: "GET, HEAD" });
    }
    switch (url.pathname) {
      case "/":
        return page();
      case "/metrics":
        return text(sources.metrics(), 200, {
          "content-type": "text/plain; version=0.0.4; charset=utf-8",
        });
      case "/healthz":
        return text("ok\n");
      case "/api/status":
        return json(sources.status());
      case "/api/history":
        return json(sources.history(periodOf(url.searchParams), serviceOf(url, sources)));
      case "/api/live":
        lastStatus = JSON.stringify(sources.status());
        return feed.response([{ event: "status", data: JSON.parse(lastStatus) }]);
      default:
        return text(
          "Not found: try / (the dashboard), /metrics, /healthz, /api/status, /api/history " +
            "or /api/live\n",
          404,
        );
    }
  };
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      ...address,
      onListen: (addr) => {
        const url = `http://${formatTarget(addr)}`;
        logger.info("dashboard on {url}/, metrics on {url}/metrics", { url });
      },
    }, (request) => {
      try {
        return handle(request);
      } catch (error) {
        if (error instanceof BadRequest) return json({ error: error.message }, error.status);
        logger.error("cannot answer {url}: {error}", { url: request.url, error });
        return json({ error: (error as Error).message }, 500);
      }
    });
  } catch (error) {
    unsubscribe();
    throw new Error(
      `Cannot serve on METRICS_ADDRESS ${formatTarget(address)}: ${(error as Error).message}`,
    );
  }
  return {
    async shutdown() {
      unsubscribe();
      feed.close();
      await server.shutdown();
    },
  };
}

/** The period `/api/history` asks for: `period=24h|7d|Nh|Nd`, or `from` and `to`. */
function periodOf(params: URLSearchParams): Period {
  const now = Date.now();
  const to = params.has("to") ? timeOf(params, "to") : now;
  let from: number;
  if (params.has("from")) {
    from = timeOf(params, "from");
  } else {
    const text = params.get("period") ?? "24h";
    const match = PERIOD.exec(text);
    if (!match) {
      throw new BadRequest(`period must be a number of hours or days, e.g. 24h or 7d: "${text}"`);
    }
    from = to - Number(match[1]) * (match[2] === "h" ? 3_600_000 : DAY_MS);
  }
  if (from >= to) throw new BadRequest("from must come before to");
  if (to - from > MAX_PERIOD_MS) throw new BadRequest("a period is at most 31 days");
  return { from, to, now };
}

/** A time parameter: an ISO date or Unix milliseconds. */
function timeOf(params: URLSearchParams, name: string): number {
  const text = params.get(name)!;
  const time = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (Number.isNaN(time)) {
    throw new BadRequest(`${name} must be an ISO date or Unix milliseconds: "${text}"`);
  }
  return time;
}

/** `service=NAME`, which must name a configured service. */
function serviceOf(url: URL, sources: HttpSources): string | undefined {
  const name = url.searchParams.get("service") ?? undefined;
  if (name !== undefined && !sources.status().services.some((service) => service.name === name)) {
    throw new BadRequest(`no service is named "${name}"`, 404);
  }
  return name;
}

/** The dashboard, its script and style allowed by a nonce of this answer only. */
function page(): Response {
  const nonce = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  return new Response(dashboardPage(nonce), {
    headers: {
      ...COMMON_HEADERS,
      "content-type": "text/html; charset=utf-8",
      "content-security-policy": `default-src 'none'; script-src 'nonce-${nonce}'; ` +
        `style-src 'nonce-${nonce}'; connect-src 'self'; img-src data:; base-uri 'none'; ` +
        "form-action 'none'; frame-ancestors 'none'",
    },
  });
}

function json(value: unknown, status = 200): Response {
  return text(JSON.stringify(value), status, { "content-type": "application/json" });
}

function text(body: string, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { ...COMMON_HEADERS, ...headers } });
}
