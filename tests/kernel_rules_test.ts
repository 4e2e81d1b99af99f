/**
 * The kernel path's pure parts: the nft scripts, the names and marks, what
 * conntrack, nft and /proc print, and the plan made when a service wakes.
 * Whether the kernel does what the rules say is for tests/e2e_kernel_test.ts.
 */
import assert from "node:assert/strict";
import ipaddr from "ipaddr.js";
import { buildConfig } from "../src/config/load.ts";
import { parseConfigText } from "../src/config/parse.ts";
import type { ServiceConfig } from "../src/config/types.ts";
import { parseFlows } from "../src/kernel/conntrack.ts";
import { bestRoute, hasNetAdmin, parseRoutes4, parseRoutes6 } from "../src/kernel/host.ts";
import { forwardDrops, parseCounters } from "../src/kernel/nft.ts";
import { type HostView, planRules } from "../src/kernel/plan.ts";
import {
  installScript,
  markTag,
  removeScript,
  serviceId,
  type ServiceRules,
  tableName,
  tableScript,
  withdrawScript,
} from "../src/kernel/rules.ts";

const RULES: ServiceRules = {
  name: "web",
  id: 0xa1,
  mark: 0x5d3a00a1,
  target: "10.0.2.2",
  ports: [
    { protocol: "tcp", listen: 8080, backend: 80 },
    { protocol: "udp", listen: 5353, backend: 53 },
  ],
  probePort: 8080,
  listenAddresses: ["::"],
  allow: ["10.0.0.0/8", "2001:db8::/32"],
  deny: ["10.0.1.9", "::ffff:192.0.2.0/120"],
  maxConnections: 100,
  maxConnectionsPerSource: 4,
  masquerade: false,
};

Deno.test("tableName() is sleepingd for the default VARRUN_PATH, and one of its own for any other", () => {
  assert.equal(tableName("/var/run/sleepingd"), "sleepingd");
  assert.equal(tableName("/run/sleepingd/"), "sleepingd");
  assert.match(tableName("/tmp/a"), /^sleepingd_[0-9a-f]{8}$/);
  assert.notEqual(tableName("/tmp/a"), tableName("/tmp/b"));
  assert.equal(tableName("/tmp/a"), tableName("/tmp/a/"));
});

Deno.test("marks: the daemon's tag in the upper half, a service id from its name below", () => {
  const tag = markTag("sleepingd");
  assert.equal(tag & 0xffff, 0);
  assert.notEqual(tag, 0);
  const id = serviceId("web", new Set());
  assert.ok(id >= 1 && id <= 0xffff);
  assert.equal(serviceId("web", new Set()), id, "the same name gets the same id after a restart");
  assert.notEqual(serviceId("web", new Set([id])), id, "a taken id is not given twice");
});

Deno.test("tableScript() makes the table anew, hooked for other hosts and this host's own addresses", () => {
  const script = tableScript("sleepingd", 'a "quoted"\ncomment');
  assert.match(script, /^table inet sleepingd \{\}\ndelete table inet sleepingd\n/);
  assert.ok(script.includes(`comment "a  quoted  comment"`), "quotes and newlines dropped");
  assert.match(
    script,
    /type nat hook prerouting priority dstnat;[^}]*fib daddr type local meta l4proto \. th dport vmap @ports/,
  );
  // This host's own programs, but never through loopback addresses.
  assert.match(script, /ip daddr != 127\.0\.0\.0\/8 fib daddr type local/);
  assert.match(script, /ip6 daddr != ::1 fib daddr type local/);
  for (const hook of ["forward", "input", "output"]) {
    assert.match(
      script,
      new RegExp(`type filter hook ${hook} priority filter;[^}]*ct mark vmap @marks`),
    );
  }
  assert.match(script, /ct mark @masquerade_marks masquerade/);
});

