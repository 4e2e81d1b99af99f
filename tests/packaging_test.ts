/**
 * The packages: `deno task package` builds a deb and an rpm that put the same
 * files in the same places, with a manual page made from the help texts, and
 * lintian finds no error in the deb. Under CI=true as root, the deb also goes
 * through a whole install cycle on this machine (install, run the demo,
 * upgrade with an edited conffile, remove, purge) and the rpm is installed
 * into a scratch root. And `deno task compile`/`package` refuse bad input in
 * one line.
 */
import assert from "node:assert/strict";
import { curl, exists, type Output, REPO, runCli, runProgram, tempFiles } from "./_helpers.ts";
import { findBinary, IN_CI, resolveRequirements } from "./_servers.ts";
import { VERSION } from "../src/version.ts";
import { hostTarget } from "../packaging/targets.ts";

/** Tools every package test needs. */
const BUILD_TOOLS = [
  { binary: "dpkg-deb", package: "dpkg" },
  { binary: "rpmbuild", package: "rpm" },
  { binary: "readelf", package: "binutils" },
];
/** How long one package build may take (a bound against hangs). */
const BUILD_TIMEOUT_MS = 180_000;
/** The deb's systemd unit, which the rpm has in %{_unitdir}. */
const DEB_UNIT = "/lib/systemd/system/sleepingd.service";
/** The rpm's systemd unit. */
const RPM_UNIT = "/usr/lib/systemd/system/sleepingd.service";
/** The one file only the deb has. */
const LINTIAN_OVERRIDES = "/usr/share/lintian/overrides/sleepingd";
/** The rpm's copy of LICENSE; the deb's copyright file points at Debian's own copy instead. */
const RPM_LICENSE = "/usr/share/licenses/sleepingd/LICENSE";
/** The SHA-256 of the Apache License 2.0 as apache.org publishes it (LICENSE-2.0.txt). */
const APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30";
/** The installed configuration. */
const CONFFILE = "/etc/sleepingd/sleepingd.conf";
/** logrotate's rules for the log in /var/log/sleepingd: a conffile too. */
const LOGROTATE = "/etc/logrotate.d/sleepingd";
/**
 * Files the packages must have, with their permissions: in the bundle layout,
 * as nothing is compiled into the test's dist.
 */
const EXPECTED: [string, string][] = [
  ["/usr/bin/sleepingd", "-rwxr-xr-x"],
  ["/usr/lib/sleepingd/deno", "-rwxr-xr-x"],
  ["/usr/lib/sleepingd/sleepingd.js", "-rw-r--r--"],
  [CONFFILE, "-rw-r--r--"],
  [LOGROTATE, "-rw-r--r--"],
  [DEB_UNIT, "-rw-r--r--"],
  ["/usr/share/man/man8/sleepingd.8.gz", "-rw-r--r--"],
  ["/usr/share/doc/sleepingd/README.md", "-rw-r--r--"],
  ["/usr/share/doc/sleepingd/copyright", "-rw-r--r--"],
  ["/usr/share/doc/sleepingd/changelog.gz", "-rw-r--r--"],
  ["/usr/share/sleepingd/demo/oneshot.ts", "-rw-r--r--"],
];

/** Runs a program that must succeed; returns its stdout. */
async function ok(program: string, ...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await runProgram(program, args, { timeoutMs: BUILD_TIMEOUT_MS });
  assert.equal(code, 0, `${program} ${args.join(" ")} failed: ${stderr}`);
  return stdout;
}

/** `deno task package ARGS` in the repository, compressing fast. */
function packageTask(...args: string[]): Promise<Output> {
  return runProgram(Deno.execPath(), ["task", "package", "--fast", ...args], {
    cwd: REPO,
    env: { NO_COLOR: "1" },
    timeoutMs: BUILD_TIMEOUT_MS,
  });
}

