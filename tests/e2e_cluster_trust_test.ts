/**
 * etcd is not trusted blindly: instances reach it over TLS with a client
 * certificate and as an etcd user, a target published in etcd is used only
 * when the service's rule vouches for it, and a malformed key is skipped
 * (said once), never taken as an outage.
 */
import assert from "node:assert/strict";
import type { DaemonStatus } from "../src/control/status.ts";
import { ETCD, withGroup } from "./_cluster.ts";
import { startDaemon } from "./_daemon.ts";
import { base64 } from "./_etcd.ts";
import { bounded, runCli, waitFor } from "./_helpers.ts";
import { freePort, listenLocal } from "./_net.ts";
import { serverTest } from "./_servers.ts";
import { exchange, openGate } from "./_service.ts";
import { makeCertificates } from "./_certificates.ts";

const ETCD_AND_OPENSSL = [...ETCD, { binary: "openssl", package: "openssl" }];

/** Calls etcd's gateway as the test, with its client certificate; fails on an error. */
async function call(url: string, client: Deno.HttpClient, path: string, body: unknown) {
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    body: JSON.stringify(body),
    client,
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(`etcd refused ${path}: ${JSON.stringify(answer)}`);
  return answer;
}

serverTest(
  "instances reach etcd over TLS with a client certificate, as an etcd user, and coordinate",
  ETCD_AND_OPENSSL,
  async (paths) => {
    await using certificates = await makeCertificates();
    const password = `${certificates.dir}/password`;
    await Deno.writeTextFile(password, "s3cret-for-sleepingd\n");
    using client = Deno.createHttpClient({
      caCerts: [await Deno.readTextFile(certificates.caFile)],
      cert: await Deno.readTextFile(certificates.clientCertFile),
      key: await Deno.readTextFile(certificates.clientKeyFile),
    });
    const tls = {
      certFile: certificates.serverCertFile,
      keyFile: certificates.serverKeyFile,
      clientCaFile: certificates.caFile,
      client,
    };
    const global = `ETCD_CA_FILE=${certificates.caFile}
ETCD_CERT_FILE=${certificates.clientCertFile}
ETCD_KEY_FILE=${certificates.clientKeyFile}
ETCD_USER=sleepingd
ETCD_PASSWORD_FILE=${password}`;
    await withGroup(paths, 2, {
      tls,
      global,
      before: async (etcd) => {
        // Authentication on: root, and a user that may read and write /sleepingd/ only.
        const add = (path: string, body: unknown) => call(etcd.url, client, path, body);
        await add("/v3/auth/user/add", { name: "root", password: "root-password" });
        await add("/v3/auth/user/grant", { user: "root", role: "root" });
        await add("/v3/auth/role/add", { name: "sleepingd" });
        await add("/v3/auth/role/grant", {
          name: "sleepingd",
          perm: {
            permType: "READWRITE",
            key: base64("/sleepingd/"),
            range_end: base64("/sleepingd0"),
          },
        });
        await add("/v3/auth/user/add", { name: "sleepingd", password: "s3cret-for-sleepingd" });
        await add("/v3/auth/user/grant", { user: "sleepingd", role: "sleepingd" });
        await add("/v3/auth/enable", {});
      },
    }, async (group, etcd) => {
      // Each lists both: they joined through etcd.
      await waitFor("both instances listed", async () => {
        const response = await fetch(`http://127.0.0.1:${group.members[0].http}/api/status`);
        return (await response.json() as DaemonStatus).instances?.length === 2;
      });
      await openGate(group.dir);
      assert.equal(await exchange(group.members[0].port, "a"), "a");
      await group.daemons[1].waitForLine(/\[echo\] asleep -> awake: .*woken by /);
      await waitFor("the idle stop", group.allAsleep, 30);
      assert.equal(group.stops(), 1);
      assert.equal(group.starts(), 1);

      // check shows how the instance reaches etcd.
      const { stdout } = await runCli(["-f", group.files[0], "check"]);
      assert.match(stdout, new RegExp(`cluster: test-\\S+, through etcd at ${etcd.url}\n`));
      assert.match(stdout, /\n {2}etcd's certificate: signed by an authority of \S+ca\.pem\n/);
      assert.match(stdout, /\n {2}client certificate: \S+client\.pem \(key \S+client\.key\)\n/);
      assert.match(stdout, /\n {2}etcd user: sleepingd \(password in \S+password\)\n/);
      assert.match(stdout, /\n {2}published targets: used when in 127\.0\.0\.1\n/);

      // A wrong password is said as etcd says it, and the instance stays out.
      const wrong = `${certificates.dir}/wrong`;
      await Deno.writeTextFile(wrong, "not-the-password\n");
      const file = `${group.dir}/wrong.conf`;
      await Deno.writeTextFile(
        file,
        (await Deno.readTextFile(group.files[0])).replace(password, wrong)
          .replace(/^PORT=\d+$/m, `PORT=${freePort()}`)
          .replace(/^METRICS_ADDRESS=.*$/m, "")
          .replace(/^VARRUN_PATH=.*$/m, `VARRUN_PATH=${group.dir}/outsider`),
      );
      const outsider = await startDaemon(file);
      try {
        const line = await outsider.waitForLine(/etcd cannot be reached/);
        assert.match(line, /as user sleepingd: etcdserver: authentication failed/);
      } finally {
        await outsider.stop();
      }
    });
  },
);

/** A listener the forged state points at: it counts the connections it gets. */
function attacker() {
  const listener = listenLocal();
  let connections = 0;
  (async () => {
    try {
      for await (const conn of listener) {
        connections++;
        conn.close();
      }
    } catch {
      // Closed.
    }
  })();
  return {
    port: listener.addr.port,
    connections: () => connections,
    close: () => listener.close(),
  };
}

for (
  const [rule, service, said] of [
    [
      "CLUSTER_TARGETS",
      "CLUSTER_TARGETS=127.0.0.1:{backend}",
      /not using 127\.0\.0\.1:\d+, which instance evil:1 published: it is not in CLUSTER_TARGETS/,
    ],
    [
      "CHECK_CMD",
      "CLUSTER_TARGETS=\nCHECK_CMD='exit 1'",
      /not using 127\.0\.0\.1:\d+, which instance evil:1 published: CHECK_CMD does not confirm it/,
    ],
    [
      "no rule at all",
      "CLUSTER_TARGETS=",
      /not using 127\.0\.0\.1:\d+, which instance evil:1 published: neither CHECK_CMD nor CLUSTER_TARGETS/,
    ],
  ] as const
) {
  serverTest(
    `a forged state in etcd sends no client anywhere: the published target is refused (${rule})`,
    ETCD,
    async (paths) => {
      const evil = attacker();
      try {
        // CLUSTER_TARGETS names the backend's port only: the attacker's is another.
        await withGroup(paths, 1, { args: ["-v"], service }, async (group, etcd) => {
          await etcd.put(
            group.key("state"),
            JSON.stringify({
              state: "awake",
              target: `127.0.0.1 ${evil.port}`,
              by: "evil:1",
              at: Date.now() + 60_000,
            }),
          );
          // The instance reads it within a second: it follows it, or says why not.
          const lines = group.daemons[0].lines;
          await waitFor(
            "the forged state read",
            async () =>
              lines.some((line) => said.test(line)) || (await group.status(0)).state === "awake",
          );
          assert.equal((await group.status(0)).state, "asleep", "the forged wake is not followed");
          await openGate(group.dir);
          // A client wakes the backend here instead.
          assert.equal(
            await bounded(exchange(group.members[0].port, "mine"), "the client"),
            "mine",
          );
          assert.equal(group.starts(), 1, "START_CMD ran here");
          assert.equal(evil.connections(), 0, "nothing reached the forged target");
        });
      } finally {
        evil.close();
      }
    },
  );
}

serverTest(
  "malformed keys in etcd are skipped, said once each, never taken as an outage: the idle stop happens",
  ETCD,
  (paths) =>
    withGroup(paths, 1, {}, async (group, etcd) => {
      const prefix = `/sleepingd/${group.cluster}`;
      await etcd.put(group.key("busy/evil:1"), "{not json");
      await etcd.put(group.key("busy/evil:2"), JSON.stringify({ open: -3, lastActivity: "soon" }));
      await etcd.put(`${prefix}/instances/evil:1`, "[]");
      await etcd.put(group.key("state"), JSON.stringify({ state: "awake", by: "evil:1", at: 1 }));
      await openGate(group.dir);
      // The malformed state is none: the client's wake runs START_CMD.
      assert.equal(await bounded(exchange(group.members[0].port, "a"), "the client"), "a");
      // The malformed busy records are no one's: the idle stop happens.
      await waitFor("the idle stop", group.allAsleep, 30);
      assert.equal(group.stops(), 1);
      const lines = group.daemons[0].lines;
      for (const key of ["busy/evil:1", "busy/evil:2"]) {
        const said = lines.filter((line) => line.includes(`skipping etcd key ${group.key(key)}:`));
        assert.equal(said.length, 1, `${key} said once: ${said.join("\n")}`);
      }
      assert.equal(
        lines.filter((line) => line.includes(`skipping etcd key ${prefix}/instances/evil:1:`))
          .length,
        1,
      );
      assert.ok(
        lines.some((line) =>
          line.includes(`skipping etcd key ${group.key("state")}: awake without a target`)
        ),
      );
      assert.ok(!lines.some((line) => /etcd cannot be reached/.test(line)), "no outage");
    }),
);
