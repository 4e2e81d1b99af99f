/**
 * The table of every configuration key: its kind, default and documentation.
 *
 * Adding a key means adding a row here, reading it in `validate.ts` (its check in its
 * group's module of `validate/`) and documenting it in the shipped `sleepingd.conf` with the
 * same text as `doc` (a test keeps the two in step). Past 300 lines as a table: one row per
 * key, its documentation with it, in the shipped file's order (which "did you mean" breaks
 * ties by), so one table rather than one per feature.
 *
 * @module
 */

/**
 * How a key's value is read.
 *
 * - `boolean`: yes/no/true/false/1/0, any case
 * - `port`: an integer from 1 to 65535
 * - `seconds`: a number of seconds, 0 or more, decimals allowed
 * - `command`: shell text, unset when blank or equal to the key's default (`false`/`true`)
 * - `text`: any text, unset when blank
 * - `addresses`: a space-separated list
 * - `count`: a whole number, 0 or more; unset when blank
 * - `rules`: IP addresses and CIDR blocks, separated by spaces or commas
 * - `choice`: one of the key's `choices`
 * - `cost`: an amount, 0 or more, then an optional unit: `0.12 USD`
 * - `ports`: a space-separated list of `LISTEN[:BACKEND][/tcp|/udp]`
 * - `schedule`: windows of a week, `DAYS HH:MM-HH:MM`, separated by `;`
 * - `hostnames`: a space-separated list of names, `*.name` wildcards, or `*`
 * - `size`: bytes, or with a unit K, M or G (powers of 1024): `4M`
 * - `bytes`: a `size` more than 0: `64M`
 */
export type KeyKind =
  | "boolean"
  | "port"
  | "seconds"
  | "command"
  | "text"
  | "addresses"
  | "count"
  | "rules"
  | "choice"
  | "cost"
  | "ports"
  | "schedule"
  | "hostnames"
  | "size"
  | "bytes";

/** One configuration key. */
export interface KeyDefinition {
  /** The key as written in the file, e.g. `START_CMD`. */
  name: string;
  /** How its value is read. */
  kind: KeyKind;
  /** The value used when the key is not set or is blank, as it would be written; "" is none. */
  default: string;
  /** The default in the global section, when it differs from {@linkcode default}. */
  globalDefault?: string;
  /** Read only from the global section; set in a service section it is ignored with a warning. */
  globalOnly?: boolean;
  /** Not inherited from the global section: each section has its own value. */
  perSection?: boolean;
  /** The values a `choice` key takes. */
  choices?: readonly string[];
  /** What it does, with units; the same text documents it in the shipped `sleepingd.conf`. */
  doc: string;
}