Deno.test("installScript() forwards each port to the target, leaving refused clients to sleepingd", () => {
  const script = installScript("t", RULES);
  const nat = script.split("\n").filter((line) => line.startsWith("add rule inet t nat_00a1 "))
    .map((line) => line.slice("add rule inet t nat_00a1 ".length));
  assert.deepEqual(nat, [
    "meta nfproto ipv6 return",
    "ip saddr @deny4_00a1 return",
    "ip saddr != @allow4_00a1 return",
    "tcp flags & (fin | syn | rst | ack) != syn return",
    "meta l4proto tcp th dport 8080 counter name tcp_00a1 ct mark set 0x5d3a00a1 dnat ip to 10.0.2.2:80",
    "meta l4proto udp th dport 5353 counter name udp_00a1 ct mark set 0x5d3a00a1 dnat ip to 10.0.2.2:53",
  ]);
  assert.match(script, /add element inet t allow4_00a1 \{ 10\.0\.0\.0\/8 \}/);
  // An IPv4-mapped rule is an IPv4 rule.
  assert.match(script, /add element inet t deny4_00a1 \{ 10\.0\.1\.9, 192\.0\.2\.0\/24 \}/);
  assert.match(
    script,
    /add element inet t ports \{ tcp \. 8080 : jump nat_00a1, udp \. 5353 : jump nat_00a1 \}/,
  );
  assert.match(script, /add element inet t marks \{ 0x5d3a00a1 : jump svc_00a1 \}/);
  assert.doesNotMatch(script, /masquerade_marks \{ 0x5d3a00a1 \}/);
  assert.match(
    installScript("t", { ...RULES, masquerade: true }),
    /add element inet t masquerade_marks \{ 0x5d3a00a1 \}/,
  );
});

Deno.test("installScript() refuses past the limits with ct count, and counts the backend's resets on PORT", () => {
  const svc = installScript("t", RULES).split("\n")
    .filter((line) => line.startsWith("add rule inet t svc_00a1 "))
    .map((line) => line.slice("add rule inet t svc_00a1 ".length));
  assert.deepEqual(svc, [
    "tcp flags rst ct direction reply ct state established ct status ! assured ct original proto-dst 8080 counter name gone_00a1",
    "ct state new meta l4proto tcp add @max_00a1_100 { ct mark ct count over 100 } counter name max_00a1 reject with tcp reset",
    "ct state new meta l4proto udp add @max_00a1_100 { ct mark ct count over 100 } counter name udp_refused_00a1 drop",
    "ct state new meta nfproto ipv4 meta l4proto tcp add @source4_00a1_4 { ip saddr ct count over 4 } counter name source_00a1 reject with tcp reset",
    "ct state new meta nfproto ipv4 meta l4proto udp add @source4_00a1_4 { ip saddr ct count over 4 } counter name udp_refused_00a1 drop",
    'counter name ct direction map { original : "in_00a1", reply : "out_00a1" }',
  ]);
});

Deno.test("the rules of an IPv6 backend forward IPv6 clients only, to [address]:port", () => {
  const script = installScript("t", {
    ...RULES,
    target: "fd00::2",
    listenAddresses: ["fd00::1", "10.0.0.1"],
  });
  assert.match(script, /nat_00a1 meta nfproto ipv4 return/);
  assert.match(script, /nat_00a1 ip6 daddr != \{ fd00::1 \} return/);
  assert.match(script, /nat_00a1 ip6 saddr != @allow6_00a1 return/);
  assert.match(script, /dnat ip6 to \[fd00::2\]:80/);
  assert.match(script, /add element inet t allow6_00a1 \{ 2001:db8::\/32 \}/);
  assert.doesNotMatch(script, /deny6/, "no IPv6 DENY rule, no set");
});

Deno.test("only a SYN opens a TCP connection the kernel translates; UDP has no such rule", () => {
  const syn = /nat_00a1 tcp flags & \(fin \| syn \| rst \| ack\) != syn return\n/;
  assert.match(installScript("t", RULES), syn);
  const udp = installScript("t", {
    ...RULES,
    ports: [{ protocol: "udp", listen: 5353, backend: 53 }],
    probePort: undefined,
  });
  assert.doesNotMatch(udp, /tcp flags/);
});

Deno.test("an ALLOW with no address of the backend's family forwards no client of it", () => {
  const script = installScript("t", { ...RULES, allow: ["2001:db8::/32"], deny: [] });
  assert.match(script, /nat_00a1 return\n/);
});

Deno.test("a reinstall keeps the counters; withdraw and remove work whatever is left", () => {
  const update = installScript("t", { ...RULES, maxConnections: 5 }, RULES);
  assert.match(update, /delete set inet t max_00a1_100/);
  assert.doesNotMatch(update, /delete counter/);
  assert.match(update, /add set inet t max_00a1_5 /);
  assert.deepEqual(withdrawScript("t", RULES).split("\n").filter(Boolean), [
    "add chain inet t nat_00a1",
    "add element inet t ports { tcp . 8080 : jump nat_00a1, udp . 5353 : jump nat_00a1 }",
    "delete element inet t ports { tcp . 8080, udp . 5353 }",
  ]);
  const remove = removeScript("t", RULES);
  // Every delete has its add before it: nft never fails on what is already gone.
  for (const line of remove.split("\n").filter((line) => line.startsWith("delete "))) {
    const object = line.replace(/^delete (\w+) inet t (\S+).*$/, "$1 inet t $2");
    const added = remove.indexOf(`add ${object}`);
    assert.ok(added >= 0 && added < remove.indexOf(line), `no add before: ${line}`);
  }
  assert.match(remove, /delete counter inet t in_00a1/);
});