/** The files (not folders) of a listing, as `path -> permissions`. */
function filesOf(lines: [string, string][]): Map<string, string> {
  return new Map(lines.filter(([, mode]) => !mode.startsWith("d")));
}

/** The deb's files, from `dpkg-deb -c`. */
async function debFiles(deb: string): Promise<Map<string, string>> {
  const listing = await ok("dpkg-deb", "-c", deb);
  return filesOf(
    listing.trim().split("\n").map((line) => {
      const fields = line.split(/\s+/);
      return [fields[5].replace(/^\./, ""), fields[0]];
    }),
  );
}

/**
 * `rpm -qp PACKAGE` with a database of its own beside the package, so that
 * rpm leaves ~/.rpmdb alone.
 */
function rpmQuery(rpm: string): string[] {
  return ["--dbpath", `${rpm.slice(0, rpm.lastIndexOf("/"))}/rpmdb`, "-qp", rpm];
}

/** The rpm's files, from `rpm -qp` with permissions. */
async function rpmFiles(rpm: string): Promise<Map<string, string>> {
  const listing = await ok("rpm", ...rpmQuery(rpm), "--qf", "[%{FILENAMES} %{FILEMODES:perms}\n]");
  return filesOf(listing.trim().split("\n").map((line) => line.split(" ") as [string, string]));
}

/** The deb's files as the rpm should have them. */
function asRpm(deb: Map<string, string>): Map<string, string> {
  const files = new Map(deb);
  files.delete(LINTIAN_OVERRIDES);
  files.set(RPM_LICENSE, "-rw-r--r--");
  files.set(RPM_UNIT, files.get(DEB_UNIT)!);
  files.delete(DEB_UNIT);
  return files;
}

/** Every file under `root`, as `/path -> permissions`, leaving out the folders in `skip`. */
async function installedFiles(root: string, skip: string[]): Promise<Map<string, string>> {
  const listing = await ok("find", root, "-type", "f", "-printf", "/%P %M\n");
  const lines = listing.trim().split("\n").map((line) => line.split(" ") as [string, string]);
  return new Map(lines.filter(([path]) => !skip.some((dir) => path.startsWith(`${dir}/`))));
}

