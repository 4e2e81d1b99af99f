/**
 * `sleepingd check`, `-V` and usage errors, through the real CLI.
 */
import assert from "node:assert/strict";
import { VERSION } from "../src/version.ts";
import { REPO, runCli, tempFiles } from "./_helpers.ts";

Deno.test("sleepingd -f sleepingd.conf check lists the shipped demo", async () => {
  const { code, stdout, stderr } = await runCli(["-f", "sleepingd.conf", "check"]);
  assert.equal(stderr, "");
  assert.equal(
    stdout,
    "Simple web server for testing purposes (port 10080)\n" +
      "  listen: 127.0.0.1\n" +
      "  start: ( deno run --allow-net examples/demo/oneshot.ts 8080 > /dev/null 2>...\n" +
      "  idle: never stopped (set IDLE_TIME and IDLE_CHECK_INTERVAL to stop it when idle)\n" +
      "Nodeapp in docker containers (inactive)\n",
  );
  assert.equal(code, 0);
});

Deno.test("sleepingd -f seed_examples.conf check lists both seed examples with their commands", async () => {
  const { code, stdout, stderr } = await runCli([
    "--config-file",
    "tests/testdata/seed_examples.conf",
    "check",
  ]);
  assert.equal(stderr, "");
  assert.equal(
    stdout,
    "Simple web server for testing purposes (port 10080)\n" +
      "  start: ( echo -e 'Response from 8080: $(date)' | nc -l -p 8080 -w 1 > /dev...\n" +
      "  idle: never stopped (set IDLE_TIME and IDLE_CHECK_INTERVAL to stop it when idle)\n" +
      "Nodeapp in docker containers (port 20080)\n" +
      "  start: /usr/share/sleepingd/example/startserver start\n" +
      "  stop: /usr/share/sleepingd/example/startserver stop\n" +
      "  idle: every 5s, stop after 20s idle\n" +
      "  idle if: /usr/share/sleepingd/example/startserver status\n",
  );
  assert.equal(code, 0);
});

