/**
 * One client connection, from accept to close: admission, the wait for a
 * backend (holding the client), the PROXY protocol header, forwarding, and
 * its log lines (docs/ARCHITECTURE.md, "Data path").
 *
 * @module
 */

import { log } from "../log.ts";
import { formatAddr, formatTarget, unmapped } from "../net/address.ts";
import { closeQuietly, writeAll } from "../net/conn.ts";
import { tuneConnection } from "../net/connect.ts";
import { forward, type Stream } from "../net/forward.ts";
import type { FirstBytes } from "../net/first_bytes.ts";
import { ClientHold } from "../net/hold.ts";
import { Prefixed } from "../net/prefixed.ts";
import { proxyHeader } from "../net/proxy_protocol.ts";
import { abortable, startTimer } from "../timers.ts";
import type { Refusal } from "./admission.ts";
import { NoBackendError } from "./routing.ts";
import type { Service } from "./service.ts";
import type { Backend } from "./wake.ts";
import type { PortMapping } from "../config/ports.ts";
import { BrowserWait, PageAnswered } from "./waiting_page.ts";

/** Connections log here: this module runs once per connection, so the logger is made once. */
const logger = log("connection");

/** The client left while it was held: nothing to refuse, nothing to count. */
class ClientLeft extends Error {
  /** Creates the error saying how the client left. */
  constructor(message: string) {
    super(message);
    this.name = "ClientLeft";
  }
}

/**
 * Serves the client `client` of `service` until both sides are done, or
 * closes it at once when the limits of all services (`total`) or the
 * service refuse it. `port` is the MORE_PORTS entry it came on; undefined for PORT.
 * `first` is what a port routed by name read of it already, to choose the service.
 */
export async function serveConnection(
  service: Service,
  client: Deno.TcpConn,
  total: Refusal | undefined,
  port?: PortMapping,
  first?: FirstBytes,
): Promise<void> {
  const name = service.config.name;
  const peer = formatAddr(client.remoteAddr);
  if (total) service.clients.refused(total.reason);
  const refusal = total ?? service.clients.admit(client.remoteAddr);
  if (refusal) {
    logger.warn("[{service}] refused {peer}: {reason}", {
      service: name,
      peer,
      reason: refusal.message,
    });
    closeQuietly(client);
    return;
  }
  const opened = Date.now();
  let source: Stream | undefined;
  // FORWARD=kernel only: which path carried new connections when this one came.
  const carriedBy = service.config.forward === "kernel" ? service.path.path : "proxy";
  try {
    let backend: Backend;
    try {
      tuneConnection(client);
      ({ source, backend } = await waitForBackend(service, client, port, first));
      const version = service.config.proxyProtocol;
      if (version) {
        // First, before the client's bytes: servers that speak first wait for it too.
        await writeAll(backend.conn, proxyHeader(version, client.remoteAddr, client.localAddr))
          .catch((error) => {
            closeQuietly(backend.conn);
            throw error;
          });
      }
    } catch (error) {
      const cause = error instanceof PageAnswered ? error.cause : error;
      if (cause instanceof NoBackendError && cause.refusal) service.clients.refused(cause.refusal);
      const quiet = error instanceof ClientLeft || error instanceof PageAnswered;
      logger[quiet ? "info" : "warn"](
        "[{service}] closing connection from {peer}: {reason}",
        { service: name, peer, reason: (error as Error).message },
      );
      closeQuietly(client);
      return;
    }
    const target = formatTarget(backend.target);
    // One line per connection at info, when it ends (as haproxy's tcplog): a line at each
    // connect too would double the logging, the largest cost of a short connection after its
    // syscalls (docs/ARCHITECTURE.md, "Performance").
    logger.debug("[{service}] {peer} connected to {target}", { service: name, peer, target });
    const result = await forward(
      source,
      backend.conn,
      (direction, bytes) => service.clients.bytesForwarded(direction, bytes),
    );
    const seconds = ((Date.now() - opened) / 1000).toFixed(2);
    const ending = (result.error ? `: ${(result.error as Error).message ?? result.error}` : "") +
      (service.config.forward === "kernel" ? ` (${proxiedBecause(client, carriedBy)})` : "");
    // LOG_CONNECTIONS=no keeps a busy service's connections out of the info log.
    logger[service.config.logConnections ? "info" : "debug"](
      "[{service}] {peer} connection to {target} closed after {seconds}s, {bytesIn} bytes in, {bytesOut} bytes out{ending}",
      {
        service: name,
        peer,
        target,
        seconds,
        bytesIn: result.bytesIn,
        bytesOut: result.bytesOut,
        ending,
      },
    );
  } finally {
    // A held client's bytes that never reached the backend are given back with it.
    if (source instanceof ClientHold) source.free();
    service.clients.connectionClosed(client.remoteAddr);
  }
}

/** Why a client of a FORWARD=kernel service came through sleepingd, for its log line. */
function proxiedBecause(client: Deno.TcpConn, carriedBy: "proxy" | "kernel"): string {
  const address = unmapped(client.remoteAddr.hostname);
  if (address === "::1" || address.startsWith("127.")) return "proxied: a loopback client";
  return carriedBy === "kernel"
    ? "proxied: a client the kernel does not forward"
    : "proxied: the kernel path was not in place";
}

/**
 * A backend connection for the client. While the service is awake it
 * connects at once and reads nothing ahead. Otherwise the client is held
 * (read and kept) while it waits: with WAKE_ON=data the wake waits for its
 * first byte; a client that leaves is dropped at once; one that waits past
 * HOLD_TIMEOUT is closed (the wake goes on).
 *
 * @returns the stream to forward the client's bytes from (the held bytes
 * first) and the backend connection
 */
async function waitForBackend(
  service: Service,
  client: Deno.TcpConn,
  port: PortMapping | undefined,
  first: FirstBytes | undefined,
): Promise<{ source: Stream; backend: Backend }> {
  if (!service.config.routePerConnection && service.state === "awake") {
    const backend = await service.openBackend(client.remoteAddr, { wait: false, port });
    if (backend) return { source: first ? new Prefixed(client, first.bytes) : client, backend };
  }
  const { holdTimeout, wakeOn } = service.config;
  const hold = ClientHold.open(client, service.budget, first?.bytes);
  if (hold === undefined) {
    throw new NoBackendError(service.budget.heldFull(), { refusal: "held_bytes" });
  }
  const browser = BrowserWait.of(service, first);
  const giveUp = new AbortController();
  const cancelTimer = holdTimeout > 0
    ? startTimer(holdTimeout * 1000, () => {
      const message = `it waited HOLD_TIMEOUT (${holdTimeout}s) for the wake`;
      giveUp.abort(new NoBackendError(message, { refusal: "hold_timeout" }));
    })
    : () => {};
  hold.gone.then((why) => giveUp.abort(new ClientLeft(`the client left while it waited: ${why}`)));
  try {
    if (wakeOn === "data" && service.state !== "awake") await abortable(hold.data, giveUp.signal);
    browser?.begin(giveUp);
    const backend = await service.openBackend(client.remoteAddr, { signal: giveUp.signal, port });
    return { source: hold.release(), backend: backend! };
  } catch (error) {
    try {
      throw (await browser?.answer(hold, error)) ?? error;
    } finally {
      hold.free();
    }
  } finally {
    cancelTimer();
    browser?.end();
  }
}