/** A file of the deb, read from its data archive. */
async function debMember(deb: string, path: string): Promise<Uint8Array<ArrayBuffer>> {
  const tar = await new Deno.Command("dpkg-deb", { args: ["--fsys-tarfile", deb], stdout: "piped" })
    .spawn();
  const extract = new Deno.Command("tar", {
    args: ["-xO", `.${path}`],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  await tar.stdout.pipeTo(extract.stdin);
  const [{ stdout }] = await Promise.all([extract.output(), tar.status]);
  return stdout;
}

/** Text compressed with gzip, uncompressed. */
function gunzip(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Response(stream).text();
}

/** The text a roff source shows, near enough to search it. */
function unroff(source: string): string {
  return source.replaceAll("\\-", "-").replaceAll("\\e", "\\").replaceAll("\\&", "");
}

/** Whether the sleepingd package is installed on this machine. */
async function installed(): Promise<boolean> {
  const { stdout } = await runProgram("dpkg-query", ["-W", "-f", "${Status}", "sleepingd"]);
  return stdout.includes("ok installed");
}

/** Runs the installed sleepingd in `cwd`, as `user` when given. */
function installedCli(cwd: string, args: string[], user?: string): Promise<Output> {
  const [program, prefix] = user ? ["runuser", ["-u", user, "--", "sleepingd"]] : ["sleepingd", []];
  return runProgram(program, [...prefix, ...args], { cwd, env: { NO_COLOR: "1" } });
}

/** Builds the packages, then runs each check on them as a step. */
async function packageChecks(t: Deno.TestContext): Promise<void> {
  const dist = await Deno.makeTempDir({ prefix: "sleepingd-dist-" });
  try {
    const build = await packageTask("--dist", dist);
    assert.equal(build.code, 0, `deno task package failed: ${build.stderr}`);
    const deb = `${dist}/sleepingd_${VERSION}_${hostTarget().debArch}.deb`;
    const rpm = `${dist}/sleepingd-${VERSION}-1.${hostTarget().rpmArch}.rpm`;
    for (const file of [deb, rpm]) {
      const { size } = await Deno.stat(file);
      console.log(`${file.split("/").pop()}: ${(size / 1024 / 1024).toFixed(1)} MiB (--fast)`);
    }
    const files = await debFiles(deb);

    await t.step("SHA256SUMS lists both packages and checks", async () => {
      const { code, stdout } = await runProgram("sha256sum", ["-c", "SHA256SUMS"], { cwd: dist });
      assert.equal(code, 0, stdout);
      assert.match(stdout, /sleepingd_.*\.deb: OK/);
      assert.match(stdout, /sleepingd-.*\.rpm: OK/);
    });

    await t.step("the deb has the layout, with every example", async () => {
      for (const [path, mode] of EXPECTED) assert.equal(files.get(path), mode, path);
      const examples = await ok("find", `${REPO}examples`, "-type", "f", "-printf", "%P\n");
      for (const example of examples.trim().split("\n")) {
        assert.ok(files.has(`/usr/share/doc/sleepingd/examples/${example}`), example);
      }
      console.log(`deb: ${files.size} files; ${EXPECTED.map(([path]) => path).join(" ")}`);
      const shipped = await Deno.readTextFile(`${REPO}sleepingd.conf`);
      const named = /\/usr\/share\/doc\/sleepingd\/examples\/[\w./-]*\w/g;
      for (const [path] of shipped.matchAll(named)) {
        const there = files.has(path) ||
          [...files.keys()].some((file) => file.startsWith(`${path}/`));
        assert.ok(there, `sleepingd.conf names ${path}, which the deb does not have`);
        if (path.endsWith("/startserver")) assert.equal(files.get(path), "-rwxr-xr-x", path);
      }
    });

    await t.step("the rpm puts the same files in the same places", async () => {
      assert.deepEqual(await rpmFiles(rpm), asRpm(files));
    });

    await t.step("both state the licence, Apache-2.0", async () => {
      assert.equal(await ok("rpm", ...rpmQuery(rpm), "--qf", "%{LICENSE}"), "Apache-2.0");
      const licenses = await ok("rpm", ...rpmQuery(rpm), "--licensefiles");
      assert.equal(licenses.trim(), RPM_LICENSE);
      const copyright = new TextDecoder().decode(
        await debMember(deb, "/usr/share/doc/sleepingd/copyright"),
      );
      assert.match(
        copyright,
        /^sleepingd, copyright the sleepingd authors\. License: Apache-2\.0\.$/m,
      );
      assert.match(copyright, /\/usr\/share\/common-licenses\/Apache-2\.0/);
    });

    await t.step("both recommend what FORWARD=kernel runs: nftables and conntrack", async () => {
      const control = await ok("dpkg-deb", "--field", deb, "Recommends");
      assert.equal(control.trim(), "nftables, conntrack");
      const recommends = await ok("rpm", ...rpmQuery(rpm), "--recommends");
      assert.deepEqual(recommends.trim().split("\n"), ["conntrack-tools", "nftables"]);
    });

    await t.step("the conffile is the shipped sleepingd.conf, marked as such in both", async () => {
      const conffiles = `${LOGROTATE}\n${CONFFILE}`;
      assert.equal((await ok("dpkg-deb", "--info", deb, "conffiles")).trim(), conffiles);
      assert.equal((await ok("rpm", ...rpmQuery(rpm), "-c")).trim(), conffiles);
      const installed = new TextDecoder().decode(await debMember(deb, CONFFILE)).split("\n");
      const shipped = (await Deno.readTextFile(`${REPO}sleepingd.conf`)).split("\n");
      assert.equal(installed.length, shipped.length);
      const changed = installed.filter((line, index) => line !== shipped[index]);
      assert.equal(changed.length, 3, `only the demo's paths change: ${changed.join("\n")}`);
      assert.match(
        changed[2],
        /^START_CMD=.*\/usr\/lib\/sleepingd\/deno run --no-config .*\/usr\/share\/sleepingd\/demo\/oneshot\.ts/,
      );
    });

    await t.step(
      "the logrotate rules are the shipped ones, and logrotate and shellcheck accept them",
      async () => {
        const shipped = await Deno.readTextFile(`${REPO}packaging/sleepingd.logrotate`);
        assert.equal(new TextDecoder().decode(await debMember(deb, LOGROTATE)), shipped);
        assert.match(shipped, /^\/var\/log\/sleepingd\/\*\.log \{$/m);
        assert.match(shipped, /^\t\tpidfile=\/run\/sleepingd\/sleepingd\.pid$/m);
        const script = shipped.slice(
          shipped.indexOf("postrotate\n") + 11,
          shipped.indexOf("\tendscript"),
        );
        if (findBinary("shellcheck")) {
          await Deno.writeTextFile(`${dist}/postrotate.sh`, script);
          await ok("shellcheck", "--shell=sh", `${dist}/postrotate.sh`);
        }
        if (findBinary("logrotate")) {
          // --debug reads the rules and says what it would do, changing nothing.
          await Deno.writeTextFile(`${dist}/logrotate.conf`, shipped);
          await ok(
            "logrotate",
            "--debug",
            "--state",
            `${dist}/logrotate.state`,
            `${dist}/logrotate.conf`,
          );
        }
      },
    );

    await t.step(
      "the maintainer scripts are valid shell, and need no running systemd",
      async () => {
        const control = `${dist}/control`;
        await ok("dpkg-deb", "--control", deb, control);
        for (const script of ["postinst", "prerm", "postrm"]) {
          await ok("sh", "-n", `${control}/${script}`);
          const text = await Deno.readTextFile(`${control}/${script}`);
          for (
            const line of text.split("\n").filter((line) => /systemctl|systemd-invoke/.test(line))
          ) {
            assert.ok(text.includes("[ -d /run/systemd/system ]"), `${script}: ${line}`);
          }
        }
        if (findBinary("shellcheck")) {
          const scripts = ["postinst", "prerm", "postrm"].map((script) => `${control}/${script}`);
          await ok("shellcheck", ...scripts, `${REPO}packaging/sleepingd.sh`);
        }
        const scriptlets = await ok("rpm", ...rpmQuery(rpm), "--scripts");
        for (const name of ["postinstall", "preuninstall", "postuninstall"]) {
          assert.match(scriptlets, new RegExp(`${name} scriptlet`));
        }
      },
    );

    await t.step("the manual page holds every command's help", async () => {
      const page = await gunzip(await debMember(deb, "/usr/share/man/man8/sleepingd.8.gz"));
      const text = unroff(page);
      const main = await runCli(["--help"]);
      const commands = [...main.stdout.matchAll(/^ {2}([a-z]+) {2,}(.+)$/gm)];
      assert.ok(commands.length >= 7, main.stdout);
      for (const [, name, summary] of commands) {
        assert.ok(text.includes(`.SS ${name}\n`), `no section for ${name}`);
        assert.ok(text.includes(summary), `no summary of ${name}`);
        const usage = (await runCli([name, "--help"])).stdout.split("\n")[0];
        assert.ok(text.includes(usage), `no "${usage}"`);
      }
      if (findBinary("man")) {
        const manual = `${dist}/sleepingd.8`;
        await Deno.writeTextFile(manual, page);
        const { stderr } = await runProgram("man", ["--warnings", "-l", manual], {
          env: { MANWIDTH: "80" },
        });
        assert.equal(stderr, "", "man --warnings");
      }
    });

    const lintian = findBinary("lintian");
    if (!lintian && !IN_CI) console.warn("skipping lintian: apt-get install lintian");
    await t.step({
      name: "lintian finds no error in the deb",
      ignore: !lintian && !IN_CI,
      fn: async () => {
        const { stdout } = await runProgram("lintian", ["--tag-display-limit", "0", deb], {
          timeoutMs: BUILD_TIMEOUT_MS,
        });
        const tags = stdout.trim().split("\n").filter((line) => line !== "");
        console.log(`lintian:\n${tags.join("\n") || "(nothing)"}`);
        assert.deepEqual(tags.filter((line) => line.startsWith("E:")), []);
      },
    });

    const cycle = IN_CI && Deno.uid() === 0;
    if (!cycle) {
      console.warn(
        "skipping the install cycle: it installs, upgrades and purges the sleepingd package " +
          "on this machine, so it runs only with CI=true as root",
      );
    }
    await t.step({
      name: "the deb installs, runs the demo, keeps an edited conffile, removes and purges",
      ignore: !cycle,
      fn: () => installCycle(deb, dist),
    });
    await t.step({
      name: "the rpm installs the same files into a scratch root",
      ignore: !cycle,
      fn: async () => {
        const root = `${dist}/rpm-root`;
        const db = ["--root", root, "--dbpath", "/rpmdb"];
        await ok("rpm", ...db, "--initdb");
        await ok("rpm", "-i", ...db, "--nodeps", "--noscripts", rpm);
        assert.deepEqual(await installedFiles(root, ["/rpmdb"]), asRpm(files));
        assert.deepEqual(
          await Deno.readFile(`${root}${CONFFILE}`),
          await debMember(deb, CONFFILE),
        );
      },
    });
  } finally {
    await Deno.remove(dist, { recursive: true });
  }
}

/** Installs the deb, runs the demo through it, upgrades, removes and purges it. */
async function installCycle(deb: string, dist: string): Promise<void> {
  assert.ok(!(await installed()), "sleepingd is installed already: this test would replace it");
  // A folder with a broken deno.json and lockfile: the installed sleepingd must not read them.
  const cwd = `${dist}/cwd`;
  await Deno.mkdir(cwd, { mode: 0o755 });
  await Deno.chmod(dist, 0o755);
  await Deno.chmod(cwd, 0o755);
  for (const name of ["deno.json", "deno.lock", "package.json"]) {
    await Deno.writeTextFile(`${cwd}/${name}`, "{ broken");
  }
  const cli = (...args: string[]) => installedCli(cwd, ["-f", CONFFILE, ...args]);
  try {
    await ok("dpkg", "-i", deb);
    assert.equal((await installedCli(cwd, ["--version"])).stdout.trim(), VERSION);
    const asNobody = await installedCli(cwd, ["-f", CONFFILE, "check"], "nobody");
    assert.equal(asNobody.code, 0, asNobody.stderr);
    const check = await cli("check");
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /^Simple web server for testing purposes \(port 10080\)$/m);

    const start = await cli("start");
    assert.equal(start.code, 0, start.stderr);
    assert.match(await curl("http://127.0.0.1:10080/"), /^Response from 8080: /);
    const status = await cli("status");
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /\(port 10080\) running\n {2}state awake/);
    const stop = await cli("stop");
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /\(port 10080\) stopped/);
    const history = await Deno.readTextFile("/var/lib/sleepingd/events.jsonl");
    assert.match(
      history,
      /"from":"asleep","to":"starting","reason":"connection from 127\.0\.0\.1:/,
    );

    const edit = "\n# An edit an upgrade keeps.\n";
    await Deno.writeTextFile(CONFFILE, edit, { append: true });
    const upgrade = await packageTask("--dist", dist, "--version", `${VERSION}+1`);
    assert.equal(upgrade.code, 0, upgrade.stderr);
    await ok("dpkg", "-i", "--force-confold", deb.replace(`_${VERSION}_`, `_${VERSION}+1_`));
    assert.equal(await ok("dpkg-query", "-W", "-f", "${Version}", "sleepingd"), `${VERSION}+1`);
    assert.ok((await Deno.readTextFile(CONFFILE)).endsWith(edit), "the upgrade lost the edit");
    assert.equal((await installedCli(cwd, ["--version"])).code, 0);

    await ok("dpkg", "-r", "sleepingd");
    assert.ok(!exists("/usr/bin/sleepingd") && !exists("/usr/lib/sleepingd"));
    assert.ok((await Deno.readTextFile(CONFFILE)).endsWith(edit), "dpkg -r removed the conffile");
    await Deno.mkdir("/var/log/sleepingd", { recursive: true }); // as a LOG_FILE there makes it
    await ok("dpkg", "-P", "sleepingd");
    assert.ok(!exists("/etc/sleepingd"), "dpkg -P left /etc/sleepingd");
    assert.ok(!exists(LOGROTATE), "dpkg -P left the logrotate rules");
    assert.ok(!exists("/var/log/sleepingd"), "dpkg -P left the log folder");
    assert.ok(!exists("/run/sleepingd"), "dpkg -P left the run folder");
    assert.ok(!exists("/var/lib/sleepingd"), "dpkg -P left the history");
    assert.ok(!exists("/etc/systemd/system/sleepingd.service"), "dpkg -P left the unit masked");
  } finally {
    if (await installed()) {
      await installedCli(cwd, ["-f", CONFFILE, "stop"]);
      await runProgram("dpkg", ["-P", "sleepingd"]);
    }
  }
}

