import assert from "node:assert/strict";
import { AddressRules, parseAddressRule } from "../src/config/address_rules.ts";

Deno.test("AddressRules.refusal() lets DENY win over ALLOW, for IPv4, IPv6 and IPv4-mapped clients", () => {
  const rules = new AddressRules(
    ["10.0.0.0/8", "2001:db8::/32", "::ffff:192.168.0.0/112"],
    ["10.1.0.0/16", "::1"],
  );
  const verdicts = [
    "10.2.3.4",
    "::ffff:10.2.3.4",
    "10.1.2.3",
    "::ffff:10.1.2.3",
    "2001:db8::5",
    "::1",
    "127.0.0.1",
    "192.168.3.4",
  ].map((address) => [address, rules.refusal(address)?.message ?? "in"]);
  assert.deepEqual(verdicts, [
    ["10.2.3.4", "in"],
    ["::ffff:10.2.3.4", "in"],
    ["10.1.2.3", "denied by DENY 10.1.0.0/16"],
    ["::ffff:10.1.2.3", "denied by DENY 10.1.0.0/16"],
    ["2001:db8::5", "in"],
    ["::1", "denied by DENY ::1"],
    ["127.0.0.1", "not in ALLOW"],
    ["192.168.3.4", "in"],
  ]);
});

Deno.test("AddressRules.refusal() lets every client in without rules, and any but DENY's with DENY only", () => {
  assert.equal(new AddressRules([], []).empty, true);
  const denyOnly = new AddressRules([], ["192.0.2.0/24"]);
  assert.equal(denyOnly.refusal("198.51.100.7"), undefined);
  assert.deepEqual(denyOnly.refusal("192.0.2.9"), {
    list: "DENY",
    message: "denied by DENY 192.0.2.0/24",
  });
});

Deno.test("parseAddressRule() takes addresses and CIDR blocks, and refuses short IPv4 forms and names", () => {
  for (const rule of ["192.0.2.7", "10.0.0.0/8", "2001:db8::/32", "::1", "::ffff:10.0.0.0/104"]) {
    assert.equal(parseAddressRule(rule).text, rule);
  }
  for (const rule of ["10.0.0/8", "10.1", "example.com", "10.0.0.0/33", "2001:db8::/129", ""]) {
    assert.throws(
      () => parseAddressRule(rule),
      new SyntaxError(`"${rule}" is not an IP address or CIDR block`),
    );
  }
});
