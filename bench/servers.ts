/**
 * The servers the variants forward to, each started by the bench on a free
 * port of 127.0.0.1 with its files in the bench's temp dir: the bench's own
 * echo/sink backend, iperf3, redis-server and nginx.
 *
 * @module
 */

import {
  type Child,
  findProgram,
  freePort,
  notInstalled,
  start,
  waitForListener,
} from "./processes.ts";

/** How long a server may take to listen before the bench gives up on it. */
const STARTUP_TIMEOUT_MS = 30_000;
/** Size of the static file nginx serves: a small page. */
export const PAGE_BYTES = 1024;

/** A server ready for clients on 127.0.0.1:`port`. */
export interface Server {
  /** What it is, in messages. */
  name: string;
  /** Its port on 127.0.0.1. */
  port: number;
  /** Its process id, for its CPU time. */
  pid: number;
  /** Its last lines of output, for an error message. */
  lines: string[];
  /** Whether it has exited: every number measured after that is void. */
  gone(): boolean;
  /** Stops it. */
  stop(): Promise<void>;
}

/** A started server, or the line saying what to install. */
export type ServerStarted = { server: Server } | { missing: string };

/** Where a server runs and listens: 127.0.0.1 here, or a host of the kernel part's network. */
export interface Place {
  /** The address it listens on. */
  address: string;
  /** What runs it on its host: `ip netns exec NS`, or nothing here. */
  prefix: string[];
}

/** 127.0.0.1 on this host. */
export const HERE: Place = { address: "127.0.0.1", prefix: [] };

/** Starts `program args` at `place`, as {@linkcode start} does. */
function startAt(place: Place, name: string, program: string, args: string[], cwd?: string): Child {
  const [command, ...rest] = [...place.prefix, program, ...args];
  return start(name, command, rest, cwd);
}

function server(child: Child, port: number): Server {
  let exited = false;
  child.exited.then(() => exited = true);
  return {
    name: child.name,
    port,
    pid: child.pid,
    lines: child.lines,
    gone: () => exited,
    stop: () => child.stop(),
  };
}

/** Starts the bench's echo/sink backend (`backend.ts`) in its own process, once it listens. */
export async function startEchoBackend(): Promise<Server> {
  const script = new URL("./backend.ts", import.meta.url).pathname;
  const child = start("backend", Deno.execPath(), ["run", "--allow-net", script]);
  const line = await child.waitForLine((line) => /^\d+$/.test(line), STARTUP_TIMEOUT_MS);
  return server(child, Number(line));
}

/** `iperf3 -s -B 127.0.0.1 -p B`: one test at a time, for as long as the bench runs. */
export async function startIperf3Server(place: Place = HERE): Promise<ServerStarted> {
  const iperf3 = findProgram("iperf3");
  if (iperf3 === undefined) return { missing: notInstalled("iperf3", "iperf3") };
  const port = freePort();
  const child = startAt(place, "iperf3 -s", iperf3, ["-s", "-B", place.address, "-p", `${port}`]);
  await waitForListener(child, port, STARTUP_TIMEOUT_MS, place.address);
  return { server: server(child, port) };
}

/** `redis-server` without persistence, in the foreground, its files in `dir`. */
export async function startRedis(dir: string, place: Place = HERE): Promise<ServerStarted> {
  const redis = findProgram("redis-server");
  if (redis === undefined) return { missing: notInstalled("redis-server", "redis-server") };
  const port = freePort();
  const child = startAt(place, "redis-server", redis, [
    ...["--port", `${port}`, "--bind", place.address, "--save", "", "--appendonly", "no"],
    ...["--daemonize", "no", "--dir", dir, "--logfile", "", "--protected-mode", "no"],
  ]);
  await waitForListener(child, port, STARTUP_TIMEOUT_MS, place.address);
  return { server: server(child, port) };
}

/** The nginx configuration of the bench: one process, `PAGE_BYTES` page, no access log. */
function nginxConfig(port: number, dir: string, address: string): string {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;

events {
  worker_connections 8192;
}

http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  default_type text/html;

  server {
    listen ${address}:${port};
    root ${dir}/www;
  }
}
`;
}

/** nginx in the foreground as one process with {@linkcode nginxConfig}, its files in `dir`. */
export async function startNginx(dir: string, place: Place = HERE): Promise<ServerStarted> {
  const nginx = findProgram("nginx");
  if (nginx === undefined) return { missing: notInstalled("nginx", "nginx") };
  const port = freePort();
  await Deno.mkdir(`${dir}/www`, { recursive: true });
  await Deno.writeTextFile(`${dir}/www/index.html`, "x".repeat(PAGE_BYTES));
  await Deno.writeTextFile(`${dir}/nginx.conf`, nginxConfig(port, dir, place.address));
  const child = startAt(place, "nginx", nginx, [
    "-p",
    dir,
    "-c",
    `${dir}/nginx.conf`,
    "-e",
    `${dir}/error.log`,
  ]);
  await waitForListener(child, port, STARTUP_TIMEOUT_MS, place.address);
  return { server: server(child, port) };
}
