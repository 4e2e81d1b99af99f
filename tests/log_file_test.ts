/**
 * The log file on a real file system: rotation by size within its bound, and
 * an open that follows no link and takes no file that is not sleepingd's.
 */
import assert from "node:assert/strict";
import { LogFile, type Rotation } from "../src/log_file.ts";
import { tempFiles } from "./_helpers.ts";

const encoder = new TextEncoder();

/** A line of `size` bytes, newline included, starting with `tag`. */
function line(tag: string, size = 100): Uint8Array {
  return encoder.encode(`${tag} `.padEnd(size - 1, "x") + "\n");
}

/** The files of `folder`, as `name -> size`, sorted by name. */
function sizes(folder: string): Record<string, number> {
  const names = [...Deno.readDirSync(folder)].map((entry) => entry.name).sort();
  return Object.fromEntries(names.map((name) => [name, Deno.statSync(`${folder}/${name}`).size]));
}

/** Opens a log file that records its rotation errors. */
function open(path: string, rotation: Rotation) {
  const errors: string[] = [];
  const file = new LogFile(path, rotation, (error) => errors.push(error.message));
  return { file, errors };
}

Deno.test("a new log file is mode 600, in a folder made mode 750", async () => {
  await using dir = await tempFiles({});
  const path = `${dir.path}/logs/sleepingd.log`;
  const { file } = open(path, { maxBytes: 0, maxFiles: 1 });
  file.write(line("one"));
  file.close();
  assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
  assert.equal(Deno.statSync(`${dir.path}/logs`).mode! & 0o777, 0o750);
  assert.equal(Deno.readTextFileSync(path), new TextDecoder().decode(line("one")));
});

Deno.test("rotation keeps maxFiles files of at most maxBytes, newest lines in the file itself", async () => {
  await using dir = await tempFiles({});
  const path = `${dir.path}/s.log`;
  const { file, errors } = open(path, { maxBytes: 1000, maxFiles: 3 });
  for (let i = 0; i < 100; i++) file.write(line(`line ${i}`));
  file.close();
  assert.deepEqual(sizes(dir.path), { "s.log": 1000, "s.log.1": 1000, "s.log.2": 1000 });
  assert.match(Deno.readTextFileSync(path), /^line 90 x+\n(.*\n){8}line 99 x+\n$/);
  assert.match(Deno.readTextFileSync(`${path}.2`), /^line 70 /);
  assert.deepEqual(errors, []);
});

Deno.test("maxFiles=1 keeps no older file; a lowered maxFiles removes those past it", async () => {
  await using dir = await tempFiles({ "s.log.1": "old\n", "s.log.5": "older\n", "s.log.x": "x" });
  const path = `${dir.path}/s.log`;
  const { file } = open(path, { maxBytes: 250, maxFiles: 1 });
  for (let i = 0; i < 6; i++) file.write(line(`line ${i}`));
  file.close();
  assert.deepEqual(sizes(dir.path), { "s.log": 200, "s.log.x": 1 });
  assert.match(Deno.readTextFileSync(path), /^line 4 /);
});

Deno.test("a line longer than maxBytes gets a file of its own, never split", async () => {
  await using dir = await tempFiles({});
  const path = `${dir.path}/s.log`;
  const { file } = open(path, { maxBytes: 100, maxFiles: 3 });
  file.write(line("short", 50));
  file.write(line("long", 300));
  file.write(line("after", 50));
  file.close();
  assert.deepEqual(sizes(dir.path), { "s.log": 50, "s.log.1": 300, "s.log.2": 50 });
});

Deno.test("a file shrunk by someone else (copytruncate) is not rotated before it is full again", async () => {
  await using dir = await tempFiles({});
  const path = `${dir.path}/s.log`;
  const { file } = open(path, { maxBytes: 1000, maxFiles: 2 });
  for (let i = 0; i < 9; i++) file.write(line(`line ${i}`));
  Deno.truncateSync(path, 0);
  for (let i = 0; i < 9; i++) file.write(line(`again ${i}`));
  file.close();
  assert.deepEqual(sizes(dir.path), { "s.log": 900 });
});

Deno.test("a log moved away without a reopen is left alone at rotation: a new file begins", async () => {
  await using dir = await tempFiles({});
  const path = `${dir.path}/s.log`;
  const { file } = open(path, { maxBytes: 300, maxFiles: 2 });
  file.write(line("one"));
  Deno.renameSync(path, `${dir.path}/moved.log`);
  file.write(line("two"));
  file.write(line("three"));
  file.write(line("four")); // past 300 bytes: rotates
  file.close();
  assert.deepEqual(sizes(dir.path), { "moved.log": 300, "s.log": 100 });
  assert.match(Deno.readTextFileSync(path), /^four /);
});

