/**
 * Property-based tests of the configuration reader: random and near-valid
 * files never make `parseConfigText()` or `buildConfig()` fail in any way
 * but a `FILE:LINE: ` error on a line of the file, what they accept the real
 * `sleepingd check` accepts too, and 1 MiB of random text is read in bounded
 * time.
 *
 * fast-check prints the seed and the shrunk counterexample of a failure;
 * rerun it with `fc.assert(..., { seed, path })`.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { ConfigError, formatIssue, InvalidConfigError } from "../src/config/config_error.ts";
import { type KeyDefinition, KEYS, KEYS_BY_NAME } from "../src/config/keys.ts";
import { buildConfig } from "../src/config/load.ts";
import { parseConfigText, type RawEntry } from "../src/config/parse.ts";
import { folderWarnings } from "../src/config/folders.ts";
import type { Config, ConfigIssue } from "../src/config/types.ts";
import { kernelPathErrors, kernelServices } from "../src/kernel/checks.ts";
import { bounded, runCli } from "./_helpers.ts";

/** The name the pure properties give their file. */
const FILE = "fuzz.conf";

/** How many lines `parseConfigText()` sees in `text`: `\n` (and so `\r\n`) ends a line. */
function lineCount(text: string): number {
  return text.split("\n").length;
}

/**
 * Asserts that every error is a {@linkcode ConfigError} naming `file` and a
 * line of `text`, with a message that starts with `FILE:LINE: `, in line
 * order.
 */
function assertPlaced(errors: readonly unknown[], file: string, text: string): void {
  const lines = lineCount(text);
  let previous = 0;
  for (const error of errors) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    assert.equal(error.file, file, error.message);
    assert.ok(
      Number.isInteger(error.line) && error.line >= 1 && error.line <= lines,
      `line ${error.line} is not a line of a ${lines}-line text: ${error.message}`,
    );
    assert.ok(
      error.message.startsWith(`${file}:${error.line}: `),
      `expected "${file}:${error.line}: " to start ${JSON.stringify(error.message)}`,
    );
    assert.ok(error.line >= previous, `errors out of line order at ${error.message}`);
    previous = error.line;
  }
}

/** Characters that mean something in the dialect, to make random text hit its rules. */
const CONFIG_CHARS = [
  ..."[]\"'#=\\ \t\n\r\n\u0000\uFEFF\u2028\u00A0",
  ..."APORT_x1 ",
];

/** Random text made mostly of {@linkcode CONFIG_CHARS}, with some of every kind. */
const configLikeText = fc.string({
  unit: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...CONFIG_CHARS) },
    { weight: 1, arbitrary: fc.constantFrom("PORT", "START_CMD", "[web]", "\r\n", '\\"') },
    { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
  ),
  maxLength: 300,
});

Deno.test("parseConfigText() never throws on random text and places every error on one of its lines", () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.string({ unit: "binary", maxLength: 300 }), configLikeText),
      (text) => {
        const parsed = parseConfigText(text, FILE);
        assert.equal(parsed.file, FILE);
        assertPlaced(parsed.errors, FILE, text);
        for (const entry of [...parsed.global, ...parsed.sections.flatMap((s) => s.entries)]) {
          assert.ok(entry.location.line >= 1 && entry.location.line <= lineCount(text));
        }
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("parseConfigText() never throws on random bytes decoded as UTF-8 and places every error on one of its lines", () => {
  const decoder = new TextDecoder();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      const text = decoder.decode(bytes);
      assertPlaced(parseConfigText(text, FILE).errors, FILE, text);
    }),
    { numRuns: 500 },
  );
});

// A grammar of near-valid files: global lines, then `[Section]` headers with
// their lines; real keys with values that are valid, blank or mutated.

