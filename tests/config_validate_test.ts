import assert from "node:assert/strict";
import { ConfigError, formatIssue, InvalidConfigError } from "../src/config/config_error.ts";
import { KEYS } from "../src/config/keys.ts";
import { userFolders, whyNotWritable } from "../src/config/folders.ts";
import { buildConfig, loadConfig, type SearchList } from "../src/config/load.ts";
import { parseConfigText } from "../src/config/parse.ts";
import { build, errorsOf, service, warningsOf } from "./_config.ts";
import { REPO, tempFiles } from "./_helpers.ts";

const SEED_EXAMPLES = `${REPO}tests/testdata/seed_examples.conf`;

/** Drops `undefined` fields so that objects compare by what they set. */
function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value));
}

/** A minimal active section, for tests about one key. */
const WEB = "[web]\nPORT=8080\nSTART_CMD=start-web\n";

Deno.test("buildConfig() reads the seed's two examples as the seed describes them", async () => {
  const parsed = parseConfigText(await Deno.readTextFile(SEED_EXAMPLES), "seed.conf");
  assert.deepEqual(
    parsed.sections.map((
      { name, entries },
    ) => [name, entries.map(({ key, value }) => [key, value])]),
    [
      ["Simple web server for testing purposes", [
        ["ACTIVE", "yes"],
        ["PORT", "10080"],
        [
          "START_CMD",
          "( echo -e 'Response from 8080: $(date)' | nc -l -p 8080 -w 1 > /dev/null 2> /dev/null & )" +
          " ; echo '127.0.0.1 8080'",
        ],
      ]],
      ["Nodeapp in docker containers", [
        ["ACTIVE", "yes"],
        ["PORT", "20080"],
        ["START_CMD", "/usr/share/sleepingd/example/startserver start"],
        ["STOP_CMD", "/usr/share/sleepingd/example/startserver stop"],
        ["IDLE_CMD", "/usr/share/sleepingd/example/startserver status"],
        ["IDLE_TIME", "20"],
        ["IDLE_CHECK_INTERVAL", "5"],
      ]],
    ],
  );
  const config = buildConfig([parsed]);
  assert.deepEqual(plain(config), {
    files: ["seed.conf"],
    global: {
      varrunPath: "/var/run/sleepingd",
      statePath: "/var/lib/sleepingd",
      clusterName: "sleepingd",
      shutdownGrace: 10,
      logFormat: "text",
      hostnameTimeout: 10,
      logMaxSize: 4 * 1024 * 1024,
      logMaxFiles: 2,
    },
    services: [
      {
        name: "Simple web server for testing purposes",
        source: { file: "seed.conf", line: 1 },
        port: 10080,
        portSource: { file: "seed.conf", line: 5 },
        listenAddresses: ["::"],
        startCmd: {
          text: parsed.sections[0].entries[2].value,
          source: { file: "seed.conf", line: 7 },
        },
        readyTimeout: 60,
        connectTimeout: 5,
        allow: [],
        deny: [],
        holdTimeout: 300,
        wakeOn: "connect",
        routePerConnection: false,
        logConnections: true,
        protocol: "tcp",
        morePorts: [],
        udpFlowTimeout: 60,
        keepAwake: [],
        dependsOn: [],
        forward: "proxy",
        masquerade: "auto",
      },
      {
        name: "Nodeapp in docker containers",
        source: { file: "seed.conf", line: 9 },
        port: 20080,
        portSource: { file: "seed.conf", line: 13 },
        listenAddresses: ["::"],
        startCmd: {
          text: "/usr/share/sleepingd/example/startserver start",
          source: { file: "seed.conf", line: 15 },
        },
        stopCmd: {
          text: "/usr/share/sleepingd/example/startserver stop",
          source: { file: "seed.conf", line: 17 },
        },
        idleCmd: {
          text: "/usr/share/sleepingd/example/startserver status",
          source: { file: "seed.conf", line: 19 },
        },
        readyTimeout: 60,
        connectTimeout: 5,
        allow: [],
        deny: [],
        holdTimeout: 300,
        wakeOn: "connect",
        idleTime: 20,
        idleCheckInterval: 5,
        routePerConnection: false,
        logConnections: true,
        protocol: "tcp",
        morePorts: [],
        udpFlowTimeout: 60,
        keepAwake: [],
        dependsOn: [],
        forward: "proxy",
        masquerade: "auto",
      },
    ],
    inactive: [],
    warnings: [],
  });
});

Deno.test("buildConfig() gives every key its default", () => {
  assert.deepEqual(plain(build("[web]\nSTART_CMD=go\nPORT=80\n")), {
    files: ["t.conf"],
    global: {
      varrunPath: "/var/run/sleepingd",
      statePath: "/var/lib/sleepingd",
      clusterName: "sleepingd",
      shutdownGrace: 10,
      logFormat: "text",
      hostnameTimeout: 10,
      logMaxSize: 4 * 1024 * 1024,
      logMaxFiles: 2,
    },
    services: [{
      name: "web",
      source: { file: "t.conf", line: 1 },
      port: 80,
      portSource: { file: "t.conf", line: 3 },
      listenAddresses: ["::"],
      startCmd: { text: "go", source: { file: "t.conf", line: 2 } },
      readyTimeout: 60,
      connectTimeout: 5,
      allow: [],
      deny: [],
      holdTimeout: 300,
      wakeOn: "connect",
      routePerConnection: false,
      logConnections: true,
      protocol: "tcp",
      morePorts: [],
      udpFlowTimeout: 60,
      keepAwake: [],
      dependsOn: [],
      forward: "proxy",
      masquerade: "auto",
    }],
    inactive: [],
    warnings: [],
  });
});

Deno.test("buildConfig() lets every section inherit the global keys and override them", () => {
  const config = build(
    "USER=nobody\nSTOP_CMD=stop-all\nIDLE_TIME=30\n" +
      "[a]\nPORT=1\nSTART_CMD=a\n" +
      "[b]\nPORT=2\nSTART_CMD=b\nUSER=root\nSTOP_CMD=\n",
  );
  assert.deepEqual(
    config.services.map((s) => [s.name, s.user, s.stopCmd?.text, s.idleTime]),
    [["a", "nobody", "stop-all", 30], ["b", "root", undefined, 30]],
  );
  assert.deepEqual(config.services[0].stopCmd?.source, { file: "t.conf", line: 2 });
});

Deno.test("buildConfig() keeps ACTIVE and PORT to the section that sets them", () => {
  const errors = errorsOf("ACTIVE=no\nPORT=80\n[web]\nSTART_CMD=go\n");
  assert.deepEqual(errors, [
    "t.conf:3: Cannot listen for [web] as it has no PORT: set PORT in [web]",
  ]);
});

Deno.test("buildConfig() makes sections active by default and the global section not", () => {
  const config = build(`PORT=70\nSTART_CMD=go\n${WEB}[off]\nACTIVE=no\n`);
  assert.deepEqual(config.services.map(({ name }) => name), ["web"]);
  assert.deepEqual(config.inactive, ["off"]);
});

Deno.test("buildConfig() makes the global section a service named global with ACTIVE=yes and PORT", () => {
  const config = build(`ACTIVE=yes\nPORT=70\nSTART_CMD=go\n${WEB}`);
  assert.deepEqual(config.services.map(({ name, port }) => [name, port]), [["global", 70], [
    "web",
    8080,
  ]]);
  assert.deepEqual(config.services[0].source, { file: "t.conf", line: 1 });
});

