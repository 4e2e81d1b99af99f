import assert from "node:assert/strict";
import { formatAddr, formatTarget, parseTarget } from "../src/net/address.ts";

Deno.test("parseTarget() reads IPv4, IPv6 and host names as START_CMD prints them", () => {
  assert.deepEqual(parseTarget("127.0.0.1 8080"), { hostname: "127.0.0.1", port: 8080 });
  assert.deepEqual(parseTarget("  10.0.0.2\t22 \r"), { hostname: "10.0.0.2", port: 22 });
  assert.deepEqual(parseTarget("::1 5432"), { hostname: "::1", port: 5432 });
  assert.deepEqual(parseTarget("[fe80::1] 80"), { hostname: "fe80::1", port: 80 });
  assert.deepEqual(parseTarget("db.internal 6379"), { hostname: "db.internal", port: 6379 });
  assert.deepEqual(parseTarget("localhost:3000"), { hostname: "localhost", port: 3000 });
});

Deno.test("parseTarget() refuses anything else, quoting the line", () => {
  for (const line of ["started ok", "127.0.0.1", "127.0.0.1 0", "127.0.0.1 65536", "a b c", ""]) {
    assert.throws(() => parseTarget(line), {
      name: "SyntaxError",
      message:
        `Cannot read target from "${line.trim()}": expected "IP PORT", e.g. "127.0.0.1 8080"`,
    });
  }
});

Deno.test("formatTarget() brackets IPv6 and formatAddr() shows mapped IPv4 as IPv4", () => {
  assert.equal(formatTarget({ hostname: "::1", port: 80 }), "[::1]:80");
  assert.equal(formatTarget({ hostname: "127.0.0.1", port: 80 }), "127.0.0.1:80");
  assert.equal(
    formatAddr({ transport: "tcp", hostname: "::ffff:192.0.2.7", port: 5000 }),
    "192.0.2.7:5000",
  );
  assert.equal(
    formatAddr({ transport: "tcp", hostname: "2001:db8::1", port: 22 }),
    "[2001:db8::1]:22",
  );
});
