/**
 * A service's UDP port on real sockets: the first datagram wakes it, the
 * datagrams of a wake wait in order within the bound (past it dropped and
 * counted), each client gets its own flow and its own replies, and quiet
 * flows end.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { Budget } from "../src/net/budget.ts";
import {
  bindAll,
  closeSocket,
  datagramCost,
  OrderedSender,
  receiveAll,
} from "../src/net/datagram.ts";
import { DatagramRelay, type QueueBound } from "../src/service/datagrams.ts";
import type { DropReason, Recorder } from "../src/service/recorder.ts";
import { Service } from "../src/service/service.ts";
import { NO_RECORDER } from "../src/service/recorder.ts";
import { waitFor } from "./_helpers.ts";
import { udpClient } from "./_net.ts";
import { command, openGate, serviceConfig, waitForGate } from "./_service.ts";

/** A UDP echo backend that prefixes each reply, and what it received. */
function echoBackend(prefix: string) {
  const [socket] = bindAll(["127.0.0.1"], 0);
  const sender = new OrderedSender(socket, new Budget(), (why, _count, error) => {
    throw error ?? new Error(why);
  });
  const received: string[] = [];
  receiveAll(socket, (data, from) => {
    received.push(new TextDecoder().decode(data));
    sender.send(new TextEncoder().encode(`${prefix}${received.at(-1)}`), from);
  }, (error) => {
    throw error;
  });
  return { socket, port: (socket.addr as Deno.NetAddr).port, received };
}

/** A UDP service whose START_CMD waits for the gate, served on a port of its own. */
function gatedService(
  dir: string,
  backendPort: number,
  recorder: Recorder,
  options: { bound?: QueueBound; flowTimeout?: number } = {},
) {
  const service = new Service(
    serviceConfig({
      protocol: "udp",
      udpFlowTimeout: options.flowTimeout ?? 60,
      startCmd: command(
        `${waitForGate(dir)}\necho start >> ${dir}/starts\necho 127.0.0.1 ${backendPort}`,
      ),
    }),
    recorder,
  );
  const [socket] = bindAll(["127.0.0.1"], 0);
  const relay = new DatagramRelay(service, socket, undefined, options.bound);
  return { service, relay, port: (socket.addr as Deno.NetAddr).port };
}

function countingDrops() {
  const drops = new Map<DropReason, number>();
  const recorder: Recorder = {
    ...NO_RECORDER,
    dropped: (_service, reason, count) => drops.set(reason, (drops.get(reason) ?? 0) + count),
  };
  return { drops, recorder };
}