Deno.test("buildConfig() warns when the global section is active without a PORT", () => {
  assert.deepEqual(warningsOf(`ACTIVE=yes\n${WEB}`), [
    "t.conf:1: Ignoring ACTIVE=yes in the global section as it has no PORT: " +
    "set PORT there to make it a service",
  ]);
});

Deno.test("buildConfig() reads booleans as yes/no/true/false/1/0 in any case", () => {
  const values = ["yes", "YES", "True", "1", "no", "No", "FALSE", "0"].map((value) =>
    service(`${WEB}ROUTE_PER_CONNECTION=${value}\n`).routePerConnection
  );
  assert.deepEqual(values, [true, true, true, true, false, false, false, false]);
});

Deno.test("buildConfig() refuses a boolean that is not yes/no/true/false/1/0", () => {
  assert.deepEqual(errorsOf(`${WEB}ACTIVE=maybe\n`), [
    't.conf:4: Cannot use "ACTIVE" as it must be yes, no, true, false, 1 or 0: ' +
    'current value is "maybe"',
  ]);
});

Deno.test("buildConfig() refuses a PORT that is not an integer from 1 to 65535", () => {
  for (const value of ["abc", "0", "65536", "80.5", "-1", "8o"]) {
    assert.deepEqual(errorsOf(`[web]\nSTART_CMD=go\nPORT=${value}\n`), [
      `t.conf:3: Cannot use "PORT" as it must be an integer from 1 to 65535: ` +
      `current value is "${value}"`,
    ]);
  }
  assert.equal(service("[web]\nSTART_CMD=go\nPORT=65535\n").port, 65535);
});

Deno.test("buildConfig() reads times as non-negative seconds, decimals allowed, blank as none", () => {
  const { idleTime, idleCheckInterval, readyTimeout } = service(
    `${WEB}IDLE_TIME=1.5\nIDLE_CHECK_INTERVAL=\nREADY_TIMEOUT=0\n`,
  );
  assert.deepEqual([idleTime, idleCheckInterval, readyTimeout], [1.5, undefined, 0]);
});

Deno.test("buildConfig() refuses a time that is not a non-negative number", () => {
  for (const value of ["5m", "-1", "1e3", "abc"]) {
    assert.deepEqual(errorsOf(`${WEB}IDLE_TIME=${value}\n`), [
      `t.conf:4: Cannot use "IDLE_TIME" as it must be a number of seconds, 0 or more: ` +
      `current value is "${value}"`,
    ]);
  }
});

Deno.test("buildConfig() reads a blank key with a default as the default", () => {
  const config = build(
    `SHUTDOWN_GRACE=\nVARRUN_PATH=\nSTATE_PATH=\n${WEB}READY_TIMEOUT=\nLISTEN_ADDRESS=\n`,
  );
  assert.deepEqual(config.global, {
    varrunPath: "/var/run/sleepingd",
    statePath: "/var/lib/sleepingd",
    clusterName: "sleepingd",
    shutdownGrace: 10,
    logFormat: "text",
    hostnameTimeout: 10,
    logMaxSize: 4 * 1024 * 1024,
    logMaxFiles: 2,
  });
  assert.equal(config.services[0].readyTimeout, 60);
  assert.deepEqual(config.services[0].listenAddresses, ["::"]);
});

Deno.test("buildConfig() reads LISTEN_ADDRESS as a space-separated list", () => {
  assert.deepEqual(
    service(`${WEB}LISTEN_ADDRESS= 127.0.0.1   ::1 \n`).listenAddresses,
    ["127.0.0.1", "::1"],
  );
});

Deno.test("buildConfig() reads the global-only keys from the global section", () => {
  const global = "VARRUN_PATH=/tmp/s\nSHUTDOWN_GRACE=2.5\nLOG_FORMAT=json\nLOG_FILE=/tmp/s.log\n" +
    "METRICS_ADDRESS=[::1]:9180\nSTATE_PATH=/tmp/history\nLOG_MAX_SIZE=1.5M\nLOG_MAX_FILES=5\n";
  assert.deepEqual(build(`${global}${WEB}`).global, {
    varrunPath: "/tmp/s",
    statePath: "/tmp/history",
    clusterName: "sleepingd",
    shutdownGrace: 2.5,
    logFormat: "json",
    logFile: "/tmp/s.log",
    logMaxSize: 1572864,
    logMaxFiles: 5,
    metricsAddress: { hostname: "::1", port: 9180 },
    hostnameTimeout: 10,
    varrunPathSource: { file: "t.conf", line: 1 },
    statePathSource: { file: "t.conf", line: 6 },
  });
});

Deno.test("buildConfig() takes a user's own folders only where the files leave them blank", () => {
  const own = {
    varrunPath: "/run/user/1000/sleepingd",
    statePath: "/home/a/.local/state/sleepingd",
  };
  const blank = buildConfig([parseConfigText(`VARRUN_PATH=\n${WEB}`, "t.conf")], own).global;
  assert.equal(blank.varrunPath, own.varrunPath);
  assert.equal(blank.statePath, own.statePath);
  assert.equal(blank.varrunPathSource, undefined);
  const set = buildConfig([parseConfigText(`STATE_PATH=/srv/h\n${WEB}`, "t.conf")], own).global;
  assert.equal(set.varrunPath, own.varrunPath);
  assert.equal(set.statePath, "/srv/h");
  assert.deepEqual(set.statePathSource, { file: "t.conf", line: 1 });
});

Deno.test("userFolders() follows XDG_RUNTIME_DIR and XDG_STATE_HOME, else the home", () => {
  const saved = ["HOME", "XDG_RUNTIME_DIR", "XDG_STATE_HOME"].map((name) =>
    [name, Deno.env.get(name)] as const
  );
  try {
    Deno.env.set("HOME", "/home/a");
    Deno.env.delete("XDG_STATE_HOME");
    Deno.env.set("XDG_RUNTIME_DIR", "/run/user/1000/");
    assert.deepEqual(userFolders(), {
      varrunPath: "/run/user/1000/sleepingd",
      statePath: "/home/a/.local/state/sleepingd",
    });
    Deno.env.delete("XDG_RUNTIME_DIR");
    Deno.env.set("XDG_STATE_HOME", "/srv/a/state");
    assert.deepEqual(userFolders(), {
      varrunPath: "/srv/a/state/sleepingd/run",
      statePath: "/srv/a/state/sleepingd",
    });
    Deno.env.set("XDG_STATE_HOME", "relative/state"); // not absolute: ignored, as XDG says
    assert.equal(userFolders()?.statePath, "/home/a/.local/state/sleepingd");
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
  }
});

Deno.test("whyNotWritable() says which folder on the way is not one", async () => {
  await using dir = await tempFiles({ "file": "" });
  assert.equal(whyNotWritable(`${dir.path}/new/deeper`), undefined);
  assert.equal(whyNotWritable(`${dir.path}/file/state`), `${dir.path}/file is not a folder`);
});

Deno.test("buildConfig() reads LOG_MAX_SIZE in bytes or with K, M or G, and 0 as never", () => {
  const sizes: [string, number][] = [
    ["0", 0],
    ["1000", 1000],
    ["512K", 512 * 1024],
    ["64 KiB", 64 * 1024],
    ["4m", 4 * 1024 * 1024],
    ["10MB", 10 * 1024 * 1024],
    ["1G", 1024 ** 3],
    ["2048B", 2048],
  ];
  for (const [text, bytes] of sizes) {
    assert.equal(build(`LOG_MAX_SIZE=${text}\n${WEB}`).global.logMaxSize, bytes, text);
  }
  assert.equal(build(WEB).global.logMaxSize, 4 * 1024 * 1024);
});

