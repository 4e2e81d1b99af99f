/**
 * The variants: ways for a client to reach a server — directly, or through
 * sleepingd, socat, haproxy, systemd-socket-proxyd or the seed's design,
 * each listening on a port of its own in front of that server.
 *
 * @module
 */

import type { VariantName } from "./args.ts";
import type { Reach } from "./measure.ts";
import {
  type Child,
  findProgram,
  freePort,
  notInstalled,
  start,
  throwIfInterrupted,
  waitForListener,
} from "./processes.ts";

/** How long a proxy may take to listen before the bench gives up on it. */
const STARTUP_TIMEOUT_MS = 30_000;
/** Connections haproxy and systemd-socket-proxyd accept at once unless told otherwise. */
const DEFAULT_MAX_CONNECTIONS = 4096;
/** Where Debian and others keep systemd-socket-proxyd, which is not on PATH. */
const SYSTEMD_DIRS = ["/lib/systemd", "/usr/lib/systemd"];

/** A variant ready to measure: connect to 127.0.0.1:`port` to reach the server. */
export interface Variant {
  /** Which variant this is. */
  name: VariantName;
  /** The port the client connects to. */
  port: number;
  /** The proxy process, whose CPU time and memory are reported; none for `direct`. */
  pid?: number;
  /** Where its clients run and connect, when not on 127.0.0.1 here (the kernel part). */
  reach?: Reach;
  /** Stops the proxy (nothing for `direct`). */
  stop(): Promise<void>;
}

/** Where a variant goes: the server's port, and a temp dir for its files. */
export interface VariantContext {
  /** The port of the server on 127.0.0.1. */
  backendPort: number;
  /** A directory the bench removes when it ends; each variant makes a folder of its own in it. */
  tempDir: string;
  /** Connections haproxy and systemd-socket-proxyd accept at once (default 4096). */
  maxConnections?: number;
}

/** What {@linkcode startVariant} gives back: a running variant, or why it was skipped. */
export type Started = { variant: Variant } | { skipped: string };

/**
 * Starts the proxy of `name` in front of the server, its files in a new
 * folder of its own, and waits until it listens.
 */
export async function startVariant(name: VariantName, context: VariantContext): Promise<Started> {
  const tempDir = await Deno.makeTempDir({ dir: context.tempDir, prefix: `${name}-` });
  return await launch(name, { ...context, tempDir });
}

/** Starts the proxy of `name` with `context.tempDir` as its own folder. */
async function launch(name: VariantName, context: VariantContext): Promise<Started> {
  switch (name) {
    case "direct":
      return { variant: { name, port: context.backendPort, stop: () => Promise.resolve() } };
    case "sleepingd":
      return { variant: await startSleepingd(context) };
    case "sleepingd-kernel":
      return { skipped: "the kernel path forwards no loopback client: see the kernel part" };
    case "socat":
      return await startSocat(context);
    case "haproxy":
      return await startHaproxy(context);
    case "systemd-socket-proxyd":
      return await startSystemdProxyd(context);
    case "seed":
      return await startSeed(context);
  }
}

/**
 * Starts every variant of `names` in front of the server on `backendPort`
 * with `launch` (the TCP variants by default), each in a folder of its own
 * under `tempDir`, and warms it up with `warmUp`. Returns those that run, and
 * why the others are skipped.
 */
export async function startVariants(
  names: readonly VariantName[],
  context: VariantContext,
  warmUp: (port: number) => Promise<void>,
  launch: (name: VariantName, context: VariantContext) => Promise<Started> = startVariant,
): Promise<{ variants: Variant[]; skipped: string[] }> {
  const variants: Variant[] = [];
  const skipped: string[] = [];
  for (const name of names) {
    throwIfInterrupted();
    let started: Started | undefined;
    try {
      started = await launch(name, context);
      if ("skipped" in started) {
        skipped.push(`${name}: ${started.skipped}`);
        continue;
      }
      await warmUp(started.variant.port);
      variants.push(started.variant);
    } catch (error) {
      throwIfInterrupted();
      if (started && "variant" in started) await started.variant.stop();
      skipped.push(`${name}: it fails to start or to warm up: ${(error as Error).message}`);
    }
  }
  return { variants, skipped };
}

/** Stops every variant of `variants`. */
export async function stopVariants(variants: Variant[]): Promise<void> {
  await Promise.all(variants.map((variant) => variant.stop()));
}

/** Lines for the global section of every sleepingd the bench runs (`--sleepingd`). */
let sleepingdSettings: readonly string[] = [];

/** Sets the lines `--sleepingd` adds to the global section of every sleepingd the bench runs. */
export function setSleepingdSettings(settings: readonly string[]): void {
  sleepingdSettings = settings;
}

/**
 * The real CLI, `deno run -A src/main.ts -f CONF run`, with the configuration
 * `lines` (after the `--sleepingd` settings), in `dir` (which holds the file
 * and VARRUN_PATH, unless `lines` say otherwise); resolves once it logs that
 * it is running.
 */
export async function startSleepingdWith(
  lines: string[],
  dir: string,
  prefix: string[] = [],
): Promise<Child> {
  const configFile = `${dir}/sleepingd.conf`;
  await Deno.writeTextFile(
    configFile,
    [
      `VARRUN_PATH=${dir}/run`,
      `STATE_PATH=${dir}/state`,
      "SHUTDOWN_GRACE=1",
      ...sleepingdSettings,
      ...lines,
      "",
    ].join("\n"),
  );
  await Deno.mkdir(`${dir}/run`, { recursive: true });
  const main = new URL("../src/main.ts", import.meta.url).pathname;
  const [command, ...args] = [
    ...prefix,
    Deno.execPath(),
    "run",
    "-A",
    main,
    "-f",
    configFile,
    "run",
  ];
  const child = start("sleepingd", command, args, dir);
  await child.waitForLine((line) => line.includes("is running"), STARTUP_TIMEOUT_MS);
  return child;
}

