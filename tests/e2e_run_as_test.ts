/**
 * Commands run as USER, through the real daemon started as root with a secret
 * in its environment and a file it inherited open: the command gets its own
 * clean environment (and the PASS_ENV names), no descriptor above 2, and its
 * home as working folder (`/` when it has none). Needs root; the users are
 * made with `useradd` for the test and removed after.
 */
import assert from "node:assert/strict";
import { startDaemon } from "./_daemon.ts";
import { runProgram } from "./_helpers.ts";
import { freePort, listenLocal } from "./_net.ts";
import { exchange } from "./_service.ts";

Deno.test({
  name: "a command run as USER gets a clean environment, no inherited file and its home as folder",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "sleepingd-run-as-" });
    const suffix = Array.from(crypto.getRandomValues(new Uint8Array(3)), (b) => b.toString(16))
      .join("");
    const users = [`sdhome${suffix}`, `sdnohome${suffix}`];
    const home = `${dir}/home`;
    const backend = listenLocal();
    const ports = { home: freePort(), nohome: freePort() };
    try {
      await Deno.chmod(dir, 0o755);
      const out = `${dir}/out`;
      await Deno.mkdir(out, { mode: 0o777 });
      await Deno.chmod(out, 0o777);
      const add = (args: string[]) =>
        runProgram("useradd", ["--system", "--shell", "/bin/sh", ...args]);
      assert.equal((await add(["--create-home", "--home-dir", home, users[0]])).code, 0);
      assert.equal(
        (await add(["--no-create-home", "--home-dir", `${dir}/none`, users[1]])).code,
        0,
      );
      const record = (name: string) =>
        `START_CMD='env | sort > ${out}/${name}.env; ls /proc/$$/fd > ${out}/${name}.fds; ` +
        `pwd > ${out}/${name}.pwd; echo 127.0.0.1 ${backend.addr.port}'\n`;
      const file = `${dir}/sleepingd.conf`;
      await Deno.writeTextFile(
        file,
        `PASS_ENV=AWS_PROFILE
[home]
PORT=${ports.home}
LISTEN_ADDRESS=127.0.0.1
USER=${users[0]}
${record("home")}
[nohome]
PORT=${ports.nohome}
LISTEN_ADDRESS=127.0.0.1
USER=${users[1]}
${record("nohome")}
`,
      );
      const inherited = `${dir}/inherited`;
      await Deno.writeTextFile(inherited, "an open file\n");
      const daemon = await startDaemon(file, {
        env: { SLEEPINGD_TEST_SECRET: "s3cret", AWS_PROFILE: "prod", LANG: "C.UTF-8" },
        prelude: `exec 7<${inherited}`,
      });
      try {
        const fds = [...Deno.readDirSync(`/proc/${daemon.pid}/fd`)].map((entry) => entry.name);
        assert.ok(fds.includes("7"), "the daemon itself did inherit the file");
        // Each wake's START_CMD records what it got; the backend here only accepts and closes.
        (async () => {
          for await (const conn of backend) conn.close();
        })().catch(() => {});
        for (const port of Object.values(ports)) await exchange(port, "x").catch(() => "");
      } finally {
        assert.equal(await daemon.stop(), 0);
      }
      for (const [name, user, folder] of [["home", users[0], home], ["nohome", users[1], "/"]]) {
        const env = (await Deno.readTextFile(`${out}/${name}.env`)).trim().split("\n")
          .map((line) => line.split("=")[0]);
        assert.deepEqual(
          env.filter((variable) => !/^(SLEEPINGD_|_$|PWD$|SHLVL$)/.test(variable)),
          ["AWS_PROFILE", "HOME", "LANG", "LOGNAME", "PATH", "USER"],
          `${name}: ${env.join(" ")}`,
        );
        const text = await Deno.readTextFile(`${out}/${name}.env`);
        assert.match(text, new RegExp(`^USER=${user}$`, "m"));
        assert.match(text, /^SLEEPINGD_RUN_ID=[0-9a-f-]{36}$/m);
        assert.doesNotMatch(text, /s3cret/);
        assert.deepEqual(
          (await Deno.readTextFile(`${out}/${name}.fds`)).trim().split("\n").sort(),
          ["0", "1", "2"],
          `${name}: only stdin, stdout and stderr`,
        );
        assert.equal((await Deno.readTextFile(`${out}/${name}.pwd`)).trim(), folder);
      }
    } finally {
      backend.close();
      for (const user of users) await runProgram("userdel", [user]);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
