/**
 * HOSTNAMES, WAITING_PAGE, WAITING_PAGE_AFTER, WAITING_PAGE_FILE and
 * HOSTNAME_TIMEOUT as the configuration reads them: what a shared port
 * takes, and every mistake refused with its file:line.
 */
import assert from "node:assert/strict";
import { formatIssue } from "../src/config/config_error.ts";
import { HostTable, normalizeHostname, parseHostPattern } from "../src/config/hostnames.ts";
import { build, errorsOf } from "./_config.ts";
import { tempFiles } from "./_helpers.ts";

/** A section on port 80 with `more` lines. */
const section = (name: string, more = "") => `[${name}]\nPORT=80\nSTART_CMD=go\n${more}`;

Deno.test("HOSTNAMES: names, wildcards and * lowercased; WAKE_ON=data implied", () => {
  const config = build(
    section("a", "HOSTNAMES=App.Example.com. *.Preview.example.com\n") +
      section("b", "HOSTNAMES=*\n"),
  );
  assert.deepEqual(config.services.map((service) => [service.hostnames, service.wakeOn]), [
    [["app.example.com", "*.preview.example.com"], "data"],
    [["*"], "data"],
  ]);
  assert.deepEqual(config.warnings, []);
  assert.equal(config.global.hostnameTimeout, 10);
  assert.equal(build(section("a")).services[0].hostnames, undefined);
});

Deno.test("HOSTNAMES is not inherited from the global section", () => {
  // Each section keeps a port of its own: the global HOSTNAMES does not make them share.
  assert.deepEqual(
    errorsOf("HOSTNAMES=*\n[a]\nPORT=80\nSTART_CMD=go\n[b]\nPORT=80\nSTART_CMD=go\n"),
    [
      "t.conf:6: Cannot listen on port 80 for [b] as [a] already does at t.conf:3",
    ],
  );
});

Deno.test("a bad pattern is refused with its line and what is wrong with it", () => {
  const cases: [string, RegExp][] = [
    ["a*.example.com", /a \* stands alone or as the whole first label/],
    ["*.*.example.com", /a \* stands alone/],
    ["bücher.example", /punycode/],
    ["-a.example", /labels of letters, digits, - and _/],
    ["a..b", /labels of letters/],
  ];
  for (const [pattern, reason] of cases) {
    const [error] = errorsOf(section("a", `HOSTNAMES=${pattern}\n`));
    assert.match(
      error,
      /^t\.conf:4: Cannot use "HOSTNAMES" as it must be names separated by spaces/,
    );
    assert.match(error, reason, pattern);
  }
});

Deno.test("a shared port: a service without HOSTNAMES, other addresses, a name twice, all at their line", () => {
  assert.deepEqual(
    errorsOf(section("a", "HOSTNAMES=a.test\n") + section("b")),
    [
      "t.conf:6: Cannot share port 80 between [b] and [a] (t.conf:2) as [b] has no HOSTNAMES: " +
      "every service of a port shared by name names its hosts (HOSTNAMES=app.example.com, or * " +
      "for the names no other service takes)",
    ],
  );
  assert.deepEqual(
    errorsOf(
      section("a", "HOSTNAMES=a.test\nLISTEN_ADDRESS=::\n") +
        section("b", "HOSTNAMES=b.test\nLISTEN_ADDRESS=127.0.0.1\n"),
    ),
    [
      "t.conf:7: Cannot share port 80 between [a] (LISTEN_ADDRESS ::) and [b] (LISTEN_ADDRESS " +
      "127.0.0.1): services sharing a port by name listen on the same addresses; give them " +
      "the same LISTEN_ADDRESS",
    ],
  );
  assert.deepEqual(
    errorsOf(
      section("a", "HOSTNAMES=a.test *.x.test *\n") +
        section("b", "HOSTNAMES=b.test *.X.test\n") +
        section("c", "HOSTNAMES=* b.test c.test c.test\n"),
    ),
    [
      't.conf:8: Cannot route "*.x.test" on port 80 to [b] as [a] takes it already at t.conf:4: ' +
      "each name goes to one service",
      "t.conf:12: Cannot route the names no other service takes (*) on port 80 to [c] as [a] " +
      "takes it already at t.conf:4: each name goes to one service",
      't.conf:12: Cannot route "b.test" on port 80 to [c] as [b] takes it already at t.conf:8: ' +
      "each name goes to one service",
      't.conf:12: Cannot take "c.test" twice for [c]: HOSTNAMES repeats it',
    ],
  );
  // On other ports, or other addresses of one port, the same name is no clash.
  build(section("a", "HOSTNAMES=a.test\n") + "[b]\nPORT=81\nSTART_CMD=go\nHOSTNAMES=a.test\n");
  build(
    section("a", "HOSTNAMES=a.test\nLISTEN_ADDRESS=127.0.0.1\n") +
      section("b", "HOSTNAMES=a.test\nLISTEN_ADDRESS=127.0.0.2\n"),
  );
});

