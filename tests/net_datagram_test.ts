/**
 * UDP sockets on real loopback sockets: datagrams given at once leave in
 * the order given (Deno's own sends issued at once leave reversed), the send
 * queue's bounds and its memory in the budget, where a datagram came from,
 * and a host name looked up once.
 */
import assert from "node:assert/strict";
import { Budget, planBudget } from "../src/net/budget.ts";
import {
  bindAll,
  closeSocket,
  datagramCost,
  isFrom,
  OrderedSender,
  receiveAll,
  resolveTarget,
  type SendDrop,
  type UdpSocket,
} from "../src/net/datagram.ts";
import { waitFor } from "./_helpers.ts";

/** A socket on 127.0.0.1 that keeps the numbers (4 bytes, big-endian) it receives. */
function numberSink(): { socket: UdpSocket; to: Deno.NetAddr; numbers: number[] } {
  const [socket] = bindAll(["127.0.0.1"], 0);
  const numbers: number[] = [];
  receiveAll(
    socket,
    (data) => numbers.push(new DataView(data.buffer, data.byteOffset).getUint32(0)),
    (error) => {
      throw error;
    },
  );
  return { socket, to: socket.addr as Deno.NetAddr, numbers };
}

function numbered(n: number, size = 4): Uint8Array {
  const data = new Uint8Array(size);
  new DataView(data.buffer).setUint32(0, n);
  return data;
}

/** Drops an {@linkcode OrderedSender} reports, by why. */
function drops() {
  const seen = new Map<SendDrop, number>();
  const onDrop = (why: SendDrop, count: number) => seen.set(why, (seen.get(why) ?? 0) + count);
  return { seen, onDrop };
}

/** An OrderedSender on a socket of its own towards a {@linkcode numberSink}, with its budget and drops. */
function senderToSink(budget = new Budget()) {
  const sink = numberSink();
  const [socket] = bindAll(["127.0.0.1"], 0);
  const { seen, onDrop } = drops();
  const sender = new OrderedSender(socket, budget, onDrop);
  return {
    sink,
    budget,
    seen,
    sender,
    close() {
      sender.close();
      closeSocket(socket);
      closeSocket(sink.socket);
    },
  };
}

/** Datagrams given at once: few enough for the receiving socket's buffer. */
const IN_ORDER = 200;

Deno.test("OrderedSender: datagrams given at once leave in the order given", async () => {
  const { sink, budget, seen, sender, close } = senderToSink();
  try {
    for (let n = 0; n < IN_ORDER; n++) sender.send(numbered(n), sink.to);
    await waitFor(`${IN_ORDER} datagrams at the sink`, () => sink.numbers.length === IN_ORDER);
    assert.deepEqual(sink.numbers, [...Array(IN_ORDER).keys()]);
    assert.equal(seen.size, 0);
    assert.equal(budget.usage().held.udp_sending, 0, "all given back once sent");
  } finally {
    close();
  }
});

Deno.test("OrderedSender: what waits is bounded (1024 datagrams, 1 MiB) and counted in the budget's held bytes", async () => {
  const { sink, budget, seen, sender, close } = senderToSink();
  try {
    // 2000 small ones at once: the first goes out, 1024 wait, the rest are dropped.
    for (let n = 0; n < 2000; n++) sender.send(numbered(n), sink.to);
    assert.equal(seen.get("send_queue_full"), 2000 - 1025);
    assert.equal(budget.usage().held.udp_sending, 1025 * datagramCost(4));
    await waitFor("the sender to be done", () => budget.usage().held.udp_sending === 0);
    // 1 MiB: 1000 of 8000 bytes do not fit.
    for (let n = 0; n < 1000; n++) sender.send(numbered(n, 8000), sink.to);
    const fit = Math.floor(1024 * 1024 / datagramCost(8000));
    assert.equal(
      seen.get("send_queue_full"),
      2000 - 1025 + 1000 - fit,
      "the one under way counts too",
    );
    await waitFor("the sender to be done", () => budget.usage().held.udp_sending === 0);
  } finally {
    close();
  }
});

Deno.test("OrderedSender: past MAX_HELD_BYTES_TOTAL a datagram is dropped; closed, what waits is dropped and given back", () => {
  const [socket] = bindAll(["127.0.0.1"], 0);
  const budget = new Budget(planBudget({ ownFiles: 0, heldBytes: 3 * datagramCost(4), udp: true }));
  const { seen, onDrop } = drops();
  const sender = new OrderedSender(socket, budget, onDrop);
  const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: 9 };
  for (let n = 0; n < 5; n++) sender.send(numbered(n), to);
  assert.equal(seen.get("held_bytes"), 2);
  sender.close();
  assert.equal(seen.get("send_failed"), 2, "the two that waited behind the one under way");
  assert.equal(budget.usage().held.udp_sending, 0);
  sender.send(numbered(5), to);
  assert.equal(seen.get("send_failed"), 3, "a closed sender sends nothing");
  closeSocket(socket);
});

Deno.test("receiveAll() hands over each datagram with its sender, and ends once the socket is closed", async () => {
  const [socket] = bindAll(["::"], 0);
  const port = (socket.addr as Deno.NetAddr).port;
  const got: string[] = [];
  const done = receiveAll(
    socket,
    (data, from) => got.push(`${new TextDecoder().decode(data)} ${from.hostname}`),
    (error) => {
      throw error;
    },
  );
  const [client] = bindAll(["127.0.0.1"], 0);
  await client.send(new TextEncoder().encode("hi"), {
    transport: "udp",
    hostname: "127.0.0.1",
    port,
  });
  await waitFor("the datagram", () => got.length === 1);
  assert.deepEqual(got, ["hi ::ffff:127.0.0.1"]);
  closeSocket(socket);
  await done;
  closeSocket(client);
});

Deno.test("isFrom() and resolveTarget(): the backend's address in any spelling, a name looked up once", async () => {
  const peer: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: 53 };
  assert.ok(isFrom({ transport: "udp", hostname: "127.0.0.1", port: 53 }, peer));
  assert.ok(isFrom({ transport: "udp", hostname: "::ffff:127.0.0.1", port: 53 }, peer));
  assert.ok(!isFrom({ transport: "udp", hostname: "127.0.0.2", port: 53 }, peer));
  assert.ok(!isFrom({ transport: "udp", hostname: "127.0.0.1", port: 54 }, peer));
  const v6: Deno.NetAddr = { transport: "udp", hostname: "0:0:0:0:0:0:0:1", port: 53 };
  assert.ok(isFrom({ transport: "udp", hostname: "::1", port: 53 }, v6));
  assert.deepEqual(await resolveTarget({ hostname: "127.0.0.1", port: 53 }), peer);
  const local = await resolveTarget({ hostname: "localhost", port: 53 });
  assert.ok(["127.0.0.1", "::1"].includes(local.hostname), local.hostname);
});