Deno.test("buildConfig() refuses a LOG_MAX_SIZE it cannot read and LOG_MAX_FILES=0, with file:line", () => {
  assert.throws(
    () => build(`LOG_MAX_SIZE=4 TB\nLOG_MAX_FILES=0\n${WEB}`),
    (error: Error) => {
      assert.match(
        error.message,
        /t\.conf:1: Cannot use "LOG_MAX_SIZE" as it must be a size in bytes, or with K, M or G, e\.g\. 4M: current value is "4 TB"/,
      );
      assert.match(
        error.message,
        /t\.conf:2: Cannot use "LOG_MAX_FILES" as it must be 1 or more .*set LOG_MAX_SIZE=0/,
      );
      return true;
    },
  );
});

Deno.test("buildConfig() reads LOG_CONNECTIONS per service, inherited from the global section", () => {
  const config = build(
    "LOG_CONNECTIONS=no\n[quiet]\nPORT=1\nSTART_CMD=a\n[loud]\nPORT=2\nSTART_CMD=a\n" +
      "LOG_CONNECTIONS=yes\n",
  );
  assert.deepEqual(
    config.services.map(({ name, logConnections }) => [name, logConnections]),
    [["quiet", false], ["loud", true]],
  );
  assert.equal(service(WEB).logConnections, true);
});

Deno.test("buildConfig() reports a bad LOG_FORMAT and a bad METRICS_ADDRESS", () => {
  assert.throws(
    () => build(`LOG_FORMAT=yaml\nMETRICS_ADDRESS=9180\n${WEB}`),
    (error: Error) => {
      assert.match(
        error.message,
        /t\.conf:1: Cannot read "LOG_FORMAT" as it must be text or json: current value is "yaml"/,
      );
      assert.match(
        error.message,
        /t\.conf:2: Cannot read "METRICS_ADDRESS" as it must be HOST:PORT/,
      );
      return true;
    },
  );
});

Deno.test("buildConfig() uses EXEC_CMD_TIMEOUT for commands without their own timeout", () => {
  const svc = service(
    "EXEC_CMD_TIMEOUT=7\n[web]\nPORT=1\nSTART_CMD=a\nCHECK_CMD=b\nSTOP_CMD=c\nIDLE_CMD=d\n" +
      "READY_CMD=e\nSTART_CMD_TIMEOUT=30\nSTOP_CMD_TIMEOUT=0\nCHECK_CMD_TIMEOUT=\n",
  );
  assert.deepEqual(
    [svc.startCmd, svc.checkCmd, svc.stopCmd, svc.idleCmd, svc.readyCmd].map((c) => c?.timeout),
    [30, 7, undefined, 7, 7],
  );
});

Deno.test("buildConfig() runs commands without a limit when no timeout is set", () => {
  assert.equal(service(WEB).startCmd?.timeout, undefined);
});

Deno.test("buildConfig() treats the seed's default commands as unset", () => {
  const svc = service(
    "[web]\nPORT=1\nSTART_CMD=go\nCHECK_CMD=false\nSTOP_CMD= false \nIDLE_CMD=true\n",
  );
  assert.deepEqual([svc.checkCmd, svc.stopCmd, svc.idleCmd], [undefined, undefined, undefined]);
});

Deno.test("buildConfig() keeps commands that differ from the seed's defaults", () => {
  const svc = service("[web]\nPORT=1\nSTART_CMD=go\nCHECK_CMD=true\nIDLE_CMD=false\n");
  assert.deepEqual([svc.checkCmd?.text, svc.idleCmd?.text], ["true", "false"]);
});

Deno.test("buildConfig() keeps a command's text untouched", () => {
  const text = 'set -e\nif true; then echo "$HOME" 2>&1 </dev/null; fi';
  assert.equal(service(`[web]\nPORT=1\nSTART_CMD='${text}'\n`).startCmd?.text, text);
});

Deno.test("buildConfig() accepts a service with CHECK_CMD and no START_CMD", () => {
  assert.equal(service("[web]\nPORT=1\nCHECK_CMD=echo 127.0.0.1 80\n").startCmd, undefined);
});

Deno.test("buildConfig() refuses an active service without PORT, with a hint", () => {
  assert.deepEqual(errorsOf("[web]\nSTART_CMD=go\n"), [
    "t.conf:1: Cannot listen for [web] as it has no PORT: set PORT in [web]",
  ]);
});

Deno.test("buildConfig() refuses an active service whose PORT is blank, at the PORT line", () => {
  assert.deepEqual(errorsOf("[web]\nSTART_CMD=go\nPORT=\n"), [
    "t.conf:3: Cannot listen for [web] as its PORT is blank: set PORT in [web] to the port " +
    "sleepingd listens on",
  ]);
  assert.deepEqual(errorsOf("ACTIVE=yes\nPORT= # none yet\nSTART_CMD=go\n"), [
    "t.conf:2: Cannot listen for the global section as its PORT is blank: set PORT in the " +
    "global section to the port sleepingd listens on",
  ]);
  assert.deepEqual(build("[web]\nACTIVE=no\nPORT=\n").inactive, ["web"]);
});

Deno.test("buildConfig() reads CONNECT_TIMEOUT, 5 seconds by default, and refuses 0", () => {
  assert.equal(service(WEB).connectTimeout, 5);
  assert.equal(service(`CONNECT_TIMEOUT=0.5\n${WEB}`).connectTimeout, 0.5);
  assert.deepEqual(errorsOf(`${WEB}CONNECT_TIMEOUT=0\n`), [
    't.conf:4: Cannot use "CONNECT_TIMEOUT" as it must be more than 0 seconds: current value is "0"',
  ]);
});

Deno.test("buildConfig() reads the access keys, limits and PROXY_PROTOCOL, inherited from the global section", () => {
  const config = build(
    "ALLOW=10.0.0.0/8, 2001:db8::/32 192.0.2.7\nDENY=10.1.0.0/16\nMAX_CONNECTIONS=100\n" +
      "MAX_WAKES_PER_HOUR_TOTAL=20\nMAX_CONNECTIONS_TOTAL=5000\n" +
      `${WEB}MAX_CONNECTIONS_PER_SOURCE=4\nHOLD_TIMEOUT=90\nWAKE_ON=Data\nMAX_WAKES_PER_HOUR=6\n` +
      "PROXY_PROTOCOL=v2\n",
  );
  const [svc] = config.services;
  assert.deepEqual(svc.allow, ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]);
  assert.deepEqual(svc.deny, ["10.1.0.0/16"]);
  assert.deepEqual(
    [svc.maxConnections, svc.maxConnectionsPerSource, svc.holdTimeout, svc.wakeOn],
    [100, 4, 90, "data"],
  );
  assert.deepEqual([svc.maxWakesPerHour, svc.proxyProtocol], [6, "v2"]);
  assert.deepEqual(
    [config.global.maxWakesPerHourTotal, config.global.maxConnectionsTotal],
    [20, 5000],
  );
  const unlimited = service(`${WEB}MAX_CONNECTIONS=0\nMAX_WAKES_PER_HOUR=\n`);
  assert.deepEqual([unlimited.maxConnections, unlimited.maxWakesPerHour], [undefined, undefined]);
});