/** Every key, in the order the shipped `sleepingd.conf` documents them. */
export const KEYS: readonly KeyDefinition[] = [
  {
    name: "ACTIVE",
    kind: "boolean",
    default: "yes",
    globalDefault: "no",
    perSection: true,
    doc: "Whether sleepingd listens for the service: yes or no (also true/false, 1/0). " +
      "Sections are active unless they say no; the global section is a service of its own " +
      "(named global) only with ACTIVE=yes and a PORT.",
  },
  {
    name: "PORT",
    kind: "port",
    default: "",
    perSection: true,
    doc: "Port sleepingd listens on for the service (not the backend's port): TCP, or UDP " +
      "with PROTOCOL=udp. Required in every active section; not inherited from the global " +
      "section.",
  },
  {
    name: "PROTOCOL",
    kind: "choice",
    default: "tcp",
    choices: ["tcp", "udp"],
    doc: "The protocol of PORT: tcp, or udp (game servers, DNS, WireGuard, syslog). With udp, " +
      "the first datagram from any client wakes the service; datagrams that arrive meanwhile " +
      "wait (up to 1024 datagrams or 1 MiB per service; past that they are dropped and " +
      "counted) and go to the backend in order once it is ready, which READY_CMD says when " +
      "set, else START_CMD exiting 0.",
  },
  {
    name: "MORE_PORTS",
    kind: "ports",
    default: "",
    perSection: true,
    doc: "More ports of the same backend, space separated, each LISTEN[:BACKEND][/tcp|/udp] " +
      "(tcp when not said; BACKEND is LISTEN when not said), e.g. 8443:443 27015/udp. They " +
      "go to the host START_CMD prints, at BACKEND. One life cycle: a client on any port " +
      "wakes the service once, traffic on any port keeps it awake, one STOP_CMD stops it. " +
      "Not with ROUTE_PER_CONNECTION. Not inherited from the global section.",
  },
  {
    name: "UDP_FLOW_TIMEOUT",
    kind: "seconds",
    default: "60",
    doc: "Seconds a UDP client's flow (its own socket towards the backend, so that replies " +
      "find it) lasts without a datagram either way. The service is idle when no datagram " +
      "went either way for IDLE_TIME, whatever the flows.",
  },
  {
    name: "LISTEN_ADDRESS",
    kind: "addresses",
    default: "::",
    doc: "Addresses sleepingd listens on, separated by spaces. " +
      ":: means every IPv6 and IPv4 address (0.0.0.0 where there is no IPv6).",
  },
  {
    name: "CHECK_CMD",
    kind: "command",
    default: "false",
    doc: "Command that tells whether the backend is already up: exit 0 means up, and a first " +
      'stdout line "IP PORT" names the target. Runs before START_CMD; false or blank means no ' +
      "check.",
  },
  {
    name: "START_CMD",
    kind: "command",
    default: "false",
    doc: 'Command that starts the backend and prints its target as "IP PORT" on the first stdout ' +
      "line. Runs when a client connects and the backend is not up; false or blank means none.",
  },
  {
    name: "READY_CMD",
    kind: "command",
    default: "",
    doc: "Command run after START_CMD until it exits 0, for backends that accept TCP before " +
      "they can serve (e.g. pg_isready). Blank means none.",
  },
  {
    name: "STOP_CMD",
    kind: "command",
    default: "false",
    doc: "Command that stops the backend, run when it has been idle for IDLE_TIME, when " +
      "sleepingd stops, and after a wake that failed once START_CMD had run (so nothing is " +
      "left half-started). It should return once the backend is down, its port closed: the " +
      "next client wakes it at once, and must not reach the one on its way out. It should " +
      "also succeed when the backend is already down: after a crash of sleepingd during " +
      "STOP_CMD, the next start runs it again. false or blank means none.",
  },
  {
    name: "IDLE_CMD",
    kind: "command",
    default: "true",
    doc: "Command that tells whether the backend is idle: exit 0 means idle. It only counts " +
      "when no client is connected; true or blank means no condition besides that.",
  },
  {
    name: "EXEC_CMD_TIMEOUT",
    kind: "seconds",
    default: "",
    doc: "Seconds any command may run before it is killed, unless its own timeout is set " +
      "(READY_CMD has none of its own). Blank or 0 means no limit.",
  },
  {
    name: "START_CMD_TIMEOUT",
    kind: "seconds",
    default: "",
    doc: "Seconds START_CMD may run before it is killed. Blank means EXEC_CMD_TIMEOUT; 0 means " +
      "no limit.",
  },
  {
    name: "STOP_CMD_TIMEOUT",
    kind: "seconds",
    default: "",
    doc: "Seconds STOP_CMD may run before it is killed. Blank means EXEC_CMD_TIMEOUT; 0 means " +
      "no limit.",
  },
  {
    name: "CHECK_CMD_TIMEOUT",
    kind: "seconds",
    default: "",
    doc: "Seconds CHECK_CMD may run before it is killed. Blank means EXEC_CMD_TIMEOUT; 0 means " +
      "no limit.",
  },
  {
    name: "IDLE_CMD_TIMEOUT",
    kind: "seconds",
    default: "",
    doc: "Seconds IDLE_CMD may run before it is killed. Blank means EXEC_CMD_TIMEOUT; 0 means " +
      "no limit.",
  },
  {
    name: "READY_TIMEOUT",
    kind: "seconds",
    default: "60",
    doc: "Seconds from the end of START_CMD until the backend must accept connections (and " +
      "READY_CMD succeed); waiting clients are closed after that.",
  },
  {
    name: "CONNECT_TIMEOUT",
    kind: "seconds",
    default: "5",
    doc: "Seconds one connection to the backend may take to be accepted, more than 0. A " +
      "timeout is not a refusal: it fails that client alone and the service stays awake, " +
      "unless CHECK_CMD says the backend is down.",
  },
  {
    name: "USER",
    kind: "text",
    default: "",
    doc: "User that runs the commands. Blank means the user sleepingd runs as. Commands run " +
      "as USER start in its home folder (or /) with an environment of their own: PATH, " +
      "HOME, USER, LOGNAME, LANG, the SLEEPINGD_ variables and those PASS_ENV names, nothing " +
      "else of sleepingd's (no secret it was given, no file it has open).",
  },
  {
    name: "PASS_ENV",
    kind: "addresses",
    default: "",
    doc: "Variables of sleepingd's own environment that commands run as USER get too, by " +
      "name, separated by spaces, e.g. DOCKER_HOST AWS_PROFILE. Without USER, commands get " +
      "sleepingd's whole environment. Blank means none.",
  },
  {
    name: "IDLE_TIME",
    kind: "seconds",
    default: "",
    doc: "Seconds the backend must be idle in a row before STOP_CMD runs. Blank or 0 means it " +
      "is never stopped for being idle.",
  },
  {
    name: "IDLE_CHECK_INTERVAL",
    kind: "seconds",
    default: "",
    doc: "Seconds between two idle checks, each running IDLE_CMD. Blank or 0 means no checks, " +
      "so the backend is never stopped for being idle.",
  },
  {
    name: "MIN_AWAKE_TIME",
    kind: "seconds",
    default: "",
    doc: "Seconds a woken service stays awake at least, idle or not: for backends whose start " +
      "costs more than running a while longer. Blank or 0 means no minimum.",
  },
  {
    name: "DEPENDS_ON",
    kind: "text",
    default: "",
    perSection: true,
    doc: "Services this one needs, by section name, separated by commas, e.g. Database, " +
      "Cache: waking this service first wakes each of them, in that order, each until it is " +
      "ready; none of them is stopped for being idle while this service is not asleep, so " +
      "they stop after it. Each must be an active service without ROUTE_PER_CONNECTION " +
      "(which has no one backend to wake first); no cycle. Not inherited from the global " +
      "section.",
  },
  {
    name: "ON_EVENT_CMD",
    kind: "command",
    default: "",
    doc: "Command run on each event of the service: wake (a wake began), ready, wake_failed, " +
      "idle_stop, stop (the backend stopped), with SLEEPINGD_EVENT, SLEEPINGD_SERVICE, " +
      "SLEEPINGD_REASON, SLEEPINGD_TIME and, when known, SLEEPINGD_TARGET, SLEEPINGD_SECONDS " +
      "and SLEEPINGD_STOP_REASON in its environment. Events go out in order, each tried up " +
      "to 3 times (exit 0 is success) within EXEC_CMD_TIMEOUT or else 10 seconds a try; a " +
      "failure is logged; the life cycle never waits for them. Blank means none.",
  },
  {
    name: "WEBHOOK_URL",
    kind: "text",
    default: "",
    doc: "http:// or https:// URL that each event of the service is POSTed to as JSON " +
      "(event, service, time, reason, target, seconds, stopReason), the same way as " +
      "ON_EVENT_CMD: in order, up to 3 tries of 5 seconds each (a 2xx answer is success), " +
      "failures logged, the life cycle never waiting. Blank means none.",
  },
  {
    name: "KEEP_AWAKE",
    kind: "schedule",
    default: "",
    doc: "Windows of the week when the service stays awake, separated by ;, each DAYS " +
      "HH:MM-HH:MM, e.g. Mon-Fri 08:00-18:00; Sat 10:00-14:00 (days: Mon..Sun, ranges, " +
      "lists, daily; an end before the start ends the next day, an end equal to it makes 24 " +
      "hours, so daily 08:00-08:00 is always open). At a window's start sleepingd wakes the " +
      "service, and tries again within the window if that fails; inside one it is never " +
      "stopped for being idle; outside, as usual. Times are in TIME_ZONE. Blank means no " +
      "windows.",
  },
  {
    name: "TIME_ZONE",
    kind: "text",
    default: "",
    doc: "The time zone of KEEP_AWAKE, e.g. Europe/Paris or UTC. Blank means the system's.",
  },
  {
    name: "ROUTE_PER_CONNECTION",
    kind: "boolean",
    default: "no",
    doc: "Whether CHECK_CMD/START_CMD run for every connection, which goes to the target " +
      "printed for it (a pool of backends), instead of once per wake.",
  },
  {
    name: "ALLOW",
    kind: "rules",
    default: "",
    doc: "Client addresses and CIDR blocks that may connect, IPv4 or IPv6, separated by spaces " +
      "or commas (an IPv4 client matches its IPv4 rules on an IPv6 listener too). Checked " +
      "before anything else: a refused client is closed at once and wakes nothing. With " +
      "PROTOCOL=udp it is no authentication: a datagram's source address can be forged, so " +
      "anyone may wake the service with an allowed address (the replies go to that address). " +
      "Blank means every client.",
  },
  {
    name: "DENY",
    kind: "rules",
    default: "",
    doc: "Client addresses and CIDR blocks that may not connect, written as for ALLOW. DENY " +
      "wins over ALLOW. Blank means none.",
  },
  {
    name: "MAX_CONNECTIONS",
    kind: "count",
    default: "",
    doc: "Connections the service may hold at once, those waiting for a wake included; more " +
      "are refused at once. Blank or 0 means no limit of its own.",
  },
  {
    name: "MAX_CONNECTIONS_PER_SOURCE",
    kind: "count",
    default: "",
    doc: "Connections one client address may hold at once to the service; more are refused " +
      "at once. An IPv6 client counts by its /64, as one host or site may use any address of " +
      "it. Blank or 0 means no limit.",
  },
  {
    name: "HOLD_TIMEOUT",
    kind: "seconds",
    default: "300",
    doc: "Seconds a client may wait for a wake (with WAKE_ON=data, for its own first byte " +
      "too) before it is closed; the wake itself goes on. A client that leaves while it waits " +
      "is dropped at once. 0 means no limit.",
  },
  {
    name: "WAKE_ON",
    kind: "choice",
    default: "connect",
    choices: ["connect", "data"],
    doc: "What wakes the service: connect (a connection) or data (the first byte a " +
      "connection sends, so that a port scan or a probe that connects and closes wakes " +
      "nothing). data is for protocols where the client speaks first: HTTP, SSH, " +
      "PostgreSQL, Redis. The bytes held meanwhile reach the backend first, intact. Any " +
      "byte wakes it, so a scanner that speaks (service detection, such as nmap -sV) still " +
      "does.",
  },
  {
    name: "HOSTNAMES",
    kind: "hostnames",
    default: "",
    perSection: true,
    doc: "Names the service answers to, separated by spaces, so that several services can " +
      "share one LISTEN_ADDRESS and PORT: each connection goes to the service whose name its " +
      "TLS ClientHello (SNI) or HTTP/1.x Host header carries (TLS is not terminated: the " +
      "backend gets every byte). *.example.com takes every name under example.com, at any " +
      "depth; * alone takes the names no other service takes and clients that send none. A " +
      "name wins over a wildcard, a longer wildcard over a shorter one. Without a * on the " +
      "port, an unknown name gets 421 over HTTP and a closed connection over TLS. Every " +
      "service on a shared port must set it, with the same LISTEN_ADDRESS; no name twice. " +
      "Implies WAKE_ON=data. Blank means the port is the service's own. Not inherited from " +
      "the global section.",
  },
  {
    name: "WAITING_PAGE",
    kind: "boolean",
    default: "no",
    doc: "Whether a browser waiting for the wake gets a page from sleepingd after " +
      "WAITING_PAGE_AFTER seconds: a GET or HEAD over plain HTTP that accepts text/html " +
      "is answered 503 with Retry-After and a page saying which service wakes, for how long " +
      "so far and how long its wakes usually take; the page reloads itself until the real " +
      "one comes. After a failed wake, browsers get its error for 30 seconds instead of " +
      "waking it again. Other clients (APIs, curl, websockets) wait as usual. For HTTP " +
      "services only (behind a TLS-terminating proxy, or on a trusted network): sleepingd " +
      "reads each request head first (see HOSTNAME_TIMEOUT), as on a port shared by name. " +
      "Implies WAKE_ON=data.",
  },
  {
    name: "WAITING_PAGE_AFTER",
    kind: "seconds",
    default: "2",
    doc: "Seconds a browser waits for the wake before it gets the waiting page (WAITING_PAGE).",
  },
  {
    name: "WAITING_PAGE_FILE",
    kind: "text",
    default: "",
    doc: "HTML file of your own for the waiting page, read when the configuration is (at most " +
      "64 KiB, on a path only root and sleepingd's user can change), with placeholders " +
      "replaced by their values, HTML-escaped: {{service}}, " +
      "{{host}}, {{state}} (waking or failed), {{title}}, {{message}}, {{waited}}, " +
      "{{typical}}, {{progress}} (percent of the typical wake), {{retry}}, {{error}}, and " +
      "{{nonce}}, which an inline <style> or <script> needs under the page's " +
      "Content-Security-Policy (nothing may load from elsewhere). Blank means sleepingd's own " +
      "page, light or dark as the browser prefers.",
  },
  {
    name: "MAX_WAKES_PER_HOUR",
    kind: "count",
    default: "",
    doc: "Wakes the service may begin in any hour; past it, a client that would wake it is " +
      "refused, with the reason in the log. Blank or 0 means no limit.",
  },
  {
    name: "PROXY_PROTOCOL",
    kind: "choice",
    default: "",
    choices: ["v1", "v2"],
    doc: "Send the client's address to the backend before its bytes, with the PROXY " +
      "protocol: v1 (text) or v2 (binary). The backend must expect it (nginx: listen ... " +
      "proxy_protocol; haproxy: accept-proxy). Blank means off.",
  },
  {
    name: "FORWARD",
    kind: "choice",
    default: "proxy",
    choices: ["proxy", "kernel"],
    doc: "Who carries the connections of an awake service: proxy (sleepingd copies the bytes) " +
      "or kernel (Linux only: while the service is awake, rules in sleepingd's own nftables " +
      "table forward new connections and datagrams from other hosts and from this host's own " +
      "addresses straight to the backend, and sleepingd only watches them through conntrack " +
      "and counters; loopback clients stay on the proxy). Asleep, starting or stopping, " +
      "sleepingd holds and wakes as with proxy. kernel needs root or CAP_NET_ADMIN, nft " +
      "(nftables) and conntrack; it does not take PROXY_PROTOCOL, ROUTE_PER_CONNECTION, " +
      "HOSTNAMES or WAITING_PAGE.",
  },
  {
    name: "MASQUERADE",
    kind: "choice",
    default: "auto",
    choices: ["auto", "yes", "no"],
    doc: "With FORWARD=kernel: whether the backend sees this host's address (yes) or the " +
      "client's own (no), which needs the backend's replies to come back through this host. " +
      "auto: no when the backend is on a network this host is directly attached to (a VM or " +
      "container bridge, where this host is normally the backend's gateway), else yes.",
  },
  {
    name: "COST_PER_HOUR",
    kind: "cost",
    default: "",
    doc: "What an hour of the backend awake costs, with an optional unit, e.g. 0.12 USD: the " +
      "dashboard shows what sleeping saved (hours asleep times this). Blank means not shown.",
  },
  {
    name: "MAX_WAKES_PER_HOUR_TOTAL",
    kind: "count",
    default: "",
    globalOnly: true,
    doc: "Wakes all services together may begin in any hour; past it, a client that would " +
      "wake one is refused. Blank or 0 means no limit. Global section only.",
  },
  {
    name: "MAX_CONNECTIONS_TOTAL",
    kind: "count",
    default: "",
    globalOnly: true,
    doc: "Connections all services together may hold at once, two file descriptors each; " +
      "more are refused at once. Blank or 0 means their share of the open file limit: what " +
      "it leaves after the daemon's own files, its reserve and the shares of the control " +
      "socket, the HTTP server and UDP flows (sleepingd raises its soft limit to the hard " +
      "one at start). Global section only.",
  },
  {
    name: "MAX_UDP_FLOWS_TOTAL",
    kind: "count",
    default: "",
    globalOnly: true,
    doc: "UDP flows all services together may hold at once, a file descriptor each; a new " +
      "client past it is refused (its datagrams dropped and counted) while the flows there " +
      "go on. Blank or 0 means a quarter of what the open file limit leaves, at most 1024, " +
      "when a service has a UDP port. Global section only.",
  },
  {
    name: "MAX_HELD_BYTES_TOTAL",
    kind: "bytes",
    default: "",
    globalOnly: true,
    doc: "Memory all services together may keep for clients, e.g. 64M: the bytes of clients " +
      "held while a backend wakes or read on a port shared by name to find their name, and UDP " +
      "datagrams waiting for a wake or for their socket, each counted by the memory that keeps " +
      "it. Past it, a client that would be held or read is refused, a held client is read no " +
      "further (the kernel keeps the rest; nothing is lost) and a datagram is dropped and " +
      "counted. Blank means 64M. Global section only.",
  },
  {
    name: "HOSTNAME_TIMEOUT",
    kind: "seconds",
    default: "10",
    globalOnly: true,
    doc: "Seconds a client of a port shared by name (HOSTNAMES) or of a service with a " +
      "WAITING_PAGE has to send its TLS ClientHello or HTTP request head, of which sleepingd " +
      "reads at most 32 KiB to find the name; one that sends less is closed and wakes " +
      "nothing. Global section only.",
  },
  {
    name: "VARRUN_PATH",
    kind: "text",
    default: "/var/run/sleepingd",
    globalOnly: true,
    doc: "Folder for the pidfile, the state, the control socket and the log of sleepingd " +
      "start. Blank, for a user other than root who cannot write the default: " +
      "$XDG_RUNTIME_DIR/sleepingd (else ~/.local/state/sleepingd/run). Global section only.",
  },
  {
    name: "STATE_PATH",
    kind: "text",
    default: "/var/lib/sleepingd",
    globalOnly: true,
    doc: "Folder for what outlives a restart: the history of every service's wakes and stops " +
      "(events.jsonl, at most 8 MiB: past 4 MiB it becomes events.jsonl.1, replacing the " +
      "older one), which the dashboard draws. Blank, for a user other than root who cannot " +
      "write the default: ~/.local/state/sleepingd ($XDG_STATE_HOME/sleepingd when set). " +
      "Global section only.",
  },
  {
    name: "SHUTDOWN_GRACE",
    kind: "seconds",
    default: "10",
    globalOnly: true,
    doc: "Seconds open connections may go on once sleepingd is asked to stop, before they are " +
      "cut. Global section only.",
  },
  {
    name: "LOG_FORMAT",
    kind: "text",
    default: "text",
    globalOnly: true,
    doc: "How log lines are written: text (for people) or json (one JSON object a line, for " +
      "log collectors). The --log-format option overrides it. Global section only.",
  },
  {
    name: "LOG_FILE",
    kind: "text",
    default: "",
    globalOnly: true,
    doc: "File the daemon appends its log to. Blank means stderr for sleepingd run, and " +
      "VARRUN_PATH/sleepingd.log for sleepingd start. Global section only.",
  },
  {
    name: "LOG_MAX_SIZE",
    kind: "size",
    default: "4M",
    globalOnly: true,
    doc: "Size past which sleepingd rotates its log file (LOG_FILE, or the one of sleepingd " +
      "start; not stderr): FILE becomes FILE.1, FILE.1 becomes FILE.2 and so on, and a new " +
      "FILE begins. Bytes, or with K, M or G (KiB, MiB, GiB). 0 means never, for logrotate " +
      "instead (the packages' /etc/logrotate.d/sleepingd). Global section only.",
  },
  {
    name: "LOG_MAX_FILES",
    kind: "count",
    default: "2",
    globalOnly: true,
    doc: "Log files sleepingd keeps when it rotates, the one it writes included, so at most " +
      "LOG_MAX_SIZE times LOG_MAX_FILES on disk (8 MiB by default); 1 keeps no older file. " +
      "Global section only.",
  },
  {
    name: "LOG_CONNECTIONS",
    kind: "boolean",
    default: "yes",
    doc: "Whether each connection (or UDP flow) of the service logs a line when it ends " +
      "(client, backend, bytes each way, duration). no moves that line to the debug level " +
      "(-v), for busy services: refusals, wakes and commands are still logged.",
  },
  {
    name: "API_TOKEN_FILE",
    kind: "text",
    default: "",
    globalOnly: true,
    doc: "File holding the token that POST /api/services/NAME/wake, /sleep and /keep-awake " +
      "on METRICS_ADDRESS require (sent as Authorization: Bearer TOKEN), at least 16 " +
      "characters (openssl rand -hex 32 makes one); read at each request, so it can change " +
      "without a restart. A client address (of IPv6, its /64) that sends 5 wrong tokens in a " +
      "row waits 30 seconds before its next try counts, twice as long after each further one (up to 15 " +
      "minutes). Keep it readable by sleepingd's user only. Blank means the HTTP API takes " +
      "no action (the CLI's wake, sleep and keep-awake still work through the control " +
      "socket). Global section only.",
  },
  {
    name: "ETCD_ENDPOINTS",
    kind: "addresses",
    default: "",
    globalOnly: true,
    doc: "etcd endpoints (http://HOST:PORT, space separated) through which several sleepingd " +
      "instances in front of the same backends share each service's life cycle: one START_CMD " +
      "or STOP_CMD at a time, an idle stop only when every instance is idle. Blank means " +
      "alone. Global section only.",
  },
  {
    name: "CLUSTER_NAME",
    kind: "text",
    default: "sleepingd",
    globalOnly: true,
    doc: "The name the instances sharing ETCD_ENDPOINTS coordinate under: those with the " +
      "same name share their services (by section name). Global section only.",
  },
  {
    name: "ETCD_CA_FILE",
    kind: "text",
    default: "",
    globalOnly: true,
    doc: "PEM file of the certificate authorities that sign etcd's certificate, for " +
      "https:// endpoints, trusted beside the system's. Blank means the system's only. " +
      "Global section only.",
  },
  {
    name: "ETCD_CERT_FILE",
    kind: "text",
    default: "",
    globalOnly: true,
    doc: "PEM file of the client certificate sleepingd shows etcd (for etcd's " +
      "--client-cert-auth), with ETCD_KEY_FILE. Through etcd's HTTP gateway, which sleepingd " +
      "uses, a certificate cannot name the user: leave its Common Name empty (etcd refuses " +
      "one that has one) and, with etcd authentication on, set ETCD_USER. Blank means none. " +
      "Global section only.",
  },
  {
    name: "ETCD_KEY_FILE",
    kind: "text",
    default: "",
    globalOnly: true,
    doc: "PEM file of the private key of ETCD_CERT_FILE. Keep it readable by sleepingd's user " +
      "only. Global section only.",
  },
  {
    name: "ETCD_USER",
    kind: "text",
    default: "",
    globalOnly: true,
    doc: "The etcd user sleepingd acts as when etcd has authentication on, with " +
      "ETCD_PASSWORD_FILE; it needs read and write on /sleepingd/CLUSTER_NAME/. Blank means " +
      "none. Global section only.",
  },
  {
    name: "ETCD_PASSWORD_FILE",
    kind: "text",
    default: "",
    globalOnly: true,
    doc: "File holding ETCD_USER's password (its first line). Keep it readable by " +
      "sleepingd's user only. Global section only.",
  },
  {
    name: "CLUSTER_TARGETS",
    kind: "addresses",
    default: "",
    doc: "With ETCD_ENDPOINTS and no CHECK_CMD: the backend addresses another instance may " +
      "publish for the service, each an IP address or CIDR block with an optional port " +
      "(10.0.0.5:5432 10.0.1.0/24 [2001:db8::5]:22). A published target is used only if " +
      "this instance's own wake gave it, CHECK_CMD confirms it, or it is in this list; " +
      "otherwise this instance runs START_CMD itself (one instance at a time). Blank means " +
      "none.",
  },
  {
    name: "METRICS_ADDRESS",
    kind: "text",
    default: "",
    globalOnly: true,
    doc: "HOST:PORT where sleepingd serves its dashboard at /, Prometheus metrics at /metrics, " +
      "a health check at /healthz and JSON at /api/status and /api/history, e.g. " +
      "127.0.0.1:9180. Anyone who reaches it sees every service, its backend and the " +
      "addresses of the clients that woke it. Blank means off. Global section only.",
  },
  {
    name: "METRICS_HOSTS",
    kind: "addresses",
    default: "",
    globalOnly: true,
    doc: "Host names, separated by spaces, under which browsers and tools may reach " +
      "METRICS_ADDRESS besides its IP addresses, localhost and METRICS_ADDRESS's own host, " +
      "e.g. sleepingd.example.com when a reverse proxy passes that name on. A request for " +
      "any other name is answered 421, so that a web page whose name points at this host " +
      "(DNS rebinding) reads nothing. Blank means none. Global section only.",
  },
];

/** {@linkcode KEYS} by name. */
export const KEYS_BY_NAME: ReadonlyMap<string, KeyDefinition> = new Map(
  KEYS.map((key) => [key.name, key]),
);
