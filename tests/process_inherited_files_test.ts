/**
 * Files a process inherited open are kept from the commands it runs, in a
 * real child Deno that inherited one: with close_range, and with the fcntl
 * fallback for kernels before 5.11.
 */
import assert from "node:assert/strict";
import { runProgram } from "./_helpers.ts";

const MODULE = new URL("../src/process/inherited_files.ts", import.meta.url).href;

/** Runs `body` in a Deno that inherited fd 7, then the descriptors a command it spawns has. */
async function descriptorsOfCommand(body: string): Promise<{ before: string[]; after: string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-fds-" });
  try {
    const script = `${dir}/child.ts`;
    await Deno.writeTextFile(
      script,
      `import { keepInheritedFilesFromCommands, markEach } from "${MODULE}";
const list = async () => new TextDecoder().decode((await new Deno.Command("bash", {
  args: ["-c", "ls /proc/$$/fd; true"],
}).output()).stdout).trim().split("\\n").sort();
const before = await list();
${body}
console.log(JSON.stringify({ before, after: await list() }));
`,
    );
    const result = await runProgram("bash", [
      "-c",
      `exec 7<${script} && exec "$@"`,
      "bash",
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      script,
    ]);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("keepInheritedFilesFromCommands() keeps an inherited file from the commands spawned after", async () => {
  const { before, after } = await descriptorsOfCommand(
    "if (!keepInheritedFilesFromCommands().done) throw new Error('not done');",
  );
  assert.ok(before.includes("7"), `the command inherited fd 7 before: ${before}`);
  assert.deepEqual(after, ["0", "1", "2"]);
});

Deno.test("markEach() with fcntl, as where close_range is missing, does the same", async () => {
  const { before, after } = await descriptorsOfCommand(`
const libc = Deno.dlopen("libc.so.6", { fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" } });
const result = markEach((fd) => libc.symbols.fcntl(fd, 2, 1) === 0);
if (!result.done) throw new Error(result.how);`);
  assert.ok(before.includes("7"));
  assert.deepEqual(after, ["0", "1", "2"]);
});