Deno.test("buildConfig() reads the budget's keys, MAX_HELD_BYTES_TOTAL with or without a unit", () => {
  const config = build(`MAX_UDP_FLOWS_TOTAL=200\nMAX_HELD_BYTES_TOTAL=512K\n${WEB}`);
  assert.deepEqual([config.global.maxUdpFlowsTotal, config.global.maxHeldBytesTotal], [
    200,
    512 * 1024,
  ]);
  const held = (text: string) =>
    build(`MAX_HELD_BYTES_TOTAL=${text}\n${WEB}`).global.maxHeldBytesTotal;
  assert.deepEqual(
    ["64M", "64 MiB", "1g", "16KiB", "1.5M", "1048576", "2048b", ""].map(held),
    [2 ** 26, 2 ** 26, 2 ** 30, 16 * 1024, 1.5 * 2 ** 20, 2 ** 20, 2048, undefined],
  );
  assert.equal(build(`MAX_UDP_FLOWS_TOTAL=0\n${WEB}`).global.maxUdpFlowsTotal, undefined);
  assert.deepEqual(
    ["0", "0.1", "64X", "-1"].flatMap((text) => errorsOf(`MAX_HELD_BYTES_TOTAL=${text}\n${WEB}`)),
    ["0", "0.1", "64X", "-1"].map((text) =>
      't.conf:1: Cannot use "MAX_HELD_BYTES_TOTAL" as it must be a size, more than 0, in bytes ' +
      `or with K, M or G, e.g. 64M: current value is "${text}"`
    ),
  );
  assert.deepEqual(warningsOf(`${WEB}MAX_UDP_FLOWS_TOTAL=10\n`), [
    't.conf:4: Ignoring "MAX_UDP_FLOWS_TOTAL" in [web] as it can only be set in the global section',
  ]);
});

Deno.test("buildConfig() names the entry of ALLOW or DENY that is not an address or CIDR block", () => {
  assert.deepEqual(errorsOf(`${WEB}ALLOW=10.0.0.0/8 10.0.0/8\nDENY=::1,example.com\n`), [
    't.conf:4: Cannot use "ALLOW" as it must be IP addresses and CIDR blocks, e.g. ' +
    '192.0.2.0/24 2001:db8::/32: "10.0.0/8" is not an IP address or CIDR block',
    't.conf:5: Cannot use "DENY" as it must be IP addresses and CIDR blocks, e.g. ' +
    '192.0.2.0/24 2001:db8::/32: "example.com" is not an IP address or CIDR block',
  ]);
});

Deno.test("buildConfig() refuses a WAKE_ON, PROXY_PROTOCOL or count it does not know", () => {
  assert.deepEqual(
    errorsOf(`${WEB}WAKE_ON=syn\nPROXY_PROTOCOL=v3\nMAX_CONNECTIONS=-1\n`),
    [
      't.conf:4: Cannot use "WAKE_ON" as it must be one of connect, data: current value is "syn"',
      't.conf:5: Cannot use "PROXY_PROTOCOL" as it must be one of v1, v2: current value is "v3"',
      't.conf:6: Cannot use "MAX_CONNECTIONS" as it must be a whole number, 0 or more: ' +
      'current value is "-1"',
    ],
  );
});

Deno.test("buildConfig() reads COST_PER_HOUR with or without a unit, and STATE_PATH", () => {
  const config = build(
    `STATE_PATH=/srv/history\nCOST_PER_HOUR=0.5\n${WEB}\n[db]\nPORT=81\n` +
      "START_CMD=go\nCOST_PER_HOUR= 1.25  €\n",
  );
  assert.equal(config.global.statePath, "/srv/history");
  assert.deepEqual(config.services.map((service) => service.costPerHour), [
    { amount: 0.5, currency: "" },
    { amount: 1.25, currency: "€" },
  ]);
  const plain = build(WEB);
  assert.equal(plain.global.statePath, "/var/lib/sleepingd");
  assert.equal(plain.services[0].costPerHour, undefined);
});

Deno.test("buildConfig() refuses a COST_PER_HOUR that is not an amount and a unit", () => {
  const rule = "an amount, 0 or more, then an optional unit of up to 12 characters, e.g. 0.12 USD";
  assert.deepEqual(
    errorsOf(
      `${WEB}COST_PER_HOUR=cheap\n[db]\nPORT=81\nSTART_CMD=go\nCOST_PER_HOUR=-1 USD\n` +
        "[vm]\nPORT=82\nSTART_CMD=go\nCOST_PER_HOUR=0.1 US dollars\n",
    ),
    [
      `t.conf:4: Cannot use "COST_PER_HOUR" as it must be ${rule}: current value is "cheap"`,
      `t.conf:8: Cannot use "COST_PER_HOUR" as it must be ${rule}: current value is "-1 USD"`,
      `t.conf:12: Cannot use "COST_PER_HOUR" as it must be ${rule}: current value is ` +
      '"0.1 US dollars"',
    ],
  );
});

Deno.test("buildConfig() reads PROTOCOL, MORE_PORTS and UDP_FLOW_TIMEOUT", () => {
  const [game] = build(
    "[game]\nPORT=27015\nPROTOCOL=UDP\nSTART_CMD=go\nMORE_PORTS=27015 8443:443/tcp 5353:53/udp\n" +
      "UDP_FLOW_TIMEOUT=30\n",
  ).services;
  assert.equal(game.protocol, "udp");
  assert.deepEqual(game.morePorts, [
    { listen: 27015, backend: 27015, protocol: "tcp" },
    { listen: 8443, backend: 443, protocol: "tcp" },
    { listen: 5353, backend: 53, protocol: "udp" },
  ]);
  assert.equal(game.udpFlowTimeout, 30);
});

Deno.test("buildConfig() refuses a MORE_PORTS entry it cannot read, or one that repeats a port", () => {
  assert.deepEqual(
    errorsOf(
      `${WEB}MORE_PORTS=8443:443 http\n[b]\nPORT=81\nSTART_CMD=go\nMORE_PORTS=99999\n` +
        "[c]\nPORT=82\nSTART_CMD=go\nMORE_PORTS=83/udp 82 83/UDP\n",
    ),
    [
      't.conf:4: Cannot use "MORE_PORTS" as it must be a list of LISTEN[:BACKEND][/tcp|/udp]: ' +
      '"http" is not LISTEN[:BACKEND][/tcp|/udp], e.g. 8443:443 or 27015/udp',
      't.conf:8: Cannot use "MORE_PORTS" as it must be a list of LISTEN[:BACKEND][/tcp|/udp]: ' +
      '"99999": 99999 is not a port (1-65535)',
      "t.conf:12: Cannot listen on 82/tcp twice for [c]: MORE_PORTS repeats it",
      "t.conf:12: Cannot listen on 83/udp twice for [c]: MORE_PORTS repeats it",
    ],
  );
});

Deno.test("buildConfig() refuses UDP and MORE_PORTS with ROUTE_PER_CONNECTION", () => {
  assert.deepEqual(
    errorsOf(
      `${WEB}ROUTE_PER_CONNECTION=yes\nPROTOCOL=udp\n[b]\nPORT=81\nSTART_CMD=go\n` +
        "ROUTE_PER_CONNECTION=yes\nMORE_PORTS=82\n",
    ),
    [
      "t.conf:5: Cannot use PROTOCOL with ROUTE_PER_CONNECTION in [web]: a connection's own " +
      "START_CMD serves one TCP port; set ROUTE_PER_CONNECTION=no",
      "t.conf:10: Cannot use MORE_PORTS with ROUTE_PER_CONNECTION in [b]: a connection's own " +
      "START_CMD serves one TCP port; set ROUTE_PER_CONNECTION=no",
    ],
  );
});