Deno.test("UDP: one wake for every client; each gets its own replies, in the order it sent", async () => {
  const dir = await Deno.makeTempDir();
  const backend = echoBackend("U=");
  const { service, relay, port } = await gatedService(dir, backend.port, NO_RECORDER);
  const clients = await Promise.all([1, 2, 3, 4, 5].map(() => udpClient()));
  try {
    clients.forEach((one, index) => {
      for (let n = 0; n < 3; n++) one.send(port, `c${index}-${n}`);
    });
    // Gated: the wake cannot end before all 15 datagrams wait for it.
    await waitFor("15 datagrams queued", () => service.stats.queuedDatagrams === 15);
    assert.equal(service.state, "starting");
    assert.equal(service.stats.openFlows, 5);
    await openGate(dir);
    for (const [index, { replies }] of clients.entries()) {
      await waitFor(`client ${index}'s replies`, () => replies.length === 3);
      assert.deepEqual(replies, [0, 1, 2].map((n) => `U=c${index}-${n}`));
    }
    assert.equal(Deno.readTextFileSync(`${dir}/starts`), "start\n", "one START_CMD");
    assert.deepEqual([service.stats.datagramsIn, service.stats.datagramsOut], [15, 15]);
    assert.equal(service.stats.queuedDatagrams, 0);
    // Awake: a datagram goes straight through.
    clients[0].send(port, "again");
    await waitFor(
      "the reply to a datagram sent while awake",
      () => clients[0].replies.includes("U=again"),
    );
  } finally {
    relay.close();
    await service.close("shutdown");
    closeSocket(backend.socket);
    for (const one of clients) one.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("UDP: past the queue's bound, datagrams are dropped and counted; those kept go in order", async () => {
  const dir = await Deno.makeTempDir();
  const backend = echoBackend("");
  const { drops, recorder } = countingDrops();
  // Room for 21 datagrams, and for the memory of 20 of 2 bytes and one of 100.
  const bytes = 20 * datagramCost(2) + datagramCost(100);
  const { service, relay, port } = await gatedService(dir, backend.port, recorder, {
    bound: { datagrams: 21, bytes },
  });
  const sender = await udpClient();
  try {
    for (let n = 0; n < 20; n++) sender.send(port, String(n).padStart(2, "0"));
    await waitFor("20 kept", () => service.stats.queuedDatagrams === 20);
    // The memory bound: 101 bytes do not fit, 100 do; then the count bound: 21 is all.
    for (const size of [101, 100, 1]) sender.send(port, "x".repeat(size));
    await waitFor(
      "21 kept, 2 dropped",
      () => service.stats.queuedDatagrams === 21 && drops.get("queue_full") === 2,
    );
    assert.equal(service.stats.queuedBytes, bytes);
    assert.equal(service.budget.usage().held.udp_queued, bytes, "counted in the budget too");
    await openGate(dir);
    await waitFor("the 21 kept at the backend", () => backend.received.length === 21);
    assert.deepEqual(
      backend.received,
      [...[...Array(20).keys()].map((n) => String(n).padStart(2, "0")), "x".repeat(100)],
    );
    assert.equal(service.budget.usage().held.udp_queued, 0);
  } finally {
    relay.close();
    await service.close("shutdown");
    closeSocket(backend.socket);
    sender.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("UDP: a flow quiet for UDP_FLOW_TIMEOUT ends; the client's next datagram begins another", async () => {
  const dir = await Deno.makeTempDir();
  const backend = echoBackend("");
  const { service, relay, port } = await gatedService(dir, backend.port, NO_RECORDER, {
    flowTimeout: 0.3,
  });
  await openGate(dir);
  const sender = await udpClient();
  try {
    sender.send(port, "one");
    await waitFor("the first reply", () => sender.replies.length === 1);
    assert.deepEqual([service.stats.openFlows, service.stats.totalFlows], [1, 1]);
    await waitFor("the quiet flow to end", () => service.stats.openFlows === 0);
    sender.send(port, "two");
    await waitFor("the second reply", () => sender.replies.length === 2);
    assert.deepEqual([service.stats.openFlows, service.stats.totalFlows], [1, 2]);
  } finally {
    relay.close();
    assert.equal(service.stats.openFlows, 0, "closing the port ends its flows");
    await service.close("shutdown");
    closeSocket(backend.socket);
    sender.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("UDP: ALLOW and DENY drop a client's datagrams, count them and wake nothing", async () => {
  const dir = await Deno.makeTempDir();
  const { drops, recorder } = countingDrops();
  const service = new Service(
    serviceConfig({ protocol: "udp", deny: ["127.0.0.0/8"], startCmd: command("exit 1") }),
    recorder,
  );
  const [socket] = bindAll(["127.0.0.1"], 0);
  const relay = new DatagramRelay(service, socket);
  const sender = dgram.createSocket("udp4");
  try {
    for (let n = 0; n < 3; n++) sender.send("x", (socket.addr as Deno.NetAddr).port, "127.0.0.1");
    await waitFor("3 refused", () => drops.get("refused") === 3);
    assert.equal(service.state, "asleep");
    assert.equal(service.stats.openFlows, 0);
  } finally {
    relay.close();
    sender.close();
    await service.close("shutdown");
    await Deno.remove(dir, { recursive: true });
  }
});