/** A value the key takes, as it would be written. */
function validValue(key: KeyDefinition | undefined): fc.Arbitrary<string> {
  switch (key?.name) {
    case "LOG_FORMAT":
      return fc.constantFrom("text", "json");
    case "METRICS_ADDRESS":
      return fc.constantFrom("127.0.0.1:9180", "[::1]:9180", "localhost:80");
    case "CONNECT_TIMEOUT":
      return fc.constantFrom("1", "2.5", ".5", "10.", "30");
  }
  switch (key?.kind) {
    case "boolean":
      return fc.constantFrom("yes", "no", "true", "false", "1", "0", "YES", "No");
    case "port": // some from a small pool, so that services clash
      return fc.oneof(fc.integer({ min: 1, max: 65535 }).map(String), fc.constantFrom("80", "22"));
    case "seconds":
      return fc.oneof(
        fc.constantFrom("0", "5", "2.5", ".5", "10.", "60"),
        fc.nat({ max: 100_000 }).map(String),
      );
    case "count":
      return fc.oneof(fc.constantFrom("0", "1", "100"), fc.nat().map(String));
    case "size":
      return fc.constantFrom("0", "4M", "512K", "64 KiB", "1G", "1048576", "10MB");
    case "command":
      return fc.constantFrom(
        "echo 127.0.0.1 8080",
        'printf "%s\\n" "127.0.0.1 9000"',
        "test -e /tmp/up && echo 127.0.0.1 80",
        "systemctl start x; echo ::1 22",
        "exit 1",
      );
    case "addresses":
      return fc.constantFrom("::", "127.0.0.1", "127.0.0.1 ::1", "0.0.0.0", "::1");
    case "rules":
      return fc.constantFrom("10.0.0.0/8", "192.0.2.1, 2001:db8::/32", "::1 127.0.0.1", "::/0");
    case "choice":
      return fc.constantFrom(...key!.choices!, ...key!.choices!.map((c) => c.toUpperCase()));
    case "text":
      return fc.constantFrom("nobody", "/tmp/sleepingd-fuzz", "a b");
    default:
      return fc.stringMatching(/^[a-z0-9 ./:-]{0,16}$/);
  }
}

/** Writes `value` the ways the dialect allows without changing it. */
function requote(value: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(value, fc.constantFrom("bare", "double", "single", "comment", "split"))
    .map(([text, how]) => {
      if (text.includes('"') || text.includes("'") || text.includes("#")) return text;
      switch (how) {
        case "double":
          return `"${text}"`;
        case "single":
          return `'${text}'`;
        case "comment":
          return `${text} # a comment`;
        case "split":
          return text.length < 2 ? text : `${text.slice(0, 1)}"${text.slice(1)}"`;
        default:
          return text;
      }
    });
}

/** Values that are wrong but readable: bad numbers and ports, stray `#`, multi-line quotes. */
function semanticMutation(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom("-1", "1e3", "abc", "0x10", "1.2.3", "NaN", "Infinity", "5 5", "\u0661"),
    fc.constantFrom("0", "65536", "99999", "-80", "80.5", "+80", "８０", "1 2"),
    valid.map((text) => `${text}#x`),
    valid.map((text) => `#${text}`),
    valid.map((text) => `"${text}\nmore lines\n"`),
    valid.map((text) => `'${text}\r\n'`),
    valid.map((text) => `${text}\\`),
    valid.map((text) => `${text}\u00A0`),
  );
}

/** Values that may make the line, or the rest of the file, unreadable: open quotes, noise. */
function syntaxMutation(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.oneof(
    semanticMutation(valid),
    valid.map((text) => `"${text}`),
    valid.map((text) => `'${text}`),
    valid.map((text) => `"${text}\\"`),
    valid.map((text) => `${text}\r`),
    fc.string({ unit: fc.constantFrom(...CONFIG_CHARS), maxLength: 12 }),
  );
}

const KNOWN_KEYS = KEYS.map(({ name }) => name);
const UNKNOWN_KEYS = ["PROT", "START_COMMAND", "Port", "FOO", "_x", "a1", "IDLE_TIMEOUT"];

/** A key: mostly real ones, some unknown (a warning), some random. */
const keyName = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom(...KNOWN_KEYS) },
  { weight: 1, arbitrary: fc.constantFrom(...UNKNOWN_KEYS) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,12}$/) },
);

