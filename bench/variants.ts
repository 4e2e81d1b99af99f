/**
 * The variants: ways for the bench's client to reach the backend — directly,
 * or through sleepingd, socat or haproxy listening on a port of their own.
 *
 * @module
 */

import type { VariantName } from "./args.ts";
import { type Child, findExecutable, freePort, start, tail, waitForPort } from "./processes.ts";

/** How long a proxy may take to listen before the bench gives up on it. */
const STARTUP_TIMEOUT_MS = 30_000;

/** A variant ready to measure: connect to 127.0.0.1:`port` to reach the backend. */
export interface Variant {
  /** Which variant this is. */
  name: VariantName;
  /** The port the client connects to. */
  port: number;
  /** The proxy process, whose CPU time is reported; none for `direct`. */
  pid?: number;
  /** Stops the proxy (nothing for `direct`). */
  stop(): Promise<void>;
}

/** Where the variants come from: the backend's port and a temp dir for their files. */
export interface VariantContext {
  /** The port of the backend on 127.0.0.1. */
  backendPort: number;
  /** A directory the bench removes when it ends. */
  tempDir: string;
}

/** What {@linkcode startVariant} gives back: a running variant, or why it was skipped. */
export type Started = { variant: Variant } | { skipped: string };

/** Starts the proxy of `name` in front of the backend, waits until it accepts. */
export async function startVariant(name: VariantName, context: VariantContext): Promise<Started> {
  switch (name) {
    case "direct":
      return { variant: { name, port: context.backendPort, stop: () => Promise.resolve() } };
    case "sleepingd":
      return { variant: await startSleepingd(context) };
    case "socat":
      return await startSocat(context);
    case "haproxy":
      return await startHaproxy(context);
  }
}

/**
 * The real CLI, `deno run -A src/main.ts -f CONF run`, with one service whose
 * START_CMD names the backend, which is already up; ready at its "is running"
 * log line.
 */
async function startSleepingd({ backendPort, tempDir }: VariantContext): Promise<Variant> {
  const port = freePort();
  const configFile = `${tempDir}/sleepingd.conf`;
  await Deno.writeTextFile(
    configFile,
    [
      `VARRUN_PATH=${tempDir}/sleepingd`,
      "SHUTDOWN_GRACE=1",
      "[bench]",
      `PORT=${port}`,
      "LISTEN_ADDRESS=127.0.0.1",
      `START_CMD="echo '127.0.0.1 ${backendPort}'"`,
      "",
    ].join("\n"),
  );
  await Deno.mkdir(`${tempDir}/sleepingd`, { recursive: true });
  const main = new URL("../src/main.ts", import.meta.url).pathname;
  const child = start(
    "sleepingd",
    Deno.execPath(),
    ["run", "-A", main, "-f", configFile, "run"],
    tempDir,
  );
  await child.waitForLine((line) => line.includes("is running"), STARTUP_TIMEOUT_MS);
  return proxy("sleepingd", port, child);
}

/**
 * `socat TCP-LISTEN:P,bind=127.0.0.1,fork,reuseaddr,backlog=128 TCP:127.0.0.1:B`.
 * `backlog=128` is the one change from socat's defaults: with its default of 5,
 * 64 connections at once overflow the accept queue and some are reset.
 */
async function startSocat({ backendPort }: VariantContext): Promise<Started> {
  const socat = findExecutable("socat");
  if (socat === undefined) return { skipped: "socat is not installed (apt-get install socat)" };
  const port = freePort();
  const child = start("socat", socat, [
    `TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr,backlog=128`,
    `TCP:127.0.0.1:${backendPort}`,
  ]);
  await listening(child, port);
  return { variant: proxy("socat", port, child) };
}

/** The haproxy configuration of the bench: one TCP listener, one thread. */
export function haproxyConfig(port: number, backendPort: number): string {
  return `global
  nbthread 1
  maxconn 4096

defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s

listen bench
  bind 127.0.0.1:${port}
  server backend 127.0.0.1:${backendPort}
`;
}

/** `haproxy -f CONF -db` with {@linkcode haproxyConfig}. */
async function startHaproxy({ backendPort, tempDir }: VariantContext): Promise<Started> {
  const haproxy = findExecutable("haproxy");
  if (haproxy === undefined) {
    return { skipped: "haproxy is not installed (apt-get install haproxy)" };
  }
  const port = freePort();
  const configFile = `${tempDir}/haproxy.cfg`;
  await Deno.writeTextFile(configFile, haproxyConfig(port, backendPort));
  const child = start("haproxy", haproxy, ["-f", configFile, "-db"]);
  await listening(child, port);
  return { variant: proxy("haproxy", port, child) };
}

function proxy(name: VariantName, port: number, child: Child): Variant {
  return { name, port, pid: child.pid, stop: () => child.stop() };
}

/** Waits until `port` accepts, or fails with the child's output if it exits first. */
async function listening(child: Child, port: number): Promise<void> {
  const exited = child.exited.then((status) => {
    throw new Error(`exited with code ${status.code}`);
  });
  await Promise.race([waitForPort(port, STARTUP_TIMEOUT_MS), exited]).catch((error) => {
    throw new Error(
      `${child.name} does not listen on ${port}: ${error.message}\n${tail(child.lines)}`,
    );
  });
}
