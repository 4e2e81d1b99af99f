/**
 * Which paths the daemon trusts, on real folders: writable by others (refused
 * as the folder, fine on the way when sticky), links (followed and checked),
 * `..`, and parts that do not exist yet.
 */
import assert from "node:assert/strict";
import { requireTrustedFolder, untrustedReason } from "../src/fs/trusted_path.ts";

Deno.test("untrustedReason() refuses a folder others may write, even sticky, but not a sticky one on the way", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-trust-" });
  try {
    assert.equal(untrustedReason(dir), undefined, "a fresh temporary folder (under sticky /tmp)");
    assert.equal(untrustedReason(`${dir}/not/yet`), undefined, "parts to create");
    await Deno.mkdir(`${dir}/shared`);
    await Deno.chmod(`${dir}/shared`, 0o1777);
    assert.equal(
      untrustedReason(`${dir}/shared`),
      `${dir}/shared is writable by every user (mode 1777)`,
    );
    await Deno.mkdir(`${dir}/shared/mine`, { mode: 0o700 });
    assert.equal(untrustedReason(`${dir}/shared/mine`), undefined, "sticky on the way");
    await Deno.mkdir(`${dir}/group`);
    await Deno.chmod(`${dir}/group`, 0o770);
    assert.equal(
      untrustedReason(`${dir}/group/x`),
      `${dir}/group is writable by its group (mode 770)`,
    );
    assert.equal(
      untrustedReason(`${dir}/shared/mine/../../group`),
      `${dir}/group is writable by its group (mode 770)`,
    );
    // A link of the daemon's user's own is followed, and where it leads is checked.
    await Deno.symlink(`${dir}/group`, `${dir}/link`);
    assert.equal(
      untrustedReason(`${dir}/link/run`),
      `${dir}/group is writable by its group (mode 770)`,
    );
    await Deno.symlink("shared/mine", `${dir}/relative`);
    assert.equal(untrustedReason(`${dir}/relative`), undefined);
    assert.throws(() => requireTrustedFolder(`${dir}/group`, "STATE_PATH"), {
      name: "UntrustedPathError",
      message:
        `Cannot use STATE_PATH "${dir}/group": ${dir}/group is writable by its group (mode ` +
        "770), so another user could replace or plant the files sleepingd keeps there: set " +
        "STATE_PATH to a folder only root and sleepingd's user can change, or make each folder " +
        "on its way theirs and writable by them alone (chown, chmod go-w)",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