const { missing } = resolveRequirements(BUILD_TOOLS);
if (missing && !IN_CI) console.warn(`skipping the package tests: ${missing}`);

Deno.test({
  name: "deno task package builds a deb and an rpm of one layout",
  ignore: missing !== undefined && !IN_CI,
  async fn(t) {
    if (missing) throw new Error(`Cannot build the packages: ${missing}`);
    await packageChecks(t);
  },
});

/**
 * A folder of links to every program on PATH but `without`: a PATH on which
 * those tools are missing.
 */
async function pathWithout(root: string, without: string[]): Promise<string> {
  const bin = `${root}/bin`;
  await Deno.mkdir(bin);
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    const entries = await Array.fromAsync(Deno.readDir(dir)).catch(() => []);
    for (const { name } of entries) {
      if (without.includes(name) || exists(`${bin}/${name}`)) continue;
      await Deno.symlink(`${dir}/${name}`, `${bin}/${name}`);
    }
  }
  return bin;
}

/** `deno run -A packaging/package.ts ARGS` with PATH set to `path`. */
function packageWithPath(path: string, ...args: string[]): Promise<Output> {
  return runProgram(Deno.execPath(), ["run", "-A", "packaging/package.ts", ...args], {
    cwd: REPO,
    env: { NO_COLOR: "1", PATH: path },
    timeoutMs: BUILD_TIMEOUT_MS,
  });
}