/** `KEY=value` with the spacing the dialect ignores. */
function assignment(key: string, value: string, pad: [string, string, string]): string {
  return `${pad[0]}${key}${pad[1]}=${pad[2]}${value}`;
}

const padding = fc.tuple(
  fc.constantFrom("", "", "  ", "\t"),
  fc.constantFrom("", "", " "),
  fc.constantFrom("", "", " ", "\t"),
);

/** Values for `key`, built once per key (building arbitraries is the slow part). */
function valuesOf(key: string, syntax: boolean): fc.Arbitrary<string> {
  const valid = validValue(KEYS_BY_NAME.get(key));
  return fc.oneof(
    { weight: 5, arbitrary: requote(valid) },
    { weight: 1, arbitrary: fc.constantFrom("", "  ", '""', "''") },
    { weight: 3, arbitrary: syntax ? syntaxMutation(valid) : semanticMutation(valid) },
  );
}

/** An assignment of each kind of key; `syntax` also makes lines that cannot be read. */
function assignments(syntax: boolean): fc.Arbitrary<string> {
  const byKey = new Map(
    [...KNOWN_KEYS, ...UNKNOWN_KEYS].map((key) => [key, valuesOf(key, syntax)]),
  );
  const other = valuesOf("", syntax);
  return fc.tuple(keyName, padding).chain(([key, pad]) =>
    (byKey.get(key) ?? other).map((value) => assignment(key, value, pad))
  );
}

/** A line of a near-valid file: an assignment (valid, blank or mutated value), or not. */
function nearValidLine(syntax: boolean): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 10, arbitrary: assignments(syntax) },
    { weight: 2, arbitrary: fc.constantFrom("", "   ", "# a comment", "  # PORT=1", "\t") },
    {
      weight: syntax ? 1 : 0,
      arbitrary: fc.constantFrom("foo bar", "=x", "[", "[ ]", "PORT", "1PORT=2", "[a] x", "P:80"),
    },
  );
}

/** A section name the check output can show: no `]`, not blank. */
const sectionName = fc.oneof(
  fc.constantFrom("web", "db", "Simple web server", "a", "x y z", "ssh-2", "web"),
  fc.stringMatching(/^[A-Za-z0-9_.-][A-Za-z0-9 _.-]{0,11}$/),
).filter((name) => name.trim() !== "global");

/** A `[Section]` header, with spacing and comments the dialect allows, or sometimes not. */
const header = fc.tuple(
  sectionName,
  fc.constantFrom("[N]", "[N]", " [ N ] ", "[N] # comment", "[N]\t"),
).map(([name, form]) => form.replace("N", name));

/** Files of `line`s: global lines, then sections, joined by LF or CRLF, maybe with a BOM. */
function fileOf(
  line: fc.Arbitrary<string>,
  section: fc.Arbitrary<string[]>,
): fc.Arbitrary<string> {
  return fc.record({
    global: fc.array(line, { maxLength: 6 }),
    sections: fc.array(section, { maxLength: 4 }),
    ends: fc.constantFrom(["\n"], ["\r\n"], ["\n", "\r\n"]),
    endIndex: fc.array(fc.nat(), { minLength: 60, maxLength: 60 }),
    bom: fc.boolean(),
    finalEnd: fc.boolean(),
  }).map(({ global, sections, ends, endIndex, bom, finalEnd }) => {
    const lines = [...global, ...sections.flat()];
    const text = lines.map((text, i) => text + ends[endIndex[i % 60] % ends.length]).join("");
    return (bom ? "\uFEFF" : "") + (finalEnd ? text : text.replace(/\r?\n$/, ""));
  });
}

/**
 * A section: its header and `line`s, with the `required` lines (a PORT, a
 * START_CMD) put in among them at random places; a `null` one is left out.
 */