/** sleepingd with one service whose START_CMD names the server, which is already up. */
async function startSleepingd({ backendPort, tempDir }: VariantContext): Promise<Variant> {
  const port = freePort();
  const child = await startSleepingdWith([
    "[bench]",
    `PORT=${port}`,
    "LISTEN_ADDRESS=127.0.0.1",
    `START_CMD="echo '127.0.0.1 ${backendPort}'"`,
  ], tempDir);
  return proxy("sleepingd", port, child);
}

/**
 * `socat TCP-LISTEN:P,bind=127.0.0.1,fork,reuseaddr,backlog=128 TCP:127.0.0.1:B`.
 * `backlog=128` is the one change from socat's defaults: with its default of 5,
 * 64 connections at once overflow the accept queue and some are reset.
 */
async function startSocat({ backendPort }: VariantContext): Promise<Started> {
  const socat = findProgram("socat");
  if (socat === undefined) return { skipped: notInstalled("socat", "socat") };
  const port = freePort();
  const child = start("socat", socat, [
    `TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr,backlog=128`,
    `TCP:127.0.0.1:${backendPort}`,
  ]);
  await waitForListener(child, port, STARTUP_TIMEOUT_MS);
  return { variant: proxy("socat", port, child) };
}

/**
 * The seed's design, the bash+socat tool sleepingd rewrites: socat forks for
 * every connection and runs a bash script that execs a second socat to the
 * server — a bash and two socat processes per connection:
 * `socat TCP-LISTEN:P,bind=127.0.0.1,fork,reuseaddr,backlog=128 EXEC:SCRIPT`.
 */
async function startSeed({ backendPort, tempDir }: VariantContext): Promise<Started> {
  const socat = findProgram("socat");
  if (socat === undefined) return { skipped: notInstalled("socat", "socat") };
  const bash = findProgram("bash");
  if (bash === undefined) return { skipped: notInstalled("bash", "bash") };
  const script = `${tempDir}/connection.sh`;
  await Deno.writeTextFile(script, `#!${bash}\nexec ${socat} - TCP:127.0.0.1:${backendPort}\n`);
  await Deno.chmod(script, 0o755);
  const port = freePort();
  const child = start("seed", socat, [
    `TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr,backlog=128`,
    `EXEC:${script}`,
  ]);
  await waitForListener(child, port, STARTUP_TIMEOUT_MS);
  return { variant: proxy("seed", port, child) };
}

/** The haproxy configuration of the bench: one TCP listener, one thread. */
export function haproxyConfig(
  port: number,
  backendPort: number,
  maxConnections = DEFAULT_MAX_CONNECTIONS,
  addresses: { listen: string; backend: string } = { listen: "127.0.0.1", backend: "127.0.0.1" },
): string {
  return `global
  nbthread 1
  maxconn ${maxConnections}

defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s

listen bench
  bind ${addresses.listen}:${port}
  server backend ${addresses.backend}:${backendPort}
`;
}

/** `haproxy -f CONF -db` with {@linkcode haproxyConfig}. */
async function startHaproxy(
  { backendPort, tempDir, maxConnections }: VariantContext,
): Promise<Started> {
  const haproxy = findProgram("haproxy");
  if (haproxy === undefined) return { skipped: notInstalled("haproxy", "haproxy") };
  const port = freePort();
  const configFile = `${tempDir}/haproxy.cfg`;
  await Deno.writeTextFile(configFile, haproxyConfig(port, backendPort, maxConnections));
  const child = start("haproxy", haproxy, ["-f", configFile, "-db"]);
  await waitForListener(child, port, STARTUP_TIMEOUT_MS);
  return { variant: proxy("haproxy", port, child) };
}

/**
 * `systemd-socket-activate -l 127.0.0.1:P systemd-socket-proxyd -c MAX 127.0.0.1:B`,
 * the way systemd runs it (a socket unit and a service): the first connection
 * execs systemd-socket-proxyd in the same process, which forwards it and all
 * later ones with splice(). systemd-socket-activate binds without
 * SO_REUSEADDR, so a port that loopback connections left in TIME-WAIT fails:
 * another port is tried.
 */
async function startSystemdProxyd(
  { backendPort, maxConnections = DEFAULT_MAX_CONNECTIONS }: VariantContext,
): Promise<Started> {
  const activate = findProgram("systemd-socket-activate");
  const proxyd = SYSTEMD_DIRS.map((dir) => `${dir}/systemd-socket-proxyd`).find(exists);
  if (activate === undefined || proxyd === undefined) {
    return { skipped: notInstalled("systemd-socket-proxyd", "systemd") };
  }
  for (let attempt = 1;; attempt++) {
    const port = freePort();
    const child = start("systemd-socket-proxyd", activate, [
      ...["-l", `127.0.0.1:${port}`, proxyd, "-c", `${maxConnections}`],
      `127.0.0.1:${backendPort}`,
    ]);
    try {
      await waitForListener(child, port, STARTUP_TIMEOUT_MS);
      return { variant: proxy("systemd-socket-proxyd", port, child) };
    } catch (error) {
      const inUse = child.lines.some((line) => line.includes("Address already in use"));
      if (!inUse || attempt === 5) throw error;
    }
  }
}

function proxy(name: VariantName, port: number, child: Child): Variant {
  return { name, port, pid: child.pid, stop: () => child.stop() };
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
