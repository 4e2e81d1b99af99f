/**
 * Runs the real `sleepingd run` as a child process for end-to-end tests and
 * reads its log lines as they come.
 *
 * @module
 */

const REPO = new URL("../", import.meta.url).pathname;
const MAIN = new URL("../src/main.ts", import.meta.url).pathname;

/** A running daemon: its log so far, and ways to wait for a line and to stop it. */
export interface Daemon {
  /** Every stderr line so far. */
  lines: string[];
  /** Waits (bounded) for a log line matching `pattern`, at or after line `from`. */
  waitForLine(pattern: RegExp, from?: number, seconds?: number): Promise<string>;
  /** Sends SIGTERM and returns the exit code. */
  stop(): Promise<number>;
}

/**
 * Starts `sleepingd -f CONFIG run` in the repository root and waits until
 * every service is listening.
 */
export async function startDaemon(
  configFile: string,
  options: { env?: Record<string, string>; services?: number; args?: string[] } = {},
): Promise<Daemon> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...(options.args ?? []), "-f", configFile, "run"],
    cwd: REPO,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let notify = () => {};
  const reading = (async () => {
    let pending = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      const parts = pending.split("\n");
      pending = parts.pop()!;
      lines.push(...parts);
      notify();
    }
    if (pending) lines.push(pending);
    notify();
  })();
  let exited = false;
  const status = child.status.then((status) => {
    exited = true;
    notify();
    return status;
  });

  const waitForLine = async (pattern: RegExp, from = 0, seconds = 30): Promise<string> => {
    const deadline = Date.now() + seconds * 1000;
    while (true) {
      const found = lines.slice(from).find((line) => pattern.test(line));
      if (found) return found;
      if (exited) {
        await reading;
        throw new Error(`sleepingd exited before logging ${pattern}:\n${lines.join("\n")}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`Timed out after ${seconds}s waiting for ${pattern}:\n${lines.join("\n")}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        notify = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };

  const daemon: Daemon = {
    lines,
    waitForLine,
    async stop() {
      if (!exited) child.kill("SIGTERM");
      const { code } = await status;
      await reading;
      return code;
    },
  };
  try {
    await waitForLine(/is running \d+ service/);
  } catch (error) {
    await daemon.stop();
    throw error;
  }
  return daemon;
}
