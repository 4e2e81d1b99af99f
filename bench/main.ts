/**
 * `deno task bench`: measures sleepingd against a direct connection, socat,
 * haproxy, systemd-socket-proxyd and the seed's bash+socat design, all in the
 * same run in front of the same servers, with the bench's own client and with
 * iperf3, redis-benchmark and wrk; then memory and wakes. See `bench/README.md`.
 *
 * @module
 */

import { parseBenchArgs, USAGE } from "./args.ts";
import { describeMachine, machineLines } from "./machine.ts";
import { runPart, skip } from "./parts.ts";
import { cleanUp, cleanUpOnSignals, Interrupted, onCleanUp } from "./processes.ts";
import { type Results, writeResults } from "./results.ts";
import { startEchoBackend } from "./servers.ts";
import { setSleepingdSettings } from "./variants.ts";

/** The bench: returns the exit code (0 done, 1 failed, 2 usage error). */
async function main(args: string[]): Promise<number> {
  let options;
  try {
    options = parseBenchArgs(args);
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  cleanUpOnSignals();
  setSleepingdSettings(options.sleepingdSettings);
  const began = performance.now();
  const results: Results = {
    startedAt: new Date().toISOString(),
    args,
    quick: options.quick,
    tables: {},
    partSeconds: {},
    skipped: [],
  };
  const tempDir = await Deno.makeTempDir({ prefix: "sleepingd-bench-" });
  onCleanUp(() => Deno.remove(tempDir, { recursive: true }));
  try {
    results.machine = await describeMachine();
    for (const line of machineLines(results.machine)) console.log(line);
    const cores = results.machine.cores;
    console.log(
      `\n±: half the range of the runs, in percent of the median; ` +
        `N× name: this row's number / name's number;\n` +
        `cpu%: proxy/client/server, percent of one core (${cores} cores = ${cores * 100}); ` +
        "proxy µs/conn: the proxy's CPU time per new connection",
    );
    const echo = await startEchoBackend();
    for (const part of options.parts) {
      const partBegan = performance.now();
      const context = { options, tempDir, echo, results };
      try {
        await runPart(part, context);
      } catch (error) {
        if (error instanceof Interrupted || echo.gone()) throw error;
        skip(context, `${part}: failed: ${(error as Error).message}`);
      }
      const partSeconds = Math.round((performance.now() - partBegan) / 1000);
      results.partSeconds[part] = partSeconds;
      console.log(`\n(${part}: ${partSeconds} s)`);
    }
    const seconds = (performance.now() - began) / 1000;
    results.seconds = Math.round(seconds);
    console.log(`\ndone in ${seconds.toFixed(0)} s`);
    return 0;
  } catch (error) {
    if (!(error instanceof Interrupted)) results.error = (error as Error).message ?? `${error}`;
    throw error;
  } finally {
    await writeResults(options.json, results);
    console.log(`results: ${options.json}`);
  }
}

if (import.meta.main) {
  let code = 1;
  try {
    code = await main(Deno.args);
  } catch (error) {
    if (error instanceof Interrupted) code = error.message === "SIGINT" ? 130 : 143;
    else console.error(`bench: ${(error as Error).message ?? error}`);
  } finally {
    await cleanUp();
  }
  Deno.exit(code);
}