Deno.test({
  name: "deno task package builds each format whose tools are here, names the missing ones first",
  ignore: !findBinary("dpkg-deb") && !IN_CI,
  async fn() {
    await using dir = await tempFiles({});
    const dist = `${dir.path}/dist`;
    await Deno.mkdir(dist);
    const noRpmbuild = await pathWithout(dir.path, ["rpmbuild"]);

    // Asked for, the rpm fails at once, before any work: nothing is written.
    const rpm = await packageWithPath(noRpmbuild, "--rpm", "--fast", "--dist", dist);
    assert.equal(rpm.code, 1, rpm.stderr);
    assert.equal(
      rpm.stderr,
      "package: cannot build the rpm: rpmbuild is not installed " +
        "(apt-get install rpm, or dnf install rpm-build)\n",
    );
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dist)), []);

    // Not asked for, it is skipped with what to install, and the deb is built.
    const both = await packageWithPath(noRpmbuild, "--fast", "--dist", dist);
    assert.equal(both.code, 0, both.stderr);
    const lines = both.stderr.trim().split("\n");
    assert.equal(
      lines[0],
      "package: skipping the rpm: rpmbuild is not installed " +
        "(apt-get install rpm, or dnf install rpm-build)",
    );
    assert.match(lines[1], /^package: wrote .*\/sleepingd_.*\.deb \(/);
    const written = (await Array.fromAsync(Deno.readDir(dist))).map((entry) => entry.name).sort();
    assert.deepEqual(written, ["SHA256SUMS", `sleepingd_${VERSION}_${hostTarget().debArch}.deb`]);
  },
});

