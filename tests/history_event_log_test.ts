/**
 * The event log on real files: read back after a restart, corrupt and
 * truncated lines skipped with a warning, the size bound, a folder that
 * cannot be written.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { ChangeEvent, HistoryEvent } from "../src/history/event.ts";
import { EventLog, LOG_FILE } from "../src/history/event_log.ts";
import { tempFiles } from "./_helpers.ts";
import { captureLog } from "./_service.ts";

const STATES = () => ({ web: "asleep" as const });

function event(index: number, reason = "connection from 127.0.0.1:5000"): ChangeEvent {
  return {
    time: new Date(Date.UTC(2026, 10, 30) + index * 1000).toISOString(),
    service: "web",
    from: index % 2 ? "starting" : "asleep",
    to: index % 2 ? "asleep" : "starting",
    reason: `${reason} #${index}`,
    lasted: index,
  };
}

/** The events the log's files hold, read as a new daemon reads them. */
function reopen(folder: string): readonly HistoryEvent[] {
  const log = new EventLog({ folder, states: STATES });
  log.close();
  return log.events;
}

Deno.test("EventLog: events appended are read back by the next daemon", async () => {
  await using dir = await tempFiles({});
  const folder = `${dir.path}/state`; // created on open
  const log = new EventLog({ folder, states: STATES });
  const written = [0, 1, 2].map((index) => event(index));
  for (const one of written) log.append(one);
  log.close();
  assert.equal(log.path, undefined, "closed");
  assert.deepEqual(reopen(folder), written);
  assert.equal((await Deno.stat(`${folder}/${LOG_FILE}`)).mode! & 0o777, 0o640);
});

Deno.test("EventLog: corrupt lines and a line cut by a crash are skipped with a warning", async () => {
  const good = [event(0), event(1)];
  await using dir = await tempFiles({
    [LOG_FILE]: `${JSON.stringify(good[0])}\nnot json\n{"time":"yesterday"}\n` +
      `${JSON.stringify(good[1])}\n{"time":"2026-11-30T00:00:09.000Z","service":"we`,
  });
  await using capture = await captureLog();
  const log = new EventLog({ folder: dir.path, states: STATES });
  assert.deepEqual(log.events, good);
  const warning = capture.lines().find((line) => line.includes("skipped"));
  assert.match(
    warning ?? "",
    new RegExp(
      `${dir.path}/${LOG_FILE}:2: skipped 3 line\\(s\\) that are not events \\(lines 2-3, 5\\)`,
    ),
  );
  // The next event starts on a line of its own: the cut line does not swallow it.
  log.append(event(2));
  log.close();
  assert.deepEqual(reopen(dir.path), [...good, event(2)]);
});

Deno.test("EventLog: two files of at most fileLimit bytes; memory holds what they hold", async () => {
  await using dir = await tempFiles({});
  const fileLimit = 2_000;
  const log = new EventLog({ folder: dir.path, fileLimit, states: STATES });
  for (let index = 0; index < 200; index++) log.append(event(index));
  const files = [...Deno.readDirSync(dir.path)].map((entry) => entry.name).sort();
  assert.deepEqual(files, [LOG_FILE, `${LOG_FILE}.1`]);
  for (const file of files) {
    assert.ok(Deno.statSync(`${dir.path}/${file}`).size <= fileLimit, `${file} within the bound`);
  }
  const newest = Deno.readTextFileSync(`${dir.path}/${LOG_FILE}`).split("\n")[0];
  assert.deepEqual(JSON.parse(newest).daemon, "continued", "a new file begins with the states");
  assert.deepEqual(JSON.parse(newest).states, { web: "asleep" });
  assert.deepEqual(log.events.at(-1), event(199));
  log.close();
  assert.deepEqual(reopen(dir.path), log.events);
});

Deno.test("EventLog: any sequence of events stays within the bound and reads back whole", async () => {
  await using dir = await tempFiles({});
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 300, max: 3_000 }),
      fc.array(fc.string({ maxLength: 200 }), { maxLength: 120 }),
      async (fileLimit, reasons) => {
        const folder = `${dir.path}/${run++}`;
        const log = new EventLog({ folder, fileLimit, states: STATES });
        reasons.forEach((reason, index) => log.append(event(index, reason)));
        log.close();
        const longest = Math.max(0, ...log.events.map((one) => JSON.stringify(one).length * 3));
        for await (const entry of Deno.readDir(folder)) {
          const size = (await Deno.stat(`${folder}/${entry.name}`)).size;
          assert.ok(size <= fileLimit + 2 * longest, `${entry.name}: ${size} bytes`);
        }
        assert.deepEqual(reopen(folder), log.events);
        const appended = log.events.filter((one) => "service" in one);
        assert.deepEqual(
          appended.map((one) => (one as ChangeEvent).reason),
          reasons.slice(reasons.length - appended.length).map((reason, index) =>
            `${reason} #${reasons.length - appended.length + index}`
          ),
          "memory holds the newest events, in order",
        );
      },
    ),
    { numRuns: 40 },
  );
});

Deno.test("EventLog: a folder that cannot be written keeps the history in memory, said once", async () => {
  await using dir = await tempFiles({ "file": "" });
  await using capture = await captureLog();
  const folder = `${dir.path}/file/state`; // under a file: mkdir fails
  const log = new EventLog({ folder, states: STATES });
  log.append(event(0));
  assert.deepEqual(log.events, [event(0)]);
  assert.equal(log.path, undefined);
  const warnings = capture.lines().filter((line) => line.includes("cannot keep the history"));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], new RegExp(`STATE_PATH ${folder}: .*it lasts until sleepingd stops`));
});

Deno.test("EventLog: listeners hear each event appended until they stop listening", () => {
  const log = new EventLog({ states: STATES });
  const heard: HistoryEvent[] = [];
  const stop = log.subscribe((one) => heard.push(one));
  log.append(event(0));
  stop();
  log.append(event(1));
  assert.deepEqual(heard, [event(0)]);
});
