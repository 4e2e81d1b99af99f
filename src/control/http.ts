/**
 * The HTTP server of `METRICS_ADDRESS`: the dashboard at `/`, Prometheus
 * metrics at `/metrics`, `/healthz`, and JSON for other tools at
 * `/api/status`, `/api/history` and `/api/live` (docs/ARCHITECTURE.md,
 * "History and dashboard"). It answers GET and HEAD, and POST to
 * `/api/services/NAME/wake|sleep|keep-awake` with the API_TOKEN_FILE's token
 * ("Wake API"). Requests are served by the bounded server of `net/http_server.ts`;
 * here they are checked: the Host a browser sent (against DNS rebinding), the
 * Origin of a POST, and the token, with a wait after wrong ones.
 *
 * @module
 */

import { LiveFeed } from "../dashboard/live.ts";
import { dashboardPage } from "../dashboard/page.ts";
import type { HistoryEvent } from "../history/event.ts";
import type { History, Period } from "../history/timeline.ts";
import { log } from "../log.ts";
import { timingSafeEqual } from "node:crypto";
import { parseDuration } from "../config/duration.ts";
import { formatAddr, formatTarget } from "../net/address.ts";
import { HttpServer } from "../net/http_server.ts";
import type { HttpSlots } from "../net/http_slots.ts";
import { UnknownServiceError } from "../service/supervisor.ts";
import { parseAction, type ServiceAction } from "./actions.ts";
import { exposure, readToken, TokenFileError } from "./api_token.ts";
import { hostRefusal } from "./host_check.ts";
import type { DaemonStatus } from "./status.ts";
import { TokenBackoff } from "./token_backoff.ts";

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
  /** Does an action on a service, asked by `by`; says what was done. */
  act(request: ServiceAction, by: string): Promise<string>;
  /** The API_TOKEN_FILE now; undefined when the HTTP API takes no action. */
  tokenFile(): string | undefined;
  /** METRICS_HOSTS now: the host names, besides the address's own, that requests may name. */
  allowedHosts(): readonly string[];
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

/** What the routes need besides the request: the sources, and the token's state. */
interface Context {
  sources: HttpSources;
  backoff: TokenBackoff;
  /** Says a problem of API_TOKEN_FILE at most once a minute (each request would repeat it). */
  tokenProblem: (message: string, level: "warn" | "error") => void;
}

/**
 * Serves the dashboard, the metrics and the API on `address`, holding at
 * most what `slots` allows.
 *
 * @returns how to shut it down (live streams end first)
 * @throws {Error} naming METRICS_ADDRESS when it cannot listen
 */
export function serveHttp(
  address: { hostname: string; port: number },
  sources: HttpSources,
  slots?: HttpSlots,
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
  const said = new Map<string, number>();
  const context: Context = {
    sources,
    backoff: new TokenBackoff(),
    tokenProblem: (message, level) => {
      const now = Date.now();
      if (now - (said.get(message) ?? -Infinity) < 60_000) return;
      said.set(message, now);
      logger[level]("{message}", { message });
    },
  };
  const refusedHosts = new Set<string>();
  const handle = (request: Request, peer: Deno.NetAddr): Response | Promise<Response> => {
    const url = new URL(request.url);
    const api = url.pathname.startsWith("/api/");
    const refusal = hostRefusal(
      request.headers.get("host"),
      address.hostname,
      sources.allowedHosts(),
    );
    if (refusal) {
      const host = request.headers.get("host") ?? "";
      if (refusedHosts.size < 100 && !refusedHosts.has(host)) {
        refusedHosts.add(host);
        logger.warn("refused a request for Host {host} from {peer}: {reason}", {
          host,
          peer: formatAddr(peer),
          reason: refusal,
        });
      }
      return failure(api, refusal, 421);
    }
    const action = ACTION_PATH.exec(url.pathname);
    if (action) {
      if (request.method !== "POST") return failure(api, "Only POST here", 405, { allow: "POST" });
      let service: string;
      try {
        service = decodeURIComponent(action[1]);
      } catch {
        return failure(api, `The service name is not valid percent-encoding: ${action[1]}`, 400);
      }
      return act(request, context, service, action[2], peer);
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return failure(
        api,
        "Only GET and HEAD, but POST to /api/services/NAME/wake, /sleep or /keep-awake",
        405,
        { allow: "GET, HEAD" },
      );
    }
    switch (url.pathname) {
      case "/":
        return page(sources);
      case "/metrics":
        return text(sources.metrics(), 200, {
          "content-type": "text/plain; version=0.0.4; charset=utf-8",
        });
      case "/healthz":
        return text("ok\n");
      case "/api/status":
        return json({ running: true, ...sources.status() });
      case "/api/history":
        return json(sources.history(periodOf(url.searchParams), serviceOf(url, sources)));
      case "/api/live":
        lastStatus = JSON.stringify(sources.status());
        return feed.response([{ event: "status", data: JSON.parse(lastStatus) }]);
      default:
        return failure(
          api,
          "Not found: try / (the dashboard), /metrics, /healthz, /api/status, /api/history " +
            "or /api/live",
          404,
        );
    }
  };
  let server: HttpServer;
  try {
    server = new HttpServer(address, (request, peer) => {
      try {
        return handle(request, peer);
      } catch (error) {
        if (error instanceof BadRequest) return json({ error: error.message }, error.status);
        throw error;
      }
    }, {
      slots,
      onError: (error, request) => {
        logger.error("cannot answer {url}: {error}", { url: request.url, error });
        return json({ error: (error as Error).message }, 500);
      },
    });
  } catch (error) {
    unsubscribe();
    throw new Error(
      `Cannot serve on METRICS_ADDRESS ${formatTarget(address)}: ${(error as Error).message}`,
    );
  }
  const url = `http://${formatTarget(server.addr)}`;
  logger.info("dashboard on {url}/, metrics on {url}/metrics", { url });
  return {
    async shutdown() {
      unsubscribe();
      feed.close();
      await server.shutdown();
    },
  };
}