Deno.test("sleepingd check shows every setting of a service, with timeouts", async () => {
  await using dir = await tempFiles({
    "full.conf": `EXEC_CMD_TIMEOUT=3
USER=nobody
PASS_ENV=DOCKER_HOST AWS_PROFILE
MAX_CONNECTIONS_TOTAL=5000
MAX_UDP_FLOWS_TOTAL=200
MAX_HELD_BYTES_TOTAL=32M
MAX_WAKES_PER_HOUR_TOTAL=30
METRICS_ADDRESS=[::1]:9180
METRICS_HOSTS=sleepingd.example.com status.example.com
STATE_PATH=/srv/sleepingd
API_TOKEN_FILE=/etc/sleepingd/api-token
ETCD_ENDPOINTS=http://10.0.0.5:2379 http://10.0.0.6:2379
CLUSTER_NAME=office
[full]
PORT=7000
LISTEN_ADDRESS=127.0.0.1 ::1
CHECK_CMD=test -e /tmp/up
START_CMD_TIMEOUT=30
START_CMD="echo one
echo 127.0.0.1 7001"
READY_CMD=pg_isready -q
READY_TIMEOUT=90
CONNECT_TIMEOUT=2.5
ROUTE_PER_CONNECTION=yes
STOP_CMD=stop-it
IDLE_CMD=who | grep -q . && exit 1 || exit 0
IDLE_TIME=600
IDLE_CHECK_INTERVAL=0.5
ALLOW=10.0.0.0/8 2001:db8::/32
DENY=10.1.0.0/16
MAX_CONNECTIONS=100
MAX_CONNECTIONS_PER_SOURCE=4
MAX_WAKES_PER_HOUR=6
WAKE_ON=data
HOLD_TIMEOUT=90
PROXY_PROTOCOL=v1
COST_PER_HOUR=0.25 EUR
MIN_AWAKE_TIME=120
`,
  });
  const { code, stdout, stderr } = await runCli(["-f", `${dir.path}/full.conf`, "check"]);
  assert.equal(stderr, "");
  assert.equal(
    stdout,
    "cluster: office, through etcd at http://10.0.0.5:2379 http://10.0.0.6:2379\n" +
      "dashboard: http://[::1]:9180/ (metrics at http://[::1]:9180/metrics)\n" +
      "dashboard names: sleepingd.example.com status.example.com (and IP addresses, localhost)\n" +
      "wake API: POST /api/services/NAME/... with the token in /etc/sleepingd/api-token\n" +
      "history: /srv/sleepingd/events.jsonl\n" +
      "all services: 5000 connections, 200 UDP flows, 32 MiB held for clients, " +
      "30 wakes an hour\n" +
      "full (port 7000)\n" +
      "  listen: 127.0.0.1 ::1\n" +
      "  check: test -e /tmp/up (timeout 3s)\n" +
      "  start: echo one... (timeout 30s)\n" +
      "  ready: pg_isready -q (timeout 3s), retried for up to 90s\n" +
      "  connect: within 2.5s\n" +
      "  route: per connection\n" +
      "  proxy protocol: v1\n" +
      "  allow: 10.0.0.0/8 2001:db8::/32\n" +
      "  deny: 10.1.0.0/16\n" +
      "  limits: 100 connections, 4 per client address, 6 wakes an hour\n" +
      "  wake on: a connection's first byte\n" +
      "  hold: up to 90s\n" +
      "  stop: stop-it (timeout 3s)\n" +
      "  idle: every 0.5s, stop after 600s idle\n" +
      "  idle if: who | grep -q . && exit 1 || exit 0 (timeout 3s)\n" +
      "  awake at least: 120s once woken\n" +
      "  user: nobody (a clean environment, with DOCKER_HOST AWS_PROFILE passed on)\n" +
      "  published targets: used when CHECK_CMD confirms them\n" +
      "  cost: 0.25 EUR an hour awake\n",
  );
  assert.equal(code, 0);
});

Deno.test("sleepingd check shows the log's file and rotation, and LOG_CONNECTIONS=no", async () => {
  const service = "[web]\nPORT=80\nSTART_CMD=go\n";
  await using dir = await tempFiles({
    "file.conf": `LOG_FILE=/var/log/sleepingd/sleepingd.log\nLOG_MAX_SIZE=10M\nLOG_MAX_FILES=3\n` +
      `${service}LOG_CONNECTIONS=no\n`,
    "never.conf": `VARRUN_PATH=/run/s/\nLOG_MAX_SIZE=0\n${service}`,
    "one.conf": `LOG_FILE=/tmp/s.log\nLOG_MAX_SIZE=1500\nLOG_MAX_FILES=1\n${service}`,
    "default.conf": service,
  });
  const check = async (name: string) => {
    const { code, stdout, stderr } = await runCli(["-f", `${dir.path}/${name}`, "check"]);
    assert.equal(stderr, "");
    assert.equal(code, 0);
    return stdout.split("\n").filter((line) => /^\s*log:/.test(line));
  };
  assert.deepEqual(await check("file.conf"), [
    "log: /var/log/sleepingd/sleepingd.log; rotated past 10 MiB, 3 files kept",
    "  log: each connection at the debug level only",
  ]);
  assert.deepEqual(await check("never.conf"), [
    "log: stderr for run, /run/s/sleepingd.log for start; never rotated by sleepingd " +
    "(LOG_MAX_SIZE=0)",
  ]);
  assert.deepEqual(await check("one.conf"), [
    "log: /tmp/s.log; rotated past 1500 bytes, no older file kept",
  ]);
  assert.deepEqual(await check("default.conf"), []);
});

