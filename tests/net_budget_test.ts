/**
 * The budget on its own: how the open file limit is shared out, caps and the
 * descriptor bound, refusals counted and said, held bytes.
 */
import assert from "node:assert/strict";
import { Budget, formatBytes, planBudget } from "../src/net/budget.ts";

const caps = (limits: ReturnType<typeof planBudget>) =>
  Object.fromEntries(Object.entries(limits.caps).map(([kind, cap]) => [kind, cap.count]));

Deno.test("planBudget() shares what the limit leaves after the daemon's files and reserve, no kind starving another", () => {
  // systemd's default hard limit, raised to: the reserve is 64 files.
  const large = planBudget({ fileLimit: 524288, ownFiles: 40, udp: true, http: 128 });
  assert.equal(large.descriptors, 524288 - 40 - 64);
  assert.deepEqual(caps(large), {
    tcp: Math.floor((large.descriptors - 16 - 128 - 1024) / 2),
    udp_flow: 1024,
    http: 128,
    control: 16,
  });
  assert.equal(large.heldBytes, 64 * 1024 * 1024);
  // A low limit: the reserve is an eighth of it (16 at least), the shares shrink with it.
  const low = planBudget({ fileLimit: 128, ownFiles: 30, udp: true, http: 128 });
  assert.equal(low.descriptors, 128 - 30 - 16);
  assert.deepEqual(caps(low), { tcp: 21, udp_flow: 20, http: 10, control: 10 });
  const sum = (limits: typeof low) =>
    2 * limits.caps.tcp.count + limits.caps.udp_flow.count + limits.caps.http.count +
    limits.caps.control.count;
  assert.ok(sum(low) <= low.descriptors && sum(large) <= large.descriptors);
  // No UDP port, no HTTP server: no share for them, TCP gets it.
  const tcpOnly = planBudget({ fileLimit: 1024, ownFiles: 24, udp: false });
  assert.deepEqual(caps(tcpOnly), {
    tcp: Math.floor((1024 - 24 - 64 - 16) / 2),
    udp_flow: 0,
    http: 0,
    control: 16,
  });
  // The keys set their caps; the HTTP server passes its own.
  const set = planBudget({
    fileLimit: 1024,
    ownFiles: 24,
    connections: 5000,
    udpFlows: 50,
    heldBytes: 1024,
    udp: true,
    http: 32,
  });
  assert.deepEqual(caps(set), { tcp: 5000, udp_flow: 50, http: 32, control: 16 });
  assert.deepEqual([set.caps.tcp.configured, set.caps.udp_flow.configured], [true, true]);
  assert.equal(set.heldBytes, 1024);
  // A limit that leaves nothing: nothing is let in, rather than a negative share.
  assert.equal(planBudget({ fileLimit: 32, ownFiles: 30, udp: true }).caps.tcp.count, 0);
  // Unknown limit: only the keys bound.
  const unknown = planBudget({ ownFiles: 0, connections: 7, udp: true });
  assert.deepEqual([unknown.descriptors, unknown.caps.tcp.count, unknown.caps.udp_flow.count], [
    Infinity,
    7,
    1024,
  ]);
});

Deno.test("Budget: each kind within its cap, all within the descriptor bound; refusals counted and said", () => {
  const budget = new Budget(planBudget({
    fileLimit: 100,
    ownFiles: 74,
    connections: 5,
    udpFlows: 3,
    udp: true,
  }));
  assert.equal(budget.limits.descriptors, 10);
  for (let n = 0; n < 3; n++) assert.ok(budget.acquire("udp_flow"));
  assert.ok(!budget.acquire("udp_flow"));
  assert.equal(
    budget.full("udp_flow"),
    "sleepingd holds MAX_UDP_FLOWS_TOTAL (3) UDP flows already",
  );
  // 3 flows hold 3 descriptors: 3 connections (2 each) fit in the 10, the fourth does not,
  // although MAX_CONNECTIONS_TOTAL would let 5 in.
  for (let n = 0; n < 3; n++) assert.ok(budget.acquire("tcp"));
  assert.ok(!budget.acquire("tcp"));
  assert.equal(
    budget.full("tcp"),
    "sleepingd holds 9 descriptors for clients already, as many as the open file limit (100) " +
      "leaves after its own",
  );
  budget.release("udp_flow");
  assert.ok(budget.acquire("tcp"), "a flow given back makes room");
  const usage = budget.usage();
  assert.deepEqual(usage.open, { tcp: 4, udp_flow: 2, http: 0, control: 0 });
  assert.deepEqual(usage.refused, { tcp: 1, udp_flow: 1, http: 0, control: 0 });
  assert.equal(usage.descriptors, 10);
  // A lower bound after a reload: what is held stays, newcomers wait for room.
  budget.reconfigure(planBudget({ fileLimit: 100, ownFiles: 74, connections: 2, udp: true }));
  assert.ok(!budget.acquire("tcp"));
  assert.equal(
    budget.full("tcp"),
    "sleepingd holds MAX_CONNECTIONS_TOTAL (2) connections already",
  );
});

Deno.test("Budget: a default share says which key changes it", () => {
  const budget = new Budget(planBudget({ fileLimit: 128, ownFiles: 30, udp: true, http: 128 }));
  while (budget.acquire("udp_flow"));
  assert.equal(
    budget.full("udp_flow"),
    "sleepingd holds 20 UDP flows already, their share of the open file limit (128): " +
      "MAX_UDP_FLOWS_TOTAL sets another",
  );
  while (budget.acquire("control"));
  assert.equal(
    budget.full("control"),
    "sleepingd holds 10 control clients already, their share of the open file limit (128)",
  );
});

Deno.test("Budget: held bytes within MAX_HELD_BYTES_TOTAL, by kind; what does not fit is counted", () => {
  const budget = new Budget(planBudget({ ownFiles: 0, heldBytes: 4096, udp: false }));
  assert.ok(budget.hold("tcp_held", 1024));
  assert.ok(budget.hold("udp_queued", 2048));
  assert.ok(!budget.hold("udp_sending", 2048));
  assert.ok(budget.hold("udp_sending", 1024));
  assert.equal(budget.heldFull(), "MAX_HELD_BYTES_TOTAL (4 KiB) is held for clients already");
  budget.free("udp_queued", 2048);
  assert.ok(budget.hold("tcp_first_bytes", 2048));
  assert.ok(!budget.hold("tcp_first_bytes", 1));
  budget.free("tcp_first_bytes", 2048);
  assert.deepEqual(budget.usage().held, {
    tcp_held: 1024,
    tcp_first_bytes: 0,
    udp_queued: 0,
    udp_sending: 1024,
  });
  assert.equal(budget.usage().heldRefused, 2049);
});

Deno.test("formatBytes() writes sizes as people read them", () => {
  assert.deepEqual(
    [100, 1024, 1536, 8192, 64 * 2 ** 20, 2 ** 30, 1000].map(formatBytes),
    ["100 bytes", "1 KiB", "1.5 KiB", "8 KiB", "64 MiB", "1 GiB", "1000 bytes"],
  );
});