function sectionOf(
  head: fc.Arbitrary<string>,
  line: fc.Arbitrary<string>,
  required: fc.Arbitrary<string | null>[],
): fc.Arbitrary<string[]> {
  return fc.tuple(
    head,
    fc.array(line, { maxLength: 6 }),
    fc.tuple(...required),
    fc.array(fc.nat(), { minLength: required.length, maxLength: required.length }),
  ).map(([head, lines, required, places]) => {
    const body = [...lines];
    required.forEach((line, i) => {
      if (line !== null) body.splice(places[i] % (body.length + 1), 0, line);
    });
    return [head, ...body];
  });
}

/** A near-valid file: readable lines with values right or wrong, or with unreadable lines too. */
const nearValidFile = fc.oneof(
  ...[false, true].map((syntax) => {
    const line = nearValidLine(syntax);
    const set = (key: string) =>
      fc.option(valuesOf(key, syntax).map((value) => `${key}=${value}`), { freq: 5 });
    const head = fc.oneof(
      { weight: 8, arbitrary: header },
      { weight: syntax ? 1 : 0, arbitrary: fc.constant("[ ]") },
    );
    return fileOf(line, sectionOf(head, line, [set("PORT"), set("START_CMD")]));
  }),
);

Deno.test("buildConfig() rejects near-valid files only with InvalidConfigError, each error at a FILE:LINE of the file", () => {
  let accepted = 0;
  fc.assert(
    fc.property(nearValidFile, (text) => {
      const parsed = parseConfigText(text, FILE);
      assertPlaced(parsed.errors, FILE, text);
      let config: Config;
      try {
        config = buildConfig([parsed]);
      } catch (error) {
        assert.ok(error instanceof InvalidConfigError, `expected InvalidConfigError: ${error}`);
        assert.ok(error.errors.length > 0, "an InvalidConfigError without errors");
        assertPlaced(error.errors, FILE, text);
        for (const warning of error.warnings) {
          assert.ok(warning.location.line >= 1 && warning.location.line <= lineCount(text));
        }
        return;
      }
      accepted++;
      for (const warning of config.warnings) {
        assert.equal(warning.location.file, FILE);
        assert.ok(warning.location.line >= 1 && warning.location.line <= lineCount(text));
      }
    }),
    { numRuns: 500 },
  );
  // Not a property, a check that the grammar is near enough to valid to test both outcomes.
  assert.ok(accepted > 0, "no near-valid file was accepted: the grammar tests only rejections");
});

// Files the check can accept: only valid (or blank) values, each section with a
// PORT and a START_CMD, plus other valid keys, unknown keys, comments and quotes.

/** Keys a clean file sets besides each section's PORT and START_CMD. */
const CLEAN_KEYS = KNOWN_KEYS.filter((name) => !["PORT", "START_CMD", "CHECK_CMD"].includes(name));

/** A line of a file the check should accept, though it may warn. */
const cleanLine: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(...CLEAN_KEYS).chain((key) =>
      fc.tuple(
        fc.oneof(
          { weight: 4, arbitrary: requote(validValue(KEYS_BY_NAME.get(key))) },
          { weight: 1, arbitrary: fc.constantFrom("", '""') },
        ),
        padding,
      ).map(([value, pad]) => assignment(key, value, pad))
    ),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom(...UNKNOWN_KEYS), padding).map(([key, pad]) =>
      assignment(key, "1", pad)
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom("", "# PORT=1", "  # comment", "STOP_CMD='a\nb'") },
);

/** A section with its PORT and START_CMD, among other clean lines. */
const cleanSection = sectionOf(header, cleanLine, [
  requote(fc.integer({ min: 1, max: 65535 }).map(String)).map((port) => `PORT=${port}`),
  requote(validValue(KEYS_BY_NAME.get("START_CMD"))).map((cmd) => `START_CMD=${cmd}`),
]);

const cleanFile = fileOf(cleanLine, cleanSection);