Deno.test("sleepingd check shows a service's ports and its UDP flows", async () => {
  await using dir = await tempFiles({
    "game.conf": "[game]\nPORT=27015\nPROTOCOL=udp\nSTART_CMD=go\n" +
      "MORE_PORTS=27015 8443:443\nUDP_FLOW_TIMEOUT=30\n",
  });
  const { code, stdout, stderr } = await runCli(["-f", `${dir.path}/game.conf`, "check"]);
  assert.equal(stderr, "");
  assert.equal(
    stdout,
    "game (port 27015)\n" +
      "  ports: 27015/udp 27015/tcp 8443->443/tcp\n" +
      "  udp flows: end after 30s without a datagram\n" +
      "  start: go\n" +
      "  idle: never stopped (set IDLE_TIME and IDLE_CHECK_INTERVAL to stop it when idle)\n",
  );
  assert.equal(code, 0);
});

Deno.test("sleepingd check prints warnings on stderr and still exits 0", async () => {
  await using dir = await tempFiles({
    "w.conf": "VARRUN_PATH=/tmp\n[web]\nPORT=80\nSTART_CMD=go\nPROT=81\nVARRUN_PATH=/x\n",
  });
  const { code, stdout, stderr } = await runCli(["-f", `${dir.path}/w.conf`, "check"]);
  assert.equal(
    stderr,
    `sleepingd: warning: ${dir.path}/w.conf:5: Ignoring unknown key "PROT": did you mean "PORT"?\n` +
      `sleepingd: warning: ${dir.path}/w.conf:6: Ignoring "VARRUN_PATH" in [web] as it can only ` +
      "be set in the global section\n",
  );
  assert.equal(
    stdout,
    "run folder: /tmp (pidfile, control socket, the log of sleepingd start)\n" +
      "web (port 80)\n  start: go\n  idle: never stopped " +
      "(set IDLE_TIME and IDLE_CHECK_INTERVAL to stop it when idle)\n",
  );
  assert.equal(code, 0);
});

Deno.test("sleepingd check warns about a VARRUN_PATH or STATE_PATH that cannot be written", async () => {
  await using dir = await tempFiles({ "file": "" });
  const file = `${dir.path}/f.conf`;
  await Deno.writeTextFile(
    file,
    `VARRUN_PATH=${dir.path}/file/run\nSTATE_PATH=${dir.path}/file/state\n[web]\nPORT=80\n` +
      "START_CMD=go\n",
  );
  const { code, stderr } = await runCli(["-f", file, "check"]);
  assert.equal(
    stderr,
    `sleepingd: warning: ${file}:1: VARRUN_PATH "${dir.path}/file/run" cannot be written by ` +
      `uid 0 (root): ${dir.path}/file is not a folder; "sleepingd start" would fail, and ` +
      '"sleepingd run" would go without status, reload and stop; set VARRUN_PATH to a folder ' +
      "uid 0 (root) can write\n" +
      `sleepingd: warning: ${file}:2: STATE_PATH "${dir.path}/file/state" cannot be written by ` +
      `uid 0 (root): ${dir.path}/file is not a folder; the history would last only until ` +
      "sleepingd stops; set STATE_PATH to a folder uid 0 (root) can write\n",
  );
  assert.equal(code, 0);
});

Deno.test("sleepingd check refuses the dashboard's port for a service", async () => {
  await using dir = await tempFiles({
    "m.conf": "METRICS_ADDRESS=127.0.0.1:9180\n[web]\nPORT=9180\nSTART_CMD=go\n",
  });
  const { code, stdout, stderr } = await runCli(["-f", `${dir.path}/m.conf`, "check"]);
  assert.equal(
    stderr,
    `sleepingd: error: ${dir.path}/m.conf:3: Cannot listen on port 9180 for [web] as ` +
      `METRICS_ADDRESS (${dir.path}/m.conf:1) serves the dashboard on it: choose another PORT ` +
      "or METRICS_ADDRESS\n",
  );
  assert.equal(stdout, "");
  assert.equal(code, 1);
});