Deno.test("parseFlows() reads conntrack -o id lines, and skips the summary", () => {
  const flows = parseFlows(
    "tcp      6 431999 ESTABLISHED src=10.0.1.2 dst=10.0.1.1 sport=45488 dport=8080 src=10.0.2.2 " +
      "dst=10.0.1.2 sport=80 dport=45488 [ASSURED] mark=1564082337 use=1 id=3662929710\n" +
      "tcp      6 118 SYN_SENT src=10.0.1.2 dst=10.0.1.1 sport=45490 dport=8080 [UNREPLIED] " +
      "src=10.0.2.2 dst=10.0.1.2 sport=80 dport=45490 mark=1564082337 use=1 id=12\n" +
      "udp      17 29 src=10.0.1.2 dst=10.0.1.1 sport=5000 dport=5353 [UNREPLIED] src=10.0.2.2 " +
      "dst=10.0.1.2 sport=53 dport=5000 mark=7 use=1 id=13\n" +
      "conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.\n",
  );
  assert.deepEqual(flows, [
    {
      protocol: "tcp",
      state: "ESTABLISHED",
      mark: 1564082337,
      id: "3662929710",
      client: "10.0.1.2",
      port: 8080,
      unreplied: false,
    },
    {
      protocol: "tcp",
      state: "SYN_SENT",
      mark: 1564082337,
      id: "12",
      client: "10.0.1.2",
      port: 8080,
      unreplied: true,
    },
    {
      protocol: "udp",
      state: "",
      mark: 7,
      id: "13",
      client: "10.0.1.2",
      port: 5353,
      unreplied: true,
    },
  ]);
});

Deno.test("parseCounters() reads nft -j list counters", () => {
  const counts = parseCounters(JSON.stringify({
    nftables: [
      { metainfo: { version: "1.0.6" } },
      {
        counter: { family: "inet", name: "in_00a1", table: "t", handle: 1, packets: 3, bytes: 180 },
      },
    ],
  }));
  assert.deepEqual([...counts], [["in_00a1", { packets: 3, bytes: 180 }]]);
});

Deno.test("forwardDrops() finds other tables' forward chains that drop, unless they let ours through", () => {
  const tag = 0x5d3a0000;
  const ruleset = (accept: boolean) =>
    JSON.stringify({
      nftables: [
        {
          chain: {
            family: "ip",
            table: "filter",
            name: "FORWARD",
            hook: "forward",
            policy: "drop",
          },
        },
        { chain: { family: "ip", table: "filter", name: "USER" } },
        { chain: { family: "inet", table: "fw", name: "fwd", hook: "forward", policy: "accept" } },
        {
          chain: { family: "inet", table: "calm", name: "fwd", hook: "forward", policy: "accept" },
        },
        {
          chain: {
            family: "inet",
            table: "mine",
            name: "forward",
            hook: "forward",
            policy: "drop",
          },
        },
        ...(accept
          ? [{
            rule: {
              family: "ip",
              table: "filter",
              chain: "FORWARD",
              expr: [
                {
                  match: {
                    op: "==",
                    left: { ct: { key: "mark" } },
                    right: { prefix: { addr: tag, len: 16 } },
                  },
                },
                { accept: null },
              ],
            },
          }]
          : []),
        {
          rule: {
            family: "ip",
            table: "filter",
            chain: "FORWARD",
            expr: [{ jump: { target: "USER" } }],
          },
        },
        { rule: { family: "ip", table: "filter", chain: "USER", expr: [{ drop: null }] } },
        { rule: { family: "inet", table: "fw", chain: "fwd", expr: [{ reject: null }] } },
      ],
    });
  assert.deepEqual(forwardDrops(ruleset(false), "mine", tag), [
    { table: "ip filter", chain: "FORWARD", policyDrop: true, dropRules: 1 },
    { table: "inet fw", chain: "fwd", policyDrop: false, dropRules: 1 },
  ]);
  assert.deepEqual(forwardDrops(ruleset(true), "mine", tag).map((drop) => drop.table), ["inet fw"]);
});