Deno.test("deno task package fails at once when no format can be built, and has --help", async () => {
  await using dir = await tempFiles({});
  const neither = await pathWithout(dir.path, ["rpmbuild", "dpkg-deb"]);
  const none = await packageWithPath(neither, "--dist", dir.path);
  assert.equal(none.code, 1);
  assert.equal(
    none.stderr,
    "package: cannot build the deb: dpkg-deb is not installed (apt-get install dpkg, or dnf " +
      "install dpkg); nor the rpm: rpmbuild is not installed (apt-get install rpm, or dnf " +
      "install rpm-build)\n",
  );
  const help = await packageWithPath(neither, "--help");
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: deno task package \[--deb\] \[--rpm\]/);
  assert.match(help.stdout, /the rpm\s+rpmbuild \(rpm on Debian and Ubuntu, rpm-build on Fedora\)/);
  const unknown = await packageWithPath(neither, "--debs");
  assert.equal(unknown.code, 1);
  assert.equal(unknown.stderr, "package: Unknown option '--debs' (see --help)\n");
});

Deno.test("the sources state their licence: Apache-2.0, its full text in LICENSE", async () => {
  const license = await Deno.readFile(`${REPO}LICENSE`);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", license));
  const hex = Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
  assert.equal(hex, APACHE_2_SHA256, "LICENSE is not the Apache License 2.0 text, unchanged");
  const config = JSON.parse(await Deno.readTextFile(`${REPO}deno.json`));
  assert.equal(config.license, "Apache-2.0");
  const copyright = await Deno.readTextFile(`${REPO}packaging/debian/copyright`);
  assert.match(copyright, /License: Apache-2\.0\./);
  assert.doesNotMatch(copyright, /no licen[cs]e/i);
});