Deno.test("sleepingd check warns about an IDLE_TIME without STOP_CMD, its backend outliving stop", async () => {
  await using dir = await tempFiles({
    "i.conf": "[web]\nPORT=80\nSTART_CMD=go\nIDLE_TIME=60\nIDLE_CHECK_INTERVAL=5\n",
  });
  const { code, stderr } = await runCli(["-f", `${dir.path}/i.conf`, "check"]);
  assert.equal(
    stderr,
    `sleepingd: warning: ${dir.path}/i.conf:4: Nothing stops the backend of [web]: IDLE_TIME is ` +
      'set but STOP_CMD is not, so an idle stop and "sleepingd stop" leave it running (and the ' +
      "next wake runs START_CMD again); set STOP_CMD\n",
  );
  assert.equal(code, 0);
});

Deno.test("sleepingd check says so when no service is active", async () => {
  await using dir = await tempFiles({ "off.conf": "PORT=80\n[a]\nACTIVE=no\n[b]\nACTIVE=false\n" });
  const { code, stdout, stderr } = await runCli(["-f", `${dir.path}/off.conf`, "check"]);
  assert.equal(stderr, "");
  assert.equal(stdout, "no service is active\na (inactive)\nb (inactive)\n");
  assert.equal(code, 0);
});

/** Each malformed file, the error `check` must print for it, after `sleepingd: error: FILE:`. */
const MALFORMED: [string, string, string][] = [
  [
    "an unterminated quote",
    '[web]\nPORT=80\nSTART_CMD="echo hi\n\nSTOP_CMD=x\n',
    '3: Cannot read "START_CMD": the quote opened here is never closed',
  ],
  [
    "a line that is not KEY=value",
    "[web]\nPORT 80\n",
    '2: Cannot read line "PORT 80": expected KEY=value or [section]',
  ],
  [
    "an empty section name",
    "\n\n[ ]\n",
    '3: Cannot read section header "[ ]": the section name is empty',
  ],
  [
    "a bad port",
    "[web]\nSTART_CMD=go\nPORT=abc\n",
    '3: Cannot use "PORT" as it must be an integer from 1 to 65535: current value is "abc"',
  ],
  [
    "a bad time",
    "IDLE_TIME=10m\n[web]\nSTART_CMD=go\nPORT=80\n",
    '1: Cannot use "IDLE_TIME" as it must be a number of seconds, 0 or more: current value ' +
    'is "10m"',
  ],
  [
    "a bad boolean",
    "[web]\nSTART_CMD=go\nPORT=80\nACTIVE=sometimes\n",
    '4: Cannot use "ACTIVE" as it must be yes, no, true, false, 1 or 0: current value is ' +
    '"sometimes"',
  ],
  [
    "a duplicate port",
    "[web]\nSTART_CMD=go\nPORT=80\n[api]\nSTART_CMD=go\nPORT=80\n",
    "6: Cannot listen on port 80 for [api] as [web] already does at FILE:3",
  ],
  [
    "a service without PORT",
    "\n[web]\nSTART_CMD=go\n",
    "2: Cannot listen for [web] as it has no PORT: set PORT in [web]",
  ],
  [
    "a service without START_CMD or CHECK_CMD",
    "[web]\nPORT=80\n",
    "1: Cannot wake [web] as it has neither START_CMD nor CHECK_CMD: set START_CMD in [web]",
  ],
  [
    "a service whose PORT is blank",
    "[web]\nSTART_CMD=go\nPORT=\n",
    "3: Cannot listen for [web] as its PORT is blank: set PORT in [web] to the port sleepingd " +
    "listens on",
  ],
  [
    "a CONNECT_TIMEOUT of 0",
    "[web]\nSTART_CMD=go\nPORT=80\nCONNECT_TIMEOUT=0\n",
    '4: Cannot use "CONNECT_TIMEOUT" as it must be more than 0 seconds: current value is "0"',
  ],
];

for (const [what, text, error] of MALFORMED) {
  Deno.test(`sleepingd check exits 1 with file:line for ${what}`, async () => {
    await using dir = await tempFiles({ "bad.conf": text });
    const file = `${dir.path}/bad.conf`;
    const { code, stdout, stderr } = await runCli(["-f", file, "check"]);
    assert.equal(stderr, `sleepingd: error: ${file}:${error.replaceAll("FILE", file)}\n`);
    assert.equal(stdout, "");
    assert.equal(code, 1);
  });
}