Deno.test("routes: /proc/net/route and ipv6_route, the most specific route wins", () => {
  const routes4 = parseRoutes4(
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
      "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
      "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
      "br0\t0000000A\t00000000\t0201\t0\t0\t0\t000000FF\t0\t0\t0\n",
  );
  assert.deepEqual(
    routes4.map((route) => [route.network.toString(), route.bits, route.viaGateway]),
    [
      ["0.0.0.0", 0, true],
      ["192.0.2.0", 24, false],
    ],
    "the reject route of 10.0.0.0/8 is left out",
  );
  assert.equal(bestRoute(routes4, ipaddr.parse("192.0.2.9"))?.viaGateway, false);
  assert.equal(bestRoute(routes4, ipaddr.parse("198.51.100.1"))?.viaGateway, true);
  const routes6 = parseRoutes6(
    "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 " +
      "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n" +
      "00000000000000000000000000000000 00 00000000000000000000000000000000 00 " +
      "fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0\n" +
      "fd000000000000000000000000000002 80 00000000000000000000000000000000 00 " +
      "00000000000000000000000000000000 00000000 00000003 00000000 80200001       lo\n",
  );
  assert.equal(bestRoute(routes6, ipaddr.parse("fd00::9"))?.viaGateway, false);
  assert.equal(bestRoute(routes6, ipaddr.parse("2001:db8::1"))?.viaGateway, true);
});

Deno.test("hasNetAdmin() reads CAP_NET_ADMIN from CapEff", () => {
  assert.equal(hasNetAdmin("Name:\tx\nCapEff:\t000001ffffffffff\n"), true);
  assert.equal(hasNetAdmin("CapEff:\t0000000000000000\n"), false);
  assert.equal(hasNetAdmin("CapEff:\t0000000000001000\n"), true);
});

function serviceOf(text: string): ServiceConfig {
  return buildConfig([parseConfigText(`[web]\nPORT=8080\nSTART_CMD=go\n${text}`, "t.conf")])
    .services[0];
}

function host(reach: ReturnType<HostView["reach"]>, on = true): HostView {
  return {
    reach: () => reach,
    forwarding: (family) => ({
      name: family === 4 ? "net.ipv4.ip_forward" : "net.ipv6.conf.all.forwarding",
      on,
    }),
    routeLocalnet: () => ({ name: "net.ipv4.conf.all.route_localnet", on }),
  };
}

Deno.test("planRules() masquerades only a backend behind a router, unless MASQUERADE says", () => {
  const ids = { id: 1, mark: 0x10001 };
  const plan = (text: string, where: ReturnType<HostView["reach"]>) => {
    const made = planRules(serviceOf(text), { hostname: "10.0.2.2", port: 80 }, ids, host(where));
    return "rules" in made ? made.rules.masquerade : made.why;
  };
  assert.equal(plan("", "attached"), false);
  assert.equal(plan("", "routed"), true);
  assert.equal(plan("MASQUERADE=yes\n", "attached"), true);
  assert.equal(plan("MASQUERADE=no\n", "routed"), false);
  assert.equal(plan("", "local"), false);
});

Deno.test("planRules() says why a wake stays on the proxy path", () => {
  const config = serviceOf("MORE_PORTS=8443:443 5353:53/udp\n");
  const ids = { id: 1, mark: 0x10001 };
  const why = (hostname: string, view: HostView) => {
    const made = planRules(config, { hostname, port: 80 }, ids, view);
    return "why" in made ? made.why : made.rules.ports;
  };
  assert.equal(
    why("web.local", host("routed")),
    "the target web.local:80 is a host name: the kernel forwards to addresses only",
  );
  assert.equal(
    why("10.0.2.2", host("routed", false)),
    "the backend 10.0.2.2 is on another host and net.ipv4.ip_forward is 0 (sleepingd never changes it)",
  );
  assert.equal(
    why("127.0.0.1", host("loopback", false)),
    "the target 127.0.0.1:80 is a loopback address and net.ipv4.conf.all.route_localnet is 0 " +
      "(sleepingd never changes it)",
  );
  assert.equal(
    why("::1", host("loopback")),
    "the target [::1]:80 is ::1, which no packet from outside may reach",
  );
  assert.equal(why("10.0.9.9", host("unreachable")), "this host has no route to 10.0.9.9");
  assert.deepEqual(why("10.0.2.2", host("attached")), [
    { protocol: "tcp", listen: 8080, backend: 80 },
    { protocol: "tcp", listen: 8443, backend: 443 },
    { protocol: "udp", listen: 5353, backend: 53 },
  ]);
});

Deno.test("MAX_CONNECTIONS_PER_SOURCE on the kernel path counts an IPv6 client by its /64, as the proxy path does", () => {
  const script = installScript("t", { ...RULES, target: "fd00::2" });
  assert.match(
    script,
    /meta nfproto ipv6 meta l4proto tcp add @source6_00a1_4 \{ ip6 saddr and ffff:ffff:ffff:ffff:: ct count over 4 \}/,
  );
});
