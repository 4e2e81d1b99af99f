/**
 * FORWARD and MASQUERADE in the configuration: read with their defaults, and
 * the keys the kernel path cannot honour refused at their line.
 */
import assert from "node:assert/strict";
import { formatIssue } from "../src/config/config_error.ts";
import { kernelPathErrors } from "../src/kernel/checks.ts";
import { build, errorsOf } from "./_config.ts";

const WEB = "[web]\nPORT=8080\nSTART_CMD=start-web\n";

Deno.test("FORWARD is proxy and MASQUERADE auto unless set; both are read per service", () => {
  const { services } = build(
    `FORWARD=kernel\n${WEB}FORWARD=proxy\n[db]\nPORT=5432\nSTART_CMD=go\nMASQUERADE=YES\n`,
  );
  assert.deepEqual(services.map(({ forward, masquerade }) => [forward, masquerade]), [
    ["proxy", "auto"],
    ["kernel", "yes"],
  ]);
  assert.deepEqual(services.map((service) => service.forwardSource?.line), [5, 1]);
  assert.equal(build(WEB).services[0].forward, "proxy");
});

Deno.test("FORWARD and MASQUERADE take only their words", () => {
  assert.deepEqual(errorsOf(`${WEB}FORWARD=nat\nMASQUERADE=maybe\n`), [
    't.conf:4: Cannot use "FORWARD" as it must be one of proxy, kernel: current value is "nat"',
    't.conf:5: Cannot use "MASQUERADE" as it must be one of auto, yes, no: current value is ' +
    '"maybe"',
  ]);
});

Deno.test("FORWARD=kernel refuses PROXY_PROTOCOL, ROUTE_PER_CONNECTION and loopback-only listeners at their line", () => {
  assert.deepEqual(
    errorsOf(
      `PROXY_PROTOCOL=v2\n${WEB}FORWARD=kernel\nROUTE_PER_CONNECTION=yes\n` +
        "[local]\nPORT=81\nSTART_CMD=go\nLISTEN_ADDRESS=127.0.0.1 ::1\nFORWARD=kernel\n",
    ),
    [
      "t.conf:1: Cannot use PROXY_PROTOCOL with FORWARD=kernel in [web]: the kernel forwards the " +
      "client's packets as they are, with no header to add (with MASQUERADE=no the backend sees " +
      "the client's own address); set FORWARD=proxy or remove PROXY_PROTOCOL",
      "t.conf:1: Cannot use PROXY_PROTOCOL with FORWARD=kernel in [local]: the kernel forwards " +
      "the client's packets as they are, with no header to add (with MASQUERADE=no the backend " +
      "sees the client's own address); set FORWARD=proxy or remove PROXY_PROTOCOL",
      "t.conf:6: Cannot use ROUTE_PER_CONNECTION with FORWARD=kernel in [web]: the kernel sends " +
      "every connection of the service to one backend, while a connection's own START_CMD would " +
      "pick its own; set FORWARD=proxy or remove ROUTE_PER_CONNECTION",
      "t.conf:10: Cannot use LISTEN_ADDRESS with FORWARD=kernel in [local]: only loopback " +
      "clients can reach a loopback address, and they stay on the proxy path; set FORWARD=proxy " +
      "or remove LISTEN_ADDRESS",
    ],
  );
});

Deno.test("a service's own MASQUERADE without FORWARD=kernel is a warning; an inherited one is not", () => {
  const config = build(`MASQUERADE=no\n${WEB}\n[b]\nPORT=81\nSTART_CMD=go\nMASQUERADE=yes\n`);
  assert.deepEqual(config.warnings.map(formatIssue), [
    "t.conf:9: Ignoring MASQUERADE in [b] as FORWARD is proxy: sleepingd's own connections " +
    "reach the backend; set FORWARD=kernel for the kernel to forward",
  ]);
});

Deno.test("kernelPathErrors() names what is missing at each FORWARD=kernel service's FORWARD line", () => {
  const config = build(
    `${WEB}FORWARD=kernel\n[b]\nPORT=81\nSTART_CMD=go\n[c]\nPORT=82\nSTART_CMD=go\n` +
      "FORWARD=kernel\n",
  );
  const missing = ["the kernel path needs nft (apt-get install nftables)"];
  assert.deepEqual(kernelPathErrors(config, missing).map(formatIssue), [
    "t.conf:4: Cannot use FORWARD=kernel in [web] as the kernel path needs nft (apt-get install " +
    "nftables)",
    "t.conf:11: Cannot use FORWARD=kernel in [c] as the kernel path needs nft (apt-get install " +
    "nftables)",
  ]);
  assert.deepEqual(kernelPathErrors(build(WEB), missing), []);
});

Deno.test("FORWARD=kernel refuses HOSTNAMES and WAITING_PAGE at their line: sleepingd reads those ports' first bytes", () => {
  assert.deepEqual(
    errorsOf(
      `${WEB}FORWARD=kernel\nHOSTNAMES=app.example.com\n[page]\nPORT=81\nSTART_CMD=go\n` +
        "FORWARD=kernel\nWAITING_PAGE=yes\n",
    ),
    [
      "t.conf:5: Cannot use HOSTNAMES with FORWARD=kernel in [web]: sleepingd reads each " +
      "connection's first bytes on a port it routes by name or with a waiting page, and the " +
      "kernel path would take that port's connections from it; set FORWARD=proxy or remove " +
      "HOSTNAMES",
      "t.conf:10: Cannot use WAITING_PAGE with FORWARD=kernel in [page]: sleepingd reads each " +
      "connection's first bytes on a port it routes by name or with a waiting page, and the " +
      "kernel path would take that port's connections from it; set FORWARD=proxy or remove " +
      "WAITING_PAGE",
    ],
  );
});