/** The last value of each key of each section, by section name ("global" for the global one). */
function lastValues(text: string): Map<string, Map<string, RawEntry>> {
  const parsed = parseConfigText(text, FILE);
  const sections = new Map([["global", new Map(parsed.global.map((e) => [e.key, e]))]]);
  for (const { name, entries } of parsed.sections) {
    const merged = sections.get(name) ?? new Map<string, RawEntry>();
    for (const entry of entries) merged.set(entry.key, entry);
    sections.set(name, merged);
  }
  return sections;
}

Deno.test("sleepingd check accepts every file buildConfig() accepts and lists each active service with its port", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sleepingd-fuzz-" });
  const path = `${dir}/fuzz.conf`;
  let checked = 0;
  try {
    await fc.assert(
      fc.asyncProperty(cleanFile, async (text) => {
        let config: Config;
        try {
          config = buildConfig([parseConfigText(text, path)]);
        } catch (error) {
          if (!(error instanceof InvalidConfigError)) throw error;
          fc.pre(false); // e.g. two sections on one port: the near-valid property covers it
          return;
        }
        // FORWARD=kernel on a host without nft or root: check refuses, as it must.
        fc.pre(kernelPathErrors(config).length === 0);
        await Deno.writeTextFile(path, text);
        const { code, stdout, stderr } = await runCli(["-f", path, "check"]);
        const context =
          `\n--- file ---\n${text}\n--- stdout ---\n${stdout}--- stderr ---\n${stderr}`;
        assert.equal(code, 0, `check failed${context}`);
        const errLines = stderr.split("\n").filter((line) => line !== "");
        for (const line of errLines) {
          assert.ok(line.startsWith("sleepingd: warning: "), `not a warning: ${line}${context}`);
        }
        // The configuration's own warnings first, each at its line, exactly as buildConfig()
        // gives them; after them only what check says of this host, which no configuration
        // reader can know: folders this user cannot write, and for FORWARD=kernel the host's
        // forwarding and other tables' drops, at that service's FORWARD line.
        const configLines = config.warnings.map((issue) =>
          `sleepingd: warning: ${formatIssue(issue)}`
        );
        assert.deepEqual(
          errLines.slice(0, configLines.length),
          configLines,
          `warnings differ${context}`,
        );
        const hostLines = errLines.slice(configLines.length);
        const folderLines = folderWarnings(config.global).map((issue) =>
          `sleepingd: warning: ${
            issue.location ? formatIssue(issue as ConfigIssue) : issue.message
          }`
        );
        for (const line of hostLines) {
          const kernelLine = kernelServices(config).some((service) => {
            const at = service.forwardSource ?? service.source;
            return line.startsWith(
              `sleepingd: warning: ${at.file}:${at.line}: FORWARD=kernel in [${service.name}]: `,
            );
          });
          assert.ok(
            kernelLine || folderLines.includes(line),
            `a warning that is neither the configuration's nor about this host: ${line}${context}`,
          );
        }

        const out = stdout.split("\n");
        const listed = out.flatMap((line) => {
          const match = /^(\S.*) \(port (\d+)\)$/.exec(line);
          return match ? [`${match[1]}:${match[2]}`] : [];
        });
        const values = lastValues(text);
        const expected = config.services.map(({ name, port }) => {
          const said = Number(values.get(name)?.get("PORT")?.value.trim());
          assert.equal(port, said, `[${name}] port ${port}, the file says ${said}${context}`);
          return `${name}:${port}`;
        });
        assert.deepEqual(listed.toSorted(), expected.toSorted(), `services differ${context}`);
        if (config.services.length === 0) {
          assert.ok(out.includes("no service is active"), `no "no service is active"${context}`);
        }
        for (const name of config.inactive) {
          assert.ok(out.includes(`${name} (inactive)`), `[${name}] not listed inactive${context}`);
        }
        checked++;
      }),
      {
        numRuns: 20,
        // Host warnings after the configuration's (with ip_forward=0 or another table's drop).
        examples: [["FORWARD=KERNEL\n[web]\nSTART_CMD=echo 127.0.0.1 8080\nPORT=1"]],
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(checked, 20);
});

// The hang guard: parsing runs in a worker, so that a parser stuck in a loop
// fails the test after a bound instead of blocking the event loop forever.

const WORKER_SOURCE = `
import { parseConfigText } from ${
  JSON.stringify(new URL("../src/config/parse.ts", import.meta.url).href)
};
self.onmessage = ({ data }) => {
  const parsed = parseConfigText(data, "big.conf");
  self.postMessage({
    errors: parsed.errors.length,
    entries: parsed.global.length +
      parsed.sections.reduce((sum, section) => sum + section.entries.length, 0),
    lastErrorLine: Math.max(0, ...parsed.errors.map((error) => error.line)),
  });
};
`;

/** What the worker says of the text it parsed. */
interface BigParse {
  errors: number;
  entries: number;
  lastErrorLine: number;
}

/** Parses `text` in a new worker, failing after `seconds`; the worker is ended either way. */
async function parseInWorker(text: string, what: string, seconds: number): Promise<BigParse> {
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  try {
    const answer = new Promise<BigParse>((resolve, reject) => {
      worker.onmessage = ({ data }) => resolve(data);
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(`parseConfigText() threw on ${what}: ${event.message}`));
      };
    });
    worker.postMessage(text);
    return await bounded(answer, `parsing ${what}`, seconds);
  } finally {
    worker.terminate(); // also stops a parser stuck in a loop
    URL.revokeObjectURL(url);
  }
}