Deno.test("buildConfig() lets TCP and UDP share a port number, not two services one port", () => {
  const both = build(
    "[dns]\nPORT=53\nPROTOCOL=udp\nSTART_CMD=go\n[dns-tcp]\nPORT=53\nSTART_CMD=go\n",
  );
  assert.equal(both.services.length, 2);
  assert.deepEqual(
    errorsOf(
      "[vm]\nPORT=22\nSTART_CMD=go\nMORE_PORTS=443 51820/udp\n[web]\nPORT=443\n" +
        "START_CMD=go\n[wg]\nPORT=51820\nPROTOCOL=udp\nSTART_CMD=go\n",
    ),
    [
      "t.conf:6: Cannot listen on port 443 for [web] as [vm] already does at t.conf:2",
      "t.conf:9: Cannot listen on port 51820/udp for [wg] as [vm] already does at t.conf:2",
    ],
  );
});

Deno.test("buildConfig() reads DEPENDS_ON; an unknown name or a cycle is an error at its line", () => {
  const ok = build(
    `${WEB}DEPENDS_ON=Data base, cache\n[Data base]\nPORT=81\nSTART_CMD=go\n` +
      "[cache]\nPORT=82\nSTART_CMD=go\n",
  );
  assert.deepEqual(ok.services[0].dependsOn, ["Data base", "cache"]);
  assert.deepEqual(
    errorsOf(
      `${WEB}DEPENDS_ON=db\n[db]\nPORT=81\nSTART_CMD=go\nDEPENDS_ON=cache, web\n` +
        "[cache]\nPORT=82\nSTART_CMD=go\nDEPENDS_ON=cache\n[api]\nPORT=83\nSTART_CMD=go\n" +
        "DEPENDS_ON=queue\n[queue]\nACTIVE=no\n",
    ),
    [
      "t.conf:4: Cannot wake [web] as DEPENDS_ON makes a cycle: web -> db -> web",
      "t.conf:12: Cannot wake [cache] as DEPENDS_ON makes a cycle: cache -> cache",
      't.conf:16: Cannot wake [api] after "queue" as no active service is named so (the ' +
      "active services: web, db, cache, api)",
    ],
  );
});

Deno.test("buildConfig() refuses DEPENDS_ON naming a ROUTE_PER_CONNECTION service, at its line", () => {
  assert.deepEqual(
    errorsOf(`${WEB}DEPENDS_ON=pool\n[pool]\nPORT=81\nSTART_CMD=go\nROUTE_PER_CONNECTION=yes\n`),
    [
      "t.conf:4: Cannot wake [web] after [pool] as it has ROUTE_PER_CONNECTION=yes: each of " +
      "its connections gets a backend of its own, so there is none to wake first",
    ],
  );
  // The other way round works: each connection of the pool wakes what it needs first.
  const [pool] = build(
    `${WEB}[pool]\nPORT=81\nSTART_CMD=go\nROUTE_PER_CONNECTION=yes\nDEPENDS_ON=web\n`,
  ).services.slice(1);
  assert.deepEqual(pool.dependsOn, ["web"]);
});

Deno.test("buildConfig() reads ON_EVENT_CMD and WEBHOOK_URL, refusing a URL that is not http(s)", () => {
  const [web] = build(`WEBHOOK_URL=https://chat.example/hook?x=1\n${WEB}ON_EVENT_CMD=notify\n`)
    .services;
  assert.deepEqual([web.webhookUrl, web.onEventCmd?.text], [
    "https://chat.example/hook?x=1",
    "notify",
  ]);
  assert.deepEqual(errorsOf(`${WEB}WEBHOOK_URL=chat.example/hook\n`), [
    't.conf:4: Cannot use "WEBHOOK_URL" as it must be an http:// or https:// URL: current value ' +
    'is "chat.example/hook"',
  ]);
});

Deno.test("buildConfig() reads ETCD_ENDPOINTS and CLUSTER_NAME, refusing an endpoint not http(s)", () => {
  const config = build(`ETCD_ENDPOINTS=http://a:2379 https://b:2379\nCLUSTER_NAME=office\n${WEB}`);
  assert.deepEqual(config.global.etcdEndpoints, ["http://a:2379", "https://b:2379"]);
  assert.equal(config.global.clusterName, "office");
  assert.deepEqual(errorsOf(`ETCD_ENDPOINTS=http://a:2379 b:2379\n${WEB}`), [
    't.conf:1: Cannot use "ETCD_ENDPOINTS" as each must be an http:// or https:// URL: "b:2379" ' +
    "is not",
  ]);
});

Deno.test("buildConfig() reads etcd's TLS files and user, each checked where it is set", async () => {
  await using dir = await tempFiles({ "ca.pem": "", "cert.pem": "", "key.pem": "", "pw": "" });
  const https = "ETCD_ENDPOINTS=https://a:2379\n";
  const config = build(
    `${https}ETCD_CA_FILE=${dir.path}/ca.pem\nETCD_CERT_FILE=${dir.path}/cert.pem\n` +
      `ETCD_KEY_FILE=${dir.path}/key.pem\nETCD_USER=sd\nETCD_PASSWORD_FILE=${dir.path}/pw\n${WEB}`,
  );
  assert.equal(config.global.etcdCaFile, `${dir.path}/ca.pem`);
  assert.deepEqual(config.global.etcdClientCert, {
    certFile: `${dir.path}/cert.pem`,
    keyFile: `${dir.path}/key.pem`,
  });
  assert.deepEqual(config.global.etcdUser, { name: "sd", passwordFile: `${dir.path}/pw` });
  assert.deepEqual(errorsOf(`${https}ETCD_CERT_FILE=${dir.path}/cert.pem\n${WEB}`), [
    't.conf:2: Cannot use "ETCD_CERT_FILE" without "ETCD_KEY_FILE": set both, or neither',
  ]);
  assert.deepEqual(errorsOf(`${https}ETCD_USER=sd\n${WEB}`), [
    't.conf:2: Cannot use "ETCD_USER" without "ETCD_PASSWORD_FILE": set both, or neither',
  ]);
  assert.deepEqual(errorsOf(`${https}ETCD_CA_FILE=${dir.path}/none.pem\n${WEB}`), [
    `t.conf:2: Cannot use "ETCD_CA_FILE" as ${dir.path}/none.pem cannot be found: No such file ` +
    `or directory (os error 2): stat '${dir.path}/none.pem'`,
  ]);
  assert.deepEqual(
    errorsOf(`ETCD_ENDPOINTS=http://a:2379\nETCD_CA_FILE=${dir.path}/ca.pem\n${WEB}`),
    [
      't.conf:2: Cannot use "ETCD_CA_FILE" with an http:// endpoint ("http://a:2379"): TLS ' +
      "needs https:// URLs",
    ],
  );
  assert.deepEqual(
    warningsOf(
      `ETCD_ENDPOINTS=http://a:2379\nETCD_USER=sd\nETCD_PASSWORD_FILE=${dir.path}/pw\n${WEB}` +
        "CHECK_CMD=is-up\n",
    ),
    [
      't.conf:2: ETCD_USER\'s password crosses the network unencrypted to "http://a:2379": use ' +
      "https://",
    ],
  );
  assert.deepEqual(warningsOf(`ETCD_USER=sd\n${WEB}`), [
    't.conf:1: Ignoring "ETCD_USER" as ETCD_ENDPOINTS is not set',
  ]);
});

