import assert from "node:assert/strict";
import { ConfigError } from "../src/config/config_error.ts";
import { parseConfigText } from "../src/config/parse.ts";

/** The value of the only entry of a one-line global section. */
function valueOf(line: string): string {
  const { global } = parseConfigText(line, "t.conf");
  assert.equal(global.length, 1, `expected one entry in ${JSON.stringify(line)}`);
  return global[0].value;
}

/** Asserts that parsing `text` reports one ConfigError, with exactly `message`. */
function assertConfigError(text: string, message: string, line: number, key?: string) {
  const { errors } = parseConfigText(text, "x.conf");
  assert.equal(errors.length, 1, errors.map(String).join("\n"));
  const [error] = errors;
  assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
  assert.equal(error.message, message);
  assert.equal(error.file, "x.conf");
  assert.equal(error.line, line);
  assert.equal(error.key, key);
}

Deno.test("parseConfigText() puts keys before the first section in the global section", () => {
  const parsed = parseConfigText(
    "EXEC_CMD_TIMEOUT=5\n\n[web]\nPORT=80\n[db]\nPORT=5432\n",
    "a.conf",
  );
  assert.deepEqual(parsed, {
    file: "a.conf",
    global: [{ key: "EXEC_CMD_TIMEOUT", value: "5", location: { file: "a.conf", line: 1 } }],
    sections: [
      {
        name: "web",
        location: { file: "a.conf", line: 3 },
        entries: [{ key: "PORT", value: "80", location: { file: "a.conf", line: 4 } }],
      },
      {
        name: "db",
        location: { file: "a.conf", line: 5 },
        entries: [{ key: "PORT", value: "5432", location: { file: "a.conf", line: 6 } }],
      },
    ],
    errors: [],
  });
});

Deno.test("parseConfigText() skips blank lines and comment lines", () => {
  const parsed = parseConfigText("\n   \n# PORT=1\n   # PORT=2\n\tPORT=3\n", "a.conf");
  assert.deepEqual(parsed.global, [
    { key: "PORT", value: "3", location: { file: "a.conf", line: 5 } },
  ]);
});

Deno.test("parseConfigText() ignores whitespace around the key, the = and the value", () => {
  assert.equal(valueOf("  PORT  =  8080  "), "8080");
  assert.equal(valueOf("PORT=\t8080\t"), "8080");
});

Deno.test("parseConfigText() accepts keys of letters, digits and underscores", () => {
  assert.deepEqual(
    parseConfigText("_a=1\nB_2=2\n", "a.conf").global.map(({ key }) => key),
    ["_a", "B_2"],
  );
});

Deno.test("parseConfigText() keeps the inner whitespace of bare text", () => {
  assert.equal(valueOf("USER=a  b\tc"), "a  b\tc");
});

Deno.test("parseConfigText() joins bare, double quoted and single quoted parts", () => {
  assert.equal(valueOf(`CMD=a"b c"'d e'f`), "ab cd ef");
  assert.equal(valueOf(`CMD="a" 'b'`), "a b");
});

Deno.test('parseConfigText() reads \\" and \\\\ as escapes in double quotes only', () => {
  assert.equal(
    valueOf(String.raw`CMD="say \"hi\" \\ \n \$HOME"`),
    String.raw`say "hi" \ \n \$HOME`,
  );
  assert.equal(valueOf("CMD='a\\'"), "a\\");
  assert.equal(valueOf(String.raw`CMD=a\b`), String.raw`a\b`);
});

Deno.test("parseConfigText() keeps quotes of the other kind literally", () => {
  assert.equal(valueOf(`CMD="echo 'x y'"`), "echo 'x y'");
  assert.equal(valueOf(`CMD='echo "x y"'`), `echo "x y"`);
});

Deno.test("parseConfigText() keeps $VAR and $(...) literally", () => {
  assert.equal(valueOf(`CMD=echo $HOME "$(date)" '$USER'`), `echo $HOME $(date) $USER`);
});

Deno.test("parseConfigText() starts a comment at a # after whitespace or at the value start", () => {
  assert.equal(valueOf("PORT=80 # the port"), "80");
  assert.equal(valueOf("PORT=80\t#the port"), "80");
  assert.equal(valueOf("CMD=#nothing"), "");
  assert.equal(valueOf("CMD=   # nothing"), "");
  assert.equal(valueOf(`CMD="a" # b`), "a");
});

Deno.test("parseConfigText() keeps a # inside a word or inside quotes", () => {
  assert.equal(valueOf("CMD=a#b"), "a#b");
  assert.equal(valueOf(`CMD="a # b"`), "a # b");
  assert.equal(valueOf(`CMD='#'`), "#");
  assert.equal(valueOf(`CMD=""#x`), "#x");
});

Deno.test("parseConfigText() strips the trailing whitespace of bare text, not of quotes", () => {
  assert.equal(valueOf("CMD=a b   "), "a b");
  assert.equal(valueOf(`CMD="a b   "   `), "a b   ");
  assert.equal(valueOf(`CMD=  "  a"`), "  a");
});

Deno.test("parseConfigText() reads a blank value as empty", () => {
  assert.equal(valueOf("CMD="), "");
  assert.equal(valueOf(`CMD=""`), "");
  assert.equal(valueOf("CMD=   "), "");
});