/** `/api/services/NAME/ACTION`. */
const ACTION_PATH = /^\/api\/services\/([^/]+)\/(wake|sleep|keep-awake)$/;

/**
 * Does an action asked over HTTP: from the page's own origin (or a client
 * that names none), with the token of API_TOKEN_FILE only, compared in
 * constant time, and not from a source that must still wait after wrong
 * tokens. The body, JSON and optional, may hold `for` (a duration: `2h`) or
 * `seconds`, and `force`.
 */
async function act(
  request: Request,
  { sources, backoff, tokenProblem }: Context,
  service: string,
  action: string,
  peer: Deno.NetAddr,
): Promise<Response> {
  const origin = request.headers.get("origin");
  if (origin !== null && originHost(origin) !== request.headers.get("host")?.toLowerCase()) {
    return json({ error: `Refused a request from another origin: ${origin}` }, 403);
  }
  const file = sources.tokenFile();
  if (file === undefined) {
    return json({ error: "The HTTP API takes no action here: set API_TOKEN_FILE" }, 403);
  }
  const waitMs = backoff.waitFor(peer);
  if (waitMs > 0) {
    const seconds = Math.ceil(waitMs / 1000);
    return json(
      { error: `Too many wrong tokens from this address: try again in ${seconds}s` },
      429,
      { "retry-after": String(seconds) },
    );
  }
  let token: string;
  try {
    token = await readToken(file);
  } catch (error) {
    if (!(error instanceof TokenFileError)) throw error;
    tokenProblem(`${error.message}; the HTTP API takes no action until it is fixed`, "error");
    return json({ error: `Cannot use API_TOKEN_FILE ${file}: see the daemon's log` }, 503);
  }
  const exposed = exposure(file);
  if (exposed) tokenProblem(exposed, "warn");
  const sent = /^Bearer (.+)$/.exec(request.headers.get("authorization") ?? "")?.[1] ?? "";
  if (!(await sameSecret(sent, token))) {
    const failure = backoff.failed(peer);
    if (failure.log) {
      log("http").warn(
        "refused {action} of [{service}] from {peer}: no valid token{wait}{unlogged}",
        {
          action,
          service,
          peer: formatAddr(peer),
          wait: failure.waitMs > 0
            ? ` (${failure.failures} wrong in a row from ${failure.source}: its tries wait ` +
              `${failure.waitMs / 1000}s)`
            : "",
          unlogged: failure.unlogged > 0 ? `; ${failure.unlogged} refusal(s) not logged` : "",
        },
      );
    }
    return json({ error: "A valid token is needed: Authorization: Bearer TOKEN" }, 401, {
      "www-authenticate": "Bearer",
    });
  }
  backoff.succeeded(peer);
  let body: Record<string, unknown>;
  try {
    const raw = await request.text();
    body = raw.trim() === "" ? {} : JSON.parse(raw);
    if (typeof body.for === "string") body = { ...body, seconds: parseDuration(body.for) };
  } catch (error) {
    return json({ error: `The body must be JSON: ${(error as Error).message}` }, 400);
  }
  let parsed: ServiceAction;
  try {
    parsed = parseAction({ seconds: body.seconds, force: body.force, action, service });
  } catch (error) {
    return json({ error: (error as Error).message }, 400);
  }
  try {
    const message = await sources.act(parsed, `the HTTP API from ${formatAddr(peer)}`);
    const status = sources.status().services.find((one) => one.name === service);
    return json({ ok: true, message, service: status });
  } catch (error) {
    const status = error instanceof UnknownServiceError ? 404 : 502;
    return json({ ok: false, error: (error as Error).message }, status);
  }
}

/** The `host[:port]` of an Origin header, lowercase; undefined for `null` or a malformed one. */
function originHost(origin: string): string | undefined {
  return URL.parse(origin)?.host.toLowerCase() || undefined;
}

/** Whether two secrets are the same, in a time that does not tell how much of them matched. */
async function sameSecret(a: string, b: string): Promise<boolean> {
  const digest = async (text: string) =>
    new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return timingSafeEqual(await digest(a), await digest(b));
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

/**
 * The dashboard, showing the status and the last 24 hours as they are now
 * (the timelines, not the raw events), its script and style allowed by a
 * nonce of this answer only.
 */
function page(sources: HttpSources): Response {
  const nonce = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const { events: _events, ...history } = sources.history(periodOf(new URLSearchParams()));
  return new Response(dashboardPage(nonce, { status: sources.status(), history }), {
    headers: {
      ...COMMON_HEADERS,
      "content-type": "text/html; charset=utf-8",
      "content-security-policy": `default-src 'none'; script-src 'nonce-${nonce}'; ` +
        `style-src 'nonce-${nonce}'; connect-src 'self'; img-src data:; base-uri 'none'; ` +
        "form-action 'none'; frame-ancestors 'none'",
    },
  });
}

function json(value: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return text(JSON.stringify(value), status, { "content-type": "application/json", ...headers });
}

/** An error: JSON under `/api/`, where clients parse it, text elsewhere. */
function failure(
  api: boolean,
  message: string,
  status: number,
  headers: Record<string, string> = {},
): Response {
  return api ? json({ error: message }, status, headers) : text(`${message}\n`, status, headers);
}

function text(body: string, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { ...COMMON_HEADERS, ...headers } });
}