Deno.test("buildConfig() reads CLUSTER_TARGETS: addresses and CIDR blocks, each with an optional port", () => {
  const etcd = "ETCD_ENDPOINTS=http://a:2379\n";
  const targets = "10.0.0.5:5432 10.0.1.0/24 [2001:db8::5]:22 2001:db8::/64 [2001:db8::/64]:22";
  assert.deepEqual(
    service(`${etcd}CLUSTER_TARGETS=${targets}\n${WEB}`).clusterTargets,
    targets.split(" "),
  );
  assert.equal(service(`${etcd}${WEB}`).clusterTargets, undefined);
  assert.deepEqual(errorsOf(`${etcd}${WEB}CLUSTER_TARGETS=10.0.0.5:99999 web.example\n`), [
    't.conf:5: Cannot use "CLUSTER_TARGETS" as "10.0.0.5:99999" has a port outside 1-65535',
    't.conf:5: Cannot use "CLUSTER_TARGETS" as "web.example" is not an IP address or CIDR ' +
    "block, with or without a port (10.0.0.5:5432)",
  ]);
  assert.deepEqual(warningsOf(`CLUSTER_TARGETS=10.0.0.5\n${WEB}`), [
    't.conf:1: Ignoring "CLUSTER_TARGETS" as ETCD_ENDPOINTS is not set',
  ]);
});

Deno.test("buildConfig() warns when several instances cannot trust a backend another one woke", () => {
  const etcd = "ETCD_ENDPOINTS=http://a:2379\n";
  assert.deepEqual(warningsOf(`${etcd}${WEB}`), [
    "t.conf:4: [web] has neither CHECK_CMD nor CLUSTER_TARGETS: a backend another instance woke " +
    "is not trusted, so this instance runs START_CMD again, which must then succeed on a backend " +
    "that is already up; set CHECK_CMD, or CLUSTER_TARGETS to the backends' addresses",
  ]);
  assert.deepEqual(warningsOf(`${etcd}${WEB}CHECK_CMD=is-up\n`), []);
  assert.deepEqual(warningsOf(`${etcd}${WEB}CLUSTER_TARGETS=10.0.0.5\n`), []);
  assert.deepEqual(warningsOf(WEB), []);
});

Deno.test("buildConfig() reads METRICS_HOSTS, refusing an entry that is not a host name", () => {
  const config = build(`METRICS_HOSTS=dash.example.com  status.example.com.\n${WEB}`);
  assert.deepEqual(config.global.metricsHosts, ["dash.example.com", "status.example.com."]);
  assert.equal(build(WEB).global.metricsHosts, undefined);
  assert.deepEqual(errorsOf(`METRICS_HOSTS=dash.example.com http://x/\n${WEB}`), [
    't.conf:1: Cannot use "METRICS_HOSTS" as each entry must be a host name: "http://x/" is not',
  ]);
});

Deno.test("buildConfig() reads PASS_ENV, inherited, refusing an entry that is no variable name", () => {
  const [web] = build(`PASS_ENV=DOCKER_HOST AWS_PROFILE\n${WEB}`).services;
  assert.deepEqual(web.passEnv, ["DOCKER_HOST", "AWS_PROFILE"]);
  assert.equal(build(WEB).services[0].passEnv, undefined);
  assert.deepEqual(errorsOf(`${WEB}PASS_ENV=HOME A-B\n`), [
    't.conf:4: Cannot use "PASS_ENV" as each entry must be a variable name: "A-B" is not',
  ]);
});

Deno.test("buildConfig() reads KEEP_AWAKE windows and TIME_ZONE", () => {
  const [web] = build(
    `TIME_ZONE=Europe/Paris\n${WEB}KEEP_AWAKE=Mon-Fri 08:00-18:00; sat,SUN 22:30-2:00;daily 12:00-13:00\n`,
  ).services;
  assert.equal(web.timeZone, "Europe/Paris");
  assert.deepEqual(web.keepAwake.map(({ days, start, end }) => ({ days, start, end })), [
    { days: [1, 2, 3, 4, 5], start: { hour: 8, minute: 0 }, end: { hour: 18, minute: 0 } },
    { days: [0, 6], start: { hour: 22, minute: 30 }, end: { hour: 2, minute: 0 } },
    { days: [0, 1, 2, 3, 4, 5, 6], start: { hour: 12, minute: 0 }, end: { hour: 13, minute: 0 } },
  ]);
});

Deno.test("buildConfig() refuses a KEEP_AWAKE window or a TIME_ZONE it cannot read", () => {
  const rule = "windows DAYS HH:MM-HH:MM separated by ;";
  assert.deepEqual(
    errorsOf(
      `${WEB}KEEP_AWAKE=weekdays 08:00-18:00\nTIME_ZONE=Mars/Olympus\n[b]\nPORT=81\n` +
        "START_CMD=go\nKEEP_AWAKE=Mon 25:00-26:00\n",
    ),
    [
      `t.conf:4: Cannot use "KEEP_AWAKE" as it must be ${rule}: "weekdays 08:00-18:00": ` +
      '"weekdays" is no day: use Mon, Tue, ..., Sun, ranges (Mon-Fri), or daily',
      't.conf:5: Cannot use "TIME_ZONE" as it must be a time zone, e.g. Europe/Paris or UTC: ' +
      'current value is "Mars/Olympus"',
      `t.conf:9: Cannot use "KEEP_AWAKE" as it must be ${rule}: "Mon 25:00-26:00": 25:00 is ` +
      "no time of day",
    ],
  );
});

Deno.test("buildConfig() refuses an active service without START_CMD and CHECK_CMD, with a hint", () => {
  assert.deepEqual(errorsOf("\n[web]\nPORT=80\nSTART_CMD=false\n"), [
    "t.conf:2: Cannot wake [web] as it has neither START_CMD nor CHECK_CMD: set START_CMD in [web]",
  ]);
  assert.deepEqual(errorsOf("ACTIVE=yes\nPORT=80\n"), [
    "t.conf:1: Cannot wake the global section as it has neither START_CMD nor CHECK_CMD: " +
    "set START_CMD in the global section",
  ]);
});

Deno.test("buildConfig() refuses two active services on one port, naming both places", () => {
  assert.deepEqual(errorsOf(`${WEB}[api]\nSTART_CMD=go\nPORT=8080\n`), [
    "t.conf:6: Cannot listen on port 8080 for [api] as [web] already does at t.conf:2",
  ]);
});

Deno.test("buildConfig() refuses one port on a wildcard and on a specific address", () => {
  assert.deepEqual(errorsOf(`${WEB}[api]\nSTART_CMD=go\nPORT=8080\nLISTEN_ADDRESS=127.0.0.1\n`), [
    "t.conf:6: Cannot listen on port 8080 for [api] as [web] already does at t.conf:2",
  ]);
});

Deno.test("buildConfig() accepts one port on two different addresses", () => {
  const config = build(
    "START_CMD=go\nPORT=8080\n" +
      "[a]\nPORT=8080\nLISTEN_ADDRESS=127.0.0.1\n[b]\nPORT=8080\nLISTEN_ADDRESS=127.0.0.2\n",
  );
  assert.equal(config.services.length, 2);
});

Deno.test("buildConfig() ignores the port of an inactive service", () => {
  assert.equal(build(`${WEB}[old]\nACTIVE=no\nPORT=8080\n`).services.length, 1);
});

Deno.test("buildConfig() does not require PORT or commands of an inactive service", () => {
  assert.deepEqual(build("[later]\nACTIVE=no\n").inactive, ["later"]);
});

Deno.test("buildConfig() still checks the values of an inactive service", () => {
  assert.deepEqual(errorsOf("[later]\nACTIVE=no\nPORT=http\n"), [
    't.conf:3: Cannot use "PORT" as it must be an integer from 1 to 65535: current value is "http"',
  ]);
});