/** The shapes of 1 MiB texts, each aimed at one rule of the reader. */
const SHAPES = ["binary", "config", "lines", "quote", "bracket", "comment", "key"] as const;

/** 1 MiB of text of one shape, from a seeded generator: fast to make, random in content. */
function bigText(shape: typeof SHAPES[number], seed: number): string {
  let state = seed >>> 0 || 1;
  const next = () => { // xorshift32
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  const size = 1 << 20;
  const parts: string[] = [];
  let length = 0;
  const push = (text: string) => {
    parts.push(text);
    length += text.length;
  };
  push({ quote: 'START_CMD="\n', bracket: "[", comment: "PORT=1 " }[shape as string] ?? "");
  while (length < size) {
    switch (shape) {
      case "binary": // any UTF-16 code unit, lone surrogates too
        push(String.fromCharCode(next() & 0xFFFF));
        break;
      case "config":
        push(CONFIG_CHARS[next() % CONFIG_CHARS.length]);
        break;
      case "lines": // near-valid files one after the other
        for (const file of fc.sample(nearValidFile, { numRuns: 100, seed: next() })) push(file);
        break;
      case "quote": // an open quote that takes the whole file, over every line
        push(CONFIG_CHARS[next() % CONFIG_CHARS.length].replace('"', "x"));
        break;
      case "bracket": // one 1 MiB line that is almost a section header
        push(next() % 2 ? "a" : " ");
        break;
      case "comment": // spaces and #: the comment and whitespace rules on one line
        push(next() % 3 ? " " : "#");
        break;
      case "key": // one 1 MiB key, then no =
        push("A_");
        break;
    }
  }
  return parts.join("").slice(0, size);
}

Deno.test("parseConfigText() reads 1 MiB of random text in bounded time", async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...SHAPES), fc.integer(), async (shape, seed) => {
      const text = bigText(shape, seed);
      const parsed = await parseInWorker(text, `1 MiB of ${shape} text (seed ${seed})`, 20);
      assert.ok(
        parsed.lastErrorLine <= lineCount(text),
        `an error past the end: ${JSON.stringify(parsed)}`,
      );
      const expected = {
        quote: { errors: 1, entries: 0 },
        bracket: { errors: 1, entries: 0 },
        key: { errors: 1, entries: 0 },
        comment: { errors: 0, entries: 1 },
      }[shape as string];
      if (expected) {
        assert.deepEqual({ errors: parsed.errors, entries: parsed.entries }, expected, shape);
      }
    }),
    // A hang takes the whole bound at each try: report the first one, unshrunk.
    { numRuns: 14, endOnFailure: true, examples: SHAPES.map((shape) => [shape, 1]) },
  );
});