Deno.test("parseConfigText() goes on over the next lines while a quote is open", () => {
  const text = 'START_CMD="one\n  two # not a comment\nthree" # comment\nPORT=80\n';
  assert.deepEqual(parseConfigText(text, "a.conf").global, [
    {
      key: "START_CMD",
      value: "one\n  two # not a comment\nthree",
      location: { file: "a.conf", line: 1 },
    },
    { key: "PORT", value: "80", location: { file: "a.conf", line: 4 } },
  ]);
});

Deno.test("parseConfigText() keeps blank and # lines inside an open quote", () => {
  assert.equal(valueOf("CMD='a\n\n# b\nc'"), "a\n\n# b\nc");
});

Deno.test("parseConfigText() accepts \\r\\n line endings", () => {
  const parsed = parseConfigText("# c\r\n[web]\r\nPORT=80\r\nCMD='a\r\nb'\r\n", "a.conf");
  assert.deepEqual(parsed.sections[0].entries, [
    { key: "PORT", value: "80", location: { file: "a.conf", line: 3 } },
    { key: "CMD", value: "a\nb", location: { file: "a.conf", line: 4 } },
  ]);
});

Deno.test("parseConfigText() ignores a byte order mark", () => {
  assert.equal(parseConfigText("\uFEFFPORT=80", "a.conf").global[0].key, "PORT");
});

Deno.test("parseConfigText() names a section by the trimmed text between brackets", () => {
  const parsed = parseConfigText(
    "[  Simple web server for testing purposes ]\n  [db] # the database\n",
    "a.conf",
  );
  assert.deepEqual(parsed.sections.map(({ name }) => name), [
    "Simple web server for testing purposes",
    "db",
  ]);
});

Deno.test("parseConfigText() keeps a key set twice in order", () => {
  assert.deepEqual(
    parseConfigText("PORT=1\nPORT=2\n", "a.conf").global.map(({ value }) => value),
    ["1", "2"],
  );
});

Deno.test("parseConfigText() reports file:line for an unterminated quote", () => {
  assertConfigError(
    '[web]\nPORT=80\nSTART_CMD="echo hi\nSTOP_CMD=x\n',
    'x.conf:3: Cannot read "START_CMD": the quote opened here is never closed',
    3,
    "START_CMD",
  );
  assertConfigError(
    "CMD=a 'b",
    'x.conf:1: Cannot read "CMD": the quote opened here is never closed',
    1,
    "CMD",
  );
});

Deno.test("parseConfigText() reports the line where the unterminated quote opened", () => {
  assertConfigError(
    "CMD='a\nb' \"c\nd\n",
    'x.conf:2: Cannot read "CMD": the quote opened here is never closed',
    2,
    "CMD",
  );
});

Deno.test("parseConfigText() reports file:line for a line that is not KEY=value", () => {
  assertConfigError(
    "PORT=80\n\nfoo bar\n",
    'x.conf:3: Cannot read line "foo bar": expected KEY=value or [section]',
    3,
  );
  assertConfigError(
    "1PORT=80",
    'x.conf:1: Cannot read line "1PORT=80": expected KEY=value or [section]',
    1,
  );
  assertConfigError(
    "MY-KEY=80",
    'x.conf:1: Cannot read line "MY-KEY=80": expected KEY=value or [section]',
    1,
  );
  assertConfigError(
    "[web",
    'x.conf:1: Cannot read line "[web": expected KEY=value or [section]',
    1,
  );
});

Deno.test("parseConfigText() reports file:line for an empty section name", () => {
  assertConfigError(
    "\n[  ]\n",
    'x.conf:2: Cannot read section header "[  ]": the section name is empty',
    2,
  );
});

Deno.test("parseConfigText() reads on past bad lines, reporting each, and keeps the rest", () => {
  const parsed = parseConfigText(
    "VARRUN_PATH=/run/x\nfoo bar\n[  ]\nLOST=1\n[web]\nPORT=80\n1BAD\nSTART_CMD='open\n",
    "x.conf",
  );
  assert.deepEqual(parsed.errors.map((error) => error.message), [
    'x.conf:2: Cannot read line "foo bar": expected KEY=value or [section]',
    'x.conf:3: Cannot read section header "[  ]": the section name is empty',
    'x.conf:7: Cannot read line "1BAD": expected KEY=value or [section]',
    'x.conf:8: Cannot read "START_CMD": the quote opened here is never closed',
  ]);
  assert.deepEqual(parsed.global.map(({ key, value }) => `${key}=${value}`), [
    "VARRUN_PATH=/run/x",
  ]);
  assert.deepEqual(
    parsed.sections.map(({ name, entries }) => [name, entries.map(({ key }) => key)]),
    [["web", ["PORT"]]],
    "the keys under a bad header belong to no section",
  );
});

Deno.test("parseConfigText() reads a stray carriage return at a line's end as whitespace", () => {
  const parsed = parseConfigText("[web]\r\r\nPORT=80\r\r\nSTART_CMD=go\r", "a.conf");
  assert.deepEqual(parsed.errors, []);
  assert.deepEqual(
    parsed.sections[0].entries.map(({ key, value }) => `${key}=${value}`),
    ["PORT=80", "START_CMD=go"],
  );
});

Deno.test("parseConfigText() keeps a line separator inside a value as any other character", () => {
  assert.equal(valueOf('START_CMD="echo a\u2028b"'), "echo a\u2028b");
});