Deno.test("buildConfig() reports every error at once, in line order", () => {
  try {
    build("IDLE_TIME=x\n[a]\nPORT=0\nSTART_CMD=go\n[b]\nSTART_CMD=go\n[c]\nPORT=9\nACTIVE=2\n");
    assert.fail("expected the configuration to be refused");
  } catch (error) {
    assert.ok(error instanceof InvalidConfigError);
    assert.equal(
      error.message,
      "Cannot use the configuration as it has 4 errors:\n" +
        't.conf:1: Cannot use "IDLE_TIME" as it must be a number of seconds, 0 or more: ' +
        'current value is "x"\n' +
        't.conf:3: Cannot use "PORT" as it must be an integer from 1 to 65535: ' +
        'current value is "0"\n' +
        "t.conf:5: Cannot listen for [b] as it has no PORT: set PORT in [b]\n" +
        't.conf:9: Cannot use "ACTIVE" as it must be yes, no, true, false, 1 or 0: ' +
        'current value is "2"',
    );
    assert.deepEqual(
      error.errors.map((e) => [e instanceof ConfigError, e.file, e.line, e.key]),
      [
        [true, "t.conf", 1, "IDLE_TIME"],
        [true, "t.conf", 3, "PORT"],
        [true, "t.conf", 5, "PORT"],
        [true, "t.conf", 9, "ACTIVE"],
      ],
    );
  }
});

Deno.test("buildConfig() warns about an unknown key and suggests the closest known key", () => {
  assert.deepEqual(warningsOf(`${WEB}PROT=80\nstart_cmd=x\nIDLE_CHECK_INTERVALL=3\nFOO=1\n`), [
    't.conf:4: Ignoring unknown key "PROT": did you mean "PORT"?',
    't.conf:5: Ignoring unknown key "start_cmd": did you mean "START_CMD"?',
    't.conf:6: Ignoring unknown key "IDLE_CHECK_INTERVALL": did you mean "IDLE_CHECK_INTERVAL"?',
    't.conf:7: Ignoring unknown key "FOO"',
  ]);
});

Deno.test("buildConfig() suggests the key meant by the names people write for it", () => {
  const text = `${WEB}START_COMMAND=go\nSTOP_COMMAND=halt\nIDLE_TIMEOUT=60\n` +
    "check_command=x\nTIMEOUT=10\nLISTEN=127.0.0.1\n";
  assert.deepEqual(warningsOf(text), [
    't.conf:4: Ignoring unknown key "START_COMMAND": did you mean "START_CMD"?',
    't.conf:5: Ignoring unknown key "STOP_COMMAND": did you mean "STOP_CMD"?',
    't.conf:6: Ignoring unknown key "IDLE_TIMEOUT": did you mean "IDLE_TIME"?',
    't.conf:7: Ignoring unknown key "check_command": did you mean "CHECK_CMD"?',
    't.conf:8: Ignoring unknown key "TIMEOUT": did you mean "EXEC_CMD_TIMEOUT" (how long a ' +
    'command may run), "READY_TIMEOUT" (how long the backend may take to accept) or ' +
    '"IDLE_TIME" (how long idle before STOP_CMD)?',
    't.conf:9: Ignoring unknown key "LISTEN": did you mean "LISTEN_ADDRESS"?',
  ]);
});

Deno.test("buildConfig() refuses a PORT or MORE_PORTS that METRICS_ADDRESS listens on", () => {
  const metrics = "METRICS_ADDRESS=127.0.0.1:9180\n";
  assert.deepEqual(errorsOf(`${metrics}[web]\nPORT=9180\nSTART_CMD=go\n`), [
    "t.conf:3: Cannot listen on port 9180 for [web] as METRICS_ADDRESS (t.conf:1) serves the " +
    "dashboard on it: choose another PORT or METRICS_ADDRESS",
  ]);
  assert.deepEqual(
    errorsOf(
      `${metrics}[vm]\nLISTEN_ADDRESS=127.0.0.1\nPORT=2222\nMORE_PORTS=9180/udp 8443 9180:80\n` +
        "START_CMD=go\n",
    ),
    [
      "t.conf:5: Cannot listen on port 9180 for [vm] as METRICS_ADDRESS (t.conf:1) serves the " +
      "dashboard on it: choose another MORE_PORTS or METRICS_ADDRESS",
    ],
  );
  // Another address, or UDP, shares nothing with the dashboard.
  const apart = build(
    `${metrics}[web]\nLISTEN_ADDRESS=192.0.2.1\nPORT=9180\nSTART_CMD=go\n` +
      "[dns]\nPROTOCOL=udp\nPORT=9180\nSTART_CMD=go\n",
  );
  assert.equal(apart.services.length, 2);
});

Deno.test("buildConfig() warns when IDLE_TIME has no IDLE_CHECK_INTERVAL or no STOP_CMD", () => {
  assert.deepEqual(
    warningsOf(
      "IDLE_CHECK_INTERVAL=5\n[web]\nPORT=80\nSTART_CMD=go\nIDLE_TIME=60\n" +
        "[db]\nPORT=81\nSTART_CMD=go\nSTOP_CMD=halt\nIDLE_TIME=60\nIDLE_CHECK_INTERVAL=0\n" +
        "[ok]\nPORT=82\nSTART_CMD=go\nSTOP_CMD=halt\nIDLE_TIME=60\n" +
        "[demo]\nPORT=83\nSTART_CMD=go\n",
    ),
    [
      "t.conf:5: Nothing stops the backend of [web]: IDLE_TIME is set but STOP_CMD is not, so an " +
      'idle stop and "sleepingd stop" leave it running (and the next wake runs START_CMD again); ' +
      "set STOP_CMD",
      "t.conf:10: No idle check runs for [db]: IDLE_TIME is set but IDLE_CHECK_INTERVAL is not, " +
      "so it is never stopped for being idle; set IDLE_CHECK_INTERVAL, e.g. to 10",
    ],
  );
});

Deno.test("buildConfig() keeps the warnings of a refused configuration", () => {
  try {
    build("[web]\nSTART_CMD=go\nPROT=80\n");
    assert.fail("expected the configuration to be refused");
  } catch (error) {
    assert.ok(error instanceof InvalidConfigError);
    assert.deepEqual(error.warnings.map(formatIssue), [
      't.conf:3: Ignoring unknown key "PROT": did you mean "PORT"?',
    ]);
  }
});

Deno.test("buildConfig() warns about a global-only key in a section and ignores it", () => {
  const config = build(`${WEB}VARRUN_PATH=/tmp/x\nSHUTDOWN_GRACE=abc\n`);
  assert.deepEqual(config.warnings.map(formatIssue), [
    't.conf:4: Ignoring "VARRUN_PATH" in [web] as it can only be set in the global section',
    't.conf:5: Ignoring "SHUTDOWN_GRACE" in [web] as it can only be set in the global section',
  ]);
  assert.equal(config.global.varrunPath, "/var/run/sleepingd");
});

Deno.test("buildConfig() treats __proto__ as an unknown key without touching any prototype", () => {
  const config = build(`__proto__=polluted\nconstructor=x\n${WEB}__proto__=x\n`);
  assert.equal(config.warnings.length, 3);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.getPrototypeOf(config.global), Object.prototype);
});

