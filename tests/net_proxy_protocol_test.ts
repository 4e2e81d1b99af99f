import assert from "node:assert/strict";
import { proxyHeader } from "../src/net/proxy_protocol.ts";
import { text } from "./_net.ts";

/** A TCP address as Deno's `conn.remoteAddr` and `conn.localAddr` give it. */
function tcp(hostname: string, port: number): Deno.NetAddr {
  return { transport: "tcp", hostname, port };
}

/** Bytes written in hex, spaces ignored. */
function hex(digits: string): Uint8Array {
  const clean = digits.replaceAll(" ", "");
  return Uint8Array.from(clean.match(/../g)!, (pair) => parseInt(pair, 16));
}

/** The version 2 signature, `\r\n\r\n\0\r\nQUIT\n`, then version 2 / PROXY. */
const V2 = "0d0a0d0a000d0a515549540a 21";

Deno.test("proxyHeader() writes TCP over IPv4 as a v1 line and as v2 bytes", () => {
  const client = tcp("192.0.2.7", 51234);
  const local = tcp("198.51.100.1", 8080);
  assert.equal(
    text(proxyHeader("v1", client, local)),
    "PROXY TCP4 192.0.2.7 198.51.100.1 51234 8080\r\n",
  );
  // family TCP4, 12 bytes: 192.0.2.7, 198.51.100.1, 51234 (0xc822), 8080 (0x1f90)
  assert.deepEqual(
    proxyHeader("v2", client, local),
    hex(`${V2} 11 000c c0000207 c6336401 c822 1f90`),
  );
});

Deno.test("proxyHeader() sends a mapped IPv4 connection (a dual-stack listener's) as TCP4", () => {
  const client = tcp("::ffff:192.0.2.7", 51234);
  const local = tcp("::ffff:198.51.100.1", 8080);
  assert.equal(
    text(proxyHeader("v1", client, local)),
    "PROXY TCP4 192.0.2.7 198.51.100.1 51234 8080\r\n",
  );
  assert.deepEqual(
    proxyHeader("v2", client, local),
    hex(`${V2} 11 000c c0000207 c6336401 c822 1f90`),
  );
});

Deno.test("proxyHeader() writes TCP over IPv6, with compressed addresses in 16 bytes", () => {
  const client = tcp("2001:db8::1", 51234);
  const local = tcp("2001:db8:0:0:1::2", 443);
  assert.equal(
    text(proxyHeader("v1", client, local)),
    "PROXY TCP6 2001:db8::1 2001:db8::1:0:0:2 51234 443\r\n",
  );
  // family TCP6, 36 bytes: 2001:db8::1, 2001:db8::1:0:0:2, 51234 (0xc822), 443 (0x01bb)
  assert.deepEqual(
    proxyHeader("v2", client, local),
    hex(
      `${V2} 21 0024` +
        "20010db8 00000000 00000000 00000001" +
        "20010db8 00000000 00010000 00000002" +
        "c822 01bb",
    ),
  );
});

Deno.test("proxyHeader() reads every IPv6 form: leading ::, embedded IPv4, upper case", () => {
  const client = tcp("64:FF9B::192.0.2.7", 1);
  const local = tcp("::1", 65535);
  assert.equal(
    text(proxyHeader("v1", client, local)),
    "PROXY TCP6 64:ff9b::c000:207 ::1 1 65535\r\n",
  );
  assert.deepEqual(
    proxyHeader("v2", client, local),
    hex(
      `${V2} 21 0024` +
        "0064ff9b 00000000 00000000 c0000207" +
        "00000000 00000000 00000000 00000001" +
        "0001 ffff",
    ),
  );
});

Deno.test("proxyHeader() maps an IPv4 end into IPv6 when the other end is IPv6", () => {
  const client = tcp("192.0.2.7", 51234);
  const local = tcp("2001:db8::2", 443);
  assert.equal(
    text(proxyHeader("v1", client, local)),
    "PROXY TCP6 ::ffff:c000:207 2001:db8::2 51234 443\r\n",
  );
  assert.deepEqual(
    proxyHeader("v2", client, local),
    hex(
      `${V2} 21 0024` +
        "00000000 00000000 0000ffff c0000207" +
        "20010db8 00000000 00000000 00000002" +
        "c822 01bb",
    ),
  );
});

Deno.test("proxyHeader() refuses an address that is not TCP with an IP and a port", () => {
  const local = tcp("198.51.100.1", 8080);
  const udp: Deno.NetAddr = { transport: "udp", hostname: "192.0.2.7", port: 53 };
  for (const version of ["v1", "v2"] as const) {
    assert.throws(() => proxyHeader(version, udp, local), {
      name: "TypeError",
      message: 'Cannot write a PROXY protocol header for the client address {"transport":"udp",' +
        '"hostname":"192.0.2.7","port":53}: expected TCP with an IP address and a port',
    });
  }
  const unix = { transport: "unix", path: "/run/app.sock" } as unknown as Deno.NetAddr;
  assert.throws(() => proxyHeader("v1", tcp("192.0.2.7", 1), unix), {
    name: "TypeError",
    message: 'Cannot write a PROXY protocol header for the local address {"transport":"unix",' +
      '"path":"/run/app.sock"}: expected TCP with an IP address and a port',
  });
  for (const client of [tcp("localhost", 1), tcp("10.1", 1), tcp("fe80::1%eth0", 1)]) {
    assert.throws(() => proxyHeader("v2", client, local), {
      name: "TypeError",
      message: new RegExp(`the client address .*"hostname":"${client.hostname}"`),
    });
  }
  for (const port of [-1, 65536, 1.5]) {
    assert.throws(() => proxyHeader("v2", tcp("192.0.2.7", port), local), {
      name: "TypeError",
      message: new RegExp(`the client address .*"port":${port}}`),
    });
  }
});
