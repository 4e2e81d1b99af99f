/**
 * The signals besides shutdown and reload that tools send a daemon by
 * convention: SIGUSR1 reopens the log file (logrotate's `postrotate`),
 * SIGUSR2 is ignored with a line that says so, and SIGXFSZ is ignored, so
 * that a write past the file size limit (`ulimit -f`) fails instead of ending
 * the daemon. Under `deno run`,
 * the address of Deno's debugger is held as well (see below).
 *
 * @module
 */

import inspector from "node:inspector";
import { log, reopenLog } from "../log.ts";
import { acceptConnections } from "../net/accept.ts";
import { closeQuietly } from "../net/conn.ts";

/**
 * Where `deno run` (not a compiled sleepingd) starts Deno's V8 debugger when
 * the process gets SIGUSR1, whatever listens to that signal: anyone on the host
 * who connects there could run code as sleepingd's user. Deno has no flag
 * against it; while this address is taken, the debugger cannot listen.
 */
const DEBUGGER_ADDRESS = { hostname: "127.0.0.1", port: 9229 } as const;

/** How long after a SIGUSR1 the daemon looks whether Deno's debugger opened all the same. */
const DEBUGGER_CHECK_MS = 100;

/**
 * Handles SIGUSR1, SIGUSR2 and SIGXFSZ until the returned function is called,
 * and under `deno run` holds the address of Deno's debugger meanwhile.
 */
export function handleOtherSignals(): () => void {
  const logger = log("daemon");
  let guard = holdDebuggerAddress();
  let check: ReturnType<typeof setTimeout> | undefined;
  const onUsr1 = () => {
    try {
      const path = reopenLog();
      if (path === undefined) logger.info("SIGUSR1: the log goes to stderr, nothing to reopen");
      else logger.info("SIGUSR1: reopened the log file {path}", { path });
    } catch (error) {
      logger.error("SIGUSR1: {error}; the log goes on in the file it had", {
        error: (error as Error).message,
      });
    }
    if (!Deno.build.standalone) {
      clearTimeout(check);
      check = setTimeout(() => {
        closeDebugger();
        guard ??= holdDebuggerAddress(); // for the next SIGUSR1, if the address is free now
      }, DEBUGGER_CHECK_MS);
    }
  };
  const onUsr2 = () => {
    logger.info("SIGUSR2: ignored (SIGUSR1 reopens the log file, SIGHUP reloads)");
  };
  // Nothing to say: the log's own count of the lines it could not write says it, whereas a
  // line here would be one more write past the limit, and one more SIGXFSZ.
  const onFileSize = () => {};
  const handlers = [
    ["SIGUSR1", onUsr1],
    ["SIGUSR2", onUsr2],
    ["SIGXFSZ", onFileSize],
  ] as const;
  for (const [signal, handler] of handlers) Deno.addSignalListener(signal, handler);
  return () => {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
    clearTimeout(check);
    guard?.close();
  };
}

/**
 * Under `deno run`, listens on {@linkcode DEBUGGER_ADDRESS} (closing whatever
 * connects) so that a SIGUSR1 cannot start Deno's debugger there. Where
 * another program holds the address, the debugger cannot start either, for
 * as long as that program holds it.
 */
function holdDebuggerAddress(): { close(): void } | undefined {
  if (Deno.build.standalone) return undefined;
  const logger = log("daemon");
  const address = `${DEBUGGER_ADDRESS.hostname}:${DEBUGGER_ADDRESS.port}`;
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen(DEBUGGER_ADDRESS);
  } catch (error) {
    logger.debug("{address}, where SIGUSR1 would open Deno's debugger, is taken: {error}", {
      address,
      error: (error as Error).message,
    });
    return undefined;
  }
  logger.debug("holding {address}, so that SIGUSR1 cannot open Deno's debugger there", {
    address,
  });
  acceptConnections(listener, "debugger guard", closeQuietly);
  return { close: () => closeQuietly(listener) };
}

/** Closes Deno's debugger if a SIGUSR1 opened it all the same, and says so. */
function closeDebugger(): void {
  const url = inspector.url();
  if (url === undefined) return;
  inspector.close();
  log("daemon").warn(
    "SIGUSR1 opened Deno's debugger at {url} ({address} was free again), which lets anyone " +
      "on this host run code as sleepingd's user: closed it. The compiled sleepingd has no " +
      "such debugger",
    { url, address: `${DEBUGGER_ADDRESS.hostname}:${DEBUGGER_ADDRESS.port}` },
  );
}