Deno.test("buildConfig() lets a later file override global keys and the keys of a section", () => {
  const config = buildConfig([
    parseConfigText("USER=a\nIDLE_TIME=5\n[web]\nPORT=1\nSTART_CMD=one\nSTOP_CMD=s\n", "1.conf"),
    parseConfigText("USER=b\n[web]\nSTART_CMD=two\n[db]\nPORT=2\nSTART_CMD=d\n", "2.conf"),
  ]);
  assert.deepEqual(config.files, ["1.conf", "2.conf"]);
  assert.deepEqual(
    config.services.map((s) => [s.name, s.port, s.startCmd?.text, s.stopCmd?.text, s.user]),
    [["web", 1, "two", "s", "b"], ["db", 2, "d", undefined, "b"]],
  );
  assert.deepEqual(config.services[0].startCmd?.source, { file: "2.conf", line: 3 });
  assert.equal(config.services[0].idleTime, 5);
});

Deno.test("loadConfig() reads exactly the named files, in order", async () => {
  await using dir = await tempFiles({
    "a.conf": "[web]\nPORT=1\nSTART_CMD=a\n",
    "b.conf": "[web]\nPORT=2\n",
  });
  const config = await loadConfig([`${dir.path}/a.conf`, `${dir.path}/b.conf`]);
  assert.deepEqual(config.files, [`${dir.path}/a.conf`, `${dir.path}/b.conf`]);
  assert.deepEqual(config.services.map(({ port }) => port), [2]);
});

Deno.test("loadConfig() refuses a named file that does not exist, naming it", async () => {
  await using dir = await tempFiles({ "a.conf": WEB });
  await assert.rejects(
    loadConfig([`${dir.path}/a.conf`, `${dir.path}/missing.conf`]),
    { message: `Cannot read config file "${dir.path}/missing.conf": it does not exist` },
  );
});

Deno.test("loadConfig() reports the syntax errors of every file at once", async () => {
  await using dir = await tempFiles({ "a.conf": "oops\n", "b.conf": "[web]\nCMD='x\n" });
  await assert.rejects(
    loadConfig([`${dir.path}/a.conf`, `${dir.path}/b.conf`]),
    (error) => {
      assert.ok(error instanceof InvalidConfigError);
      assert.deepEqual(error.errors.map(({ message }) => message), [
        `${dir.path}/a.conf:1: Cannot read line "oops": expected KEY=value or [section]`,
        `${dir.path}/b.conf:2: Cannot read "CMD": the quote opened here is never closed`,
      ]);
      return true;
    },
  );
});

Deno.test("loadConfig() reports only the unreadable lines, and still says VARRUN_PATH", async () => {
  await using dir = await tempFiles({
    "a.conf": "VARRUN_PATH=/run/mine\n[web]\nPORT 80\nSTART_CMD=go\n",
  });
  await assert.rejects(loadConfig([`${dir.path}/a.conf`]), (error: InvalidConfigError) => {
    assert.deepEqual(error.errors.map(({ message }) => message), [
      `${dir.path}/a.conf:3: Cannot read line "PORT 80": expected KEY=value or [section]`,
    ], "no follow-on error for the PORT that could not be read");
    assert.equal(error.varrunPath, "/run/mine", "the CLI still finds the running daemon");
    return true;
  });
});

Deno.test("loadConfig() reads every file of the search list that exists, then conf.d in order", async () => {
  await using dir = await tempFiles({
    "first.conf": "USER=first\nEXEC_CMD_TIMEOUT=1\n",
    "second.conf": `USER=second\n${WEB}`,
    "conf.d/20-b.conf": "[web]\nSTART_CMD=b\n",
    "conf.d/10-a.conf": "[web]\nSTART_CMD=a\nSTOP_CMD=a\n",
    "conf.d/ignored.txt": "[web]\nSTOP_CMD=txt\n",
  });
  const search: SearchList = {
    files: [`${dir.path}/first.conf`, `${dir.path}/absent.conf`, `${dir.path}/second.conf`],
    confDir: `${dir.path}/conf.d`,
  };
  const config = await loadConfig([], search);
  assert.deepEqual(config.files, [
    `${dir.path}/first.conf`,
    `${dir.path}/second.conf`,
    `${dir.path}/conf.d/10-a.conf`,
    `${dir.path}/conf.d/20-b.conf`,
  ]);
  const [web] = config.services;
  assert.deepEqual(
    [web.user, web.startCmd?.text, web.stopCmd?.text, web.startCmd?.timeout],
    ["second", "b", "a", 1],
  );
});

Deno.test("loadConfig() expands ~/ in the search list to the home folder", async () => {
  await using dir = await tempFiles({ ".sleepingd": WEB });
  const home = Deno.env.get("HOME");
  Deno.env.set("HOME", dir.path);
  try {
    const config = await loadConfig([], { files: ["~/.sleepingd"], confDir: `${dir.path}/no` });
    assert.deepEqual(config.files, [`${dir.path}/.sleepingd`]);
  } finally {
    if (home === undefined) Deno.env.delete("HOME");
    else Deno.env.set("HOME", home);
  }
});

Deno.test("loadConfig() says where it looked when no file is found", async () => {
  await using dir = await tempFiles({});
  await assert.rejects(
    loadConfig([], { files: [`${dir.path}/a.conf`, "~/.b"], confDir: `${dir.path}/conf.d` }),
    {
      message: `Cannot find a configuration file: looked for ${dir.path}/a.conf, ~/.b and ` +
        `${dir.path}/conf.d/*.conf; name one with -f FILE`,
    },
  );
});

Deno.test("the shipped sleepingd.conf documents every key, commented out at its default", async () => {
  const shipped = await Deno.readTextFile(`${REPO}sleepingd.conf`);
  const globalPart = shipped.slice(0, shipped.search(/^\[/m)).split("\n");
  for (const key of KEYS) {
    const at = globalPart.indexOf(`#${key.name}=${key.globalDefault ?? key.default}`);
    assert.ok(at > 0, `sleepingd.conf does not list #${key.name}= at its default`);
    const doc: string[] = [];
    for (let line = at - 1; globalPart[line].startsWith("# "); line--) {
      doc.unshift(globalPart[line].slice(2));
    }
    assert.equal(doc.join(" "), key.doc, `the doc of ${key.name} differs from keys.ts`);
  }
});

Deno.test("the shipped sleepingd.conf names only files the packages install, in plain words", async () => {
  const shipped = await Deno.readTextFile(`${REPO}sleepingd.conf`);
  const paths = [...shipped.matchAll(/\/usr\/share\/doc\/sleepingd\/examples\/([\w./-]+[\w])/g)];
  assert.ok(paths.length >= 3, "the docker section names its script");
  for (const [path, example] of paths) {
    const info = await Deno.stat(`${REPO}examples/${example}`).catch(() => undefined);
    assert.ok(info, `${path}: there is no examples/${example} to install there`);
  }
  for (const [, example] of shipped.matchAll(/^[A-Z_]+_CMD=".*\/examples\/(\S+)/gm)) {
    const { mode } = await Deno.stat(`${REPO}examples/${example}`);
    assert.ok((mode! & 0o111) !== 0, `examples/${example} is not executable`);
  }
  assert.doesNotMatch(shipped, /\bseed\b/i);
});

Deno.test("the shipped sleepingd.conf is valid, with the demo active and no warnings", async () => {
  const config = await loadConfig([`${REPO}sleepingd.conf`]);
  assert.deepEqual(config.warnings, []);
  assert.deepEqual(config.services.map(({ name, port }) => [name, port]), [
    ["Simple web server for testing purposes", 10080],
  ]);
  assert.deepEqual(config.inactive, ["Nodeapp in docker containers"]);
});