Deno.test("deno task compile and package refuse what they cannot build, in one line", async () => {
  const other = Deno.build.arch === "x86_64" ? "aarch64" : "x86_64";
  await using empty = await tempFiles({});
  const cases: [string, string[], Record<string, string>, RegExp][] = [
    ["compile", ["--target", "x86_64-apple-darwin"], {}, /runs on Linux only/],
    ["compile", [], { DENORT_BIN: "/nonexistent/denort" }, /there is no such file/],
    [
      "compile",
      ["--target", `${other}-unknown-linux-gnu`],
      { DENORT_BIN: Deno.execPath() },
      /is the runtime for/,
    ],
    [
      "package",
      ["--target", `${other}-unknown-linux-gnu`, "--dist", empty.path],
      {},
      /deno task compile --target/,
    ],
    ["package", ["--version", "1.0-2"], {}, /must start with a digit/],
  ];
  for (const [task, args, env, reason] of cases) {
    const { code, stderr } = await runProgram(Deno.execPath(), ["task", task, ...args], {
      cwd: REPO,
      env: { NO_COLOR: "1", ...env },
    });
    const lines = stderr.trim().split("\n").filter((line) => !line.startsWith("Task "));
    assert.equal(code, 1, `${task} ${args.join(" ")}: ${stderr}`);
    assert.equal(lines.length, 1, `${task} ${args.join(" ")}: ${stderr}`);
    assert.match(lines[0], new RegExp(`^${task}: `));
    assert.match(lines[0], reason);
  }
});