Deno.test("reopen() takes a new file at the path once the old one was moved", async () => {
  await using dir = await tempFiles({});
  const path = `${dir.path}/s.log`;
  const { file } = open(path, { maxBytes: 0, maxFiles: 1 });
  file.write(line("before"));
  Deno.renameSync(path, `${path}-20261206`);
  file.write(line("late")); // written before the reopen: goes with the moved file
  file.reopen();
  file.write(line("after"));
  file.close();
  assert.match(Deno.readTextFileSync(`${path}-20261206`), /^before x+\nlate x+\n$/);
  assert.match(Deno.readTextFileSync(path), /^after x+\n$/);
  assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
});

Deno.test("a rotation that fails is reported once, the log goes on, and it is tried again later", async () => {
  await using dir = await tempFiles({ "s.log.1/keep": "a folder in the way" });
  const path = `${dir.path}/s.log`;
  const { file, errors } = open(path, { maxBytes: 500, maxFiles: 2 });
  for (let i = 0; i < 9; i++) file.write(line(`line ${i}`));
  assert.equal(errors.length, 1, errors.join("\n"));
  assert.equal(Deno.statSync(path).size, 900);
  Deno.removeSync(`${path}.1`, { recursive: true });
  for (let i = 0; i < 2; i++) file.write(line(`more ${i}`)); // 1000 bytes reached again
  file.close();
  assert.equal(errors.length, 1);
  assert.deepEqual(sizes(dir.path), { "s.log": 100, "s.log.1": 1000 });
});

Deno.test("an existing log that is a link, a folder or has two names is refused, its target untouched", async () => {
  await using dir = await tempFiles({ "target": "secret\n", "folder/x": "" });
  const target = `${dir.path}/target`;
  Deno.symlinkSync(target, `${dir.path}/link.log`);
  Deno.symlinkSync(`${dir.path}/nowhere`, `${dir.path}/dangling.log`);
  Deno.linkSync(target, `${dir.path}/hard.log`);
  const cases: [string, RegExp][] = [
    ["link.log", /is a symbolic link: sleepingd never follows one/],
    ["dangling.log", /is a symbolic link/],
    ["folder", /is not a regular file/],
    ["hard.log", /has 1 other hard link\(s\)/],
  ];
  for (const [name, reason] of cases) {
    const path = `${dir.path}/${name}`;
    assert.throws(
      () => open(path, { maxBytes: 0, maxFiles: 1 }),
      (error: Error) => {
        assert.match(error.message, new RegExp(`^Cannot open log file "${path}": `));
        assert.match(error.message, reason);
        return true;
      },
      name,
    );
  }
  assert.equal(Deno.readTextFileSync(target), "secret\n");
  assert.throws(() => Deno.lstatSync(`${dir.path}/nowhere`), Deno.errors.NotFound);
});

Deno.test({
  name: "an existing log of another user is refused (as root)",
  ignore: Deno.uid() !== 0,
  async fn() {
    await using dir = await tempFiles({ "theirs.log": "" });
    const path = `${dir.path}/theirs.log`;
    Deno.chownSync(path, 65534, 65534);
    assert.throws(
      () => open(path, { maxBytes: 0, maxFiles: 1 }),
      /is owned by uid 65534, not by root or sleepingd's user \(uid 0\)/,
    );
  },
});

Deno.test("rotation never follows a link planted at FILE.1 or at FILE", async () => {
  await using dir = await tempFiles({ "target": "secret\n" });
  const path = `${dir.path}/s.log`;
  const target = `${dir.path}/target`;
  Deno.symlinkSync(target, `${path}.1`);
  const { file, errors } = open(path, { maxBytes: 150, maxFiles: 2 });
  file.write(line("one"));
  file.write(line("two")); // rotates: s.log replaces the link at s.log.1
  assert.ok(!Deno.lstatSync(`${path}.1`).isSymlink);
  Deno.renameSync(path, `${dir.path}/aside`);
  Deno.symlinkSync(target, path); // planted at the path before the next rotation
  file.write(line("three")); // the path is not this file: a new one is tried, refused
  file.close();
  assert.equal(Deno.readTextFileSync(target), "secret\n");
  assert.equal(errors.length, 1);
  assert.match(errors[0], /is a symbolic link/);
});