Deno.test("HOSTNAMES and WAITING_PAGE with PROTOCOL=udp are refused; WAKE_ON=connect is ignored with a warning", () => {
  assert.deepEqual(errorsOf(section("a", "PROTOCOL=udp\nHOSTNAMES=a.test\nWAITING_PAGE=yes\n")), [
    "t.conf:5: Cannot use HOSTNAMES with PROTOCOL=udp in [a]: it reads the TLS ClientHello or " +
    "HTTP request a TCP client sends first",
    "t.conf:6: Cannot use WAITING_PAGE with PROTOCOL=udp in [a]: it reads the TLS ClientHello " +
    "or HTTP request a TCP client sends first",
  ]);
  const config = build(section("a", "WAKE_ON=connect\nWAITING_PAGE=yes\n"));
  assert.equal(config.services[0].wakeOn, "data");
  assert.deepEqual(config.warnings.map(formatIssue), [
    "t.conf:4: Ignoring WAKE_ON=connect for [a]: with HOSTNAMES or WAITING_PAGE a client's first " +
    "bytes choose the service, so they wake it (WAKE_ON=data)",
  ]);
});

Deno.test("HOSTNAME_TIMEOUT must be more than 0", () => {
  assert.deepEqual(errorsOf(`HOSTNAME_TIMEOUT=0\n${section("a")}`), [
    't.conf:1: Cannot use "HOSTNAME_TIMEOUT" as it must be more than 0 seconds: current value is "0"',
  ]);
  assert.equal(build(`HOSTNAME_TIMEOUT=2.5\n${section("a")}`).global.hostnameTimeout, 2.5);
});

Deno.test("WAITING_PAGE: off by default, inherited, with WAITING_PAGE_AFTER", () => {
  assert.equal(build(section("a")).services[0].waitingPage, undefined);
  const config = build(
    `WAITING_PAGE=yes\nWAITING_PAGE_AFTER=0.5\n${section("a")}` +
      "[b]\nPORT=81\nSTART_CMD=go\nWAITING_PAGE=no\n",
  );
  assert.deepEqual(config.services.map((service) => service.waitingPage), [
    { after: 0.5 },
    undefined,
  ]);
});

Deno.test("WAITING_PAGE_FILE is read with the configuration; a file it cannot use is an error at its line", async () => {
  await using dir = await tempFiles({
    "good.html": "<p>{{service}} {{ message }}</p>",
    "unknown.html": "<p>{{service}} {{servce}} {{when}}</p>",
    "large.html": "x".repeat(64 * 1024 + 1),
  });
  await Deno.writeFile(`${dir.path}/binary.html`, Uint8Array.of(0xff, 0xfe, 0));
  const withFile = (name: string) =>
    section("a", `WAITING_PAGE=yes\nWAITING_PAGE_FILE=${dir.path}/${name}\n`);
  assert.deepEqual(build(withFile("good.html")).services[0].waitingPage, {
    after: 2,
    file: { path: `${dir.path}/good.html`, text: "<p>{{service}} {{ message }}</p>" },
  });
  const cases: [string, RegExp][] = [
    [
      "unknown.html",
      /uses \{\{servce\}\}, \{\{when\}\}, which are not a placeholder \(the placeholders: \{\{service\}\} \{\{host\}\}/,
    ],
    ["large.html", /is larger than 64 KiB/],
    ["binary.html", /is not UTF-8 text/],
    ["missing.html", /cannot read ".*missing\.html": No such file/],
    [".", /is not a regular file/],
  ];
  for (const [name, reason] of cases) {
    const [error] = errorsOf(withFile(name));
    assert.match(error, /^t\.conf:5: Cannot use "WAITING_PAGE_FILE" for \[a\]: /, name);
    assert.match(error, reason, name);
  }
  // A page where another user could plant a link (a folder every user may write) is refused.
  await Deno.mkdir(`${dir.path}/open`);
  await Deno.writeTextFile(`${dir.path}/open/page.html`, "<p>{{service}}</p>");
  await Deno.chmod(`${dir.path}/open`, 0o777);
  const [open] = errorsOf(withFile("open/page.html"));
  assert.match(
    open,
    new RegExp(
      `^t\\.conf:5: Cannot use "WAITING_PAGE_FILE" for \\[a\\]: ${dir.path}/open is writable ` +
        "by every user \\(mode 777\\), so another user could make sleepingd serve any file",
    ),
  );
  // Without WAITING_PAGE=yes the file is not read: an inherited one does not fail other sections.
  build(`WAITING_PAGE_FILE=${dir.path}/missing.html\n${section("a")}`);
});

Deno.test("HostTable: the most specific pattern wins; * is the default", () => {
  const table = new HostTable<string>();
  for (const pattern of ["a.test", "*.test", "*.b.test", "*"]) {
    assert.ok(table.add(parseHostPattern(pattern), pattern));
  }
  assert.equal(table.add("*.test", "again"), false);
  const match = (name: string) => table.match(normalizeHostname(name)!)?.pattern;
  assert.equal(match("a.test"), "a.test");
  assert.equal(match("x.a.test"), "*.test");
  assert.equal(match("x.b.test"), "*.b.test");
  assert.equal(match("y.x.b.test"), "*.b.test");
  assert.equal(match("b.test"), "*.test");
  assert.equal(match("test"), undefined);
  assert.equal(table.default, "*");
  assert.equal(normalizeHostname("[::1]"), undefined);
  assert.equal(normalizeHostname("A.Test."), "a.test");
  assert.equal(normalizeHostname("a".repeat(254)), undefined);
});