Deno.test("sleepingd check reports every unreadable line of a file, and nothing that follows from them", async () => {
  await using dir = await tempFiles({
    "bad.conf": "[web]\nPORT 80\nSTART_CMD=go\nSTOP_CMD go\n",
  });
  const file = `${dir.path}/bad.conf`;
  const { code, stdout, stderr } = await runCli(["-f", file, "check"]);
  assert.equal(
    stderr,
    `sleepingd: error: ${file}:2: Cannot read line "PORT 80": expected KEY=value or [section]\n` +
      `sleepingd: error: ${file}:4: Cannot read line "STOP_CMD go": expected KEY=value or ` +
      "[section]\n",
  );
  assert.equal(stdout, "");
  assert.equal(code, 1);
});

Deno.test("sleepingd check prints every error on its own line, after the warnings", async () => {
  await using dir = await tempFiles({ "bad.conf": "[a]\nPROT=80\nSTART_CMD=go\n[b]\nPORT=0\n" });
  const file = `${dir.path}/bad.conf`;
  const { code, stdout, stderr } = await runCli(["-f", file, "check"]);
  assert.equal(
    stderr,
    `sleepingd: warning: ${file}:2: Ignoring unknown key "PROT": did you mean "PORT"?\n` +
      `sleepingd: error: ${file}:1: Cannot listen for [a] as it has no PORT: set PORT in [a]\n` +
      `sleepingd: error: ${file}:4: Cannot wake [b] as it has neither START_CMD nor CHECK_CMD: ` +
      "set START_CMD in [b]\n" +
      `sleepingd: error: ${file}:5: Cannot use "PORT" as it must be an integer from 1 to 65535: ` +
      'current value is "0"\n',
  );
  assert.equal(stdout, "");
  assert.equal(code, 1);
});

Deno.test("sleepingd -f missing.conf check exits 1 naming the file", async () => {
  await using dir = await tempFiles({});
  const { code, stdout, stderr } = await runCli(["-f", `${dir.path}/missing.conf`, "check"]);
  assert.equal(
    stderr,
    `sleepingd: error: Cannot read config file "${dir.path}/missing.conf": it does not exist\n`,
  );
  assert.equal(stdout, "");
  assert.equal(code, 1);
});

Deno.test("sleepingd frobnicate is a usage error with exit code 2", async () => {
  const { code, stdout, stderr } = await runCli(["frobnicate"]);
  assert.match(stderr, /^sleepingd: Unknown command "frobnicate"\n/);
  assert.equal(stdout, "");
  assert.equal(code, 2);
});

Deno.test("sleepingd -V prints the version", async () => {
  const { code, stdout, stderr } = await runCli(["-V"]);
  assert.equal(stdout, `${VERSION}\n`);
  assert.equal(stderr, "");
  assert.equal(code, 0);
});

Deno.test("sleepingd check --help prints the command's help on stdout", async () => {
  const { code, stdout, stderr } = await runCli(["check", "--help"]);
  assert.match(stdout, /^Usage: sleepingd \[-f FILE\]\.\.\. check\n/);
  assert.equal(stderr, "");
  assert.equal(code, 0);
});

Deno.test("the README's configuration examples pass sleepingd check", async () => {
  const readme = await Deno.readTextFile(`${REPO}README.md`);
  const examples = [...readme.matchAll(/```ini\n([\s\S]*?)```/g)].map((match) => match[1]);
  assert.ok(examples.length > 0, "the README has ini examples");
  for (const example of examples) {
    await using dir = await tempFiles({ "example.conf": example });
    const { code, stderr } = await runCli(["-f", `${dir.path}/example.conf`, "check"]);
    assert.equal(stderr, "", example);
    assert.equal(code, 0, example);
  }
});
