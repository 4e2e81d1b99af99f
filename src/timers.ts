/**
 * Waiting: timers that hold for any length (`setTimeout` fires at once for
 * delays above 2^31−1 ms, about 24.8 days, so longer waits are chained), and
 * waits that end early on an abort.
 *
 * @module
 */

/** The longest delay one `setTimeout` honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `fn` once `ms` milliseconds have passed, chaining timers past
 * 2^31−1 ms.
 *
 * @returns a function that cancels the call (harmless after it happened)
 */
export function startTimer(ms: number, fn: () => void): () => void {
  const deadline = Date.now() + ms;
  let id: ReturnType<typeof setTimeout>;
  const arm = () => {
    const left = deadline - Date.now();
    id = setTimeout(left > MAX_TIMER_MS ? arm : fn, Math.min(Math.max(left, 0), MAX_TIMER_MS));
  };
  arm();
  return () => clearTimeout(id);
}

/**
 * Waits `ms` milliseconds, however long that is.
 *
 * @throws the abort reason of `signal`, as soon as it is aborted
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      cancel();
      reject(signal!.reason);
    };
    const cancel = startTimer(ms, () => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    });
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Waits for `promise` at most `ms` milliseconds.
 *
 * @returns whether it settled (resolved or rejected) in time
 */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let cancel = () => {};
  const timedOut = new Promise<false>((resolve) => cancel = startTimer(ms, () => resolve(false)));
  try {
    return await Promise.race([promise.then(() => true, () => true), timedOut]);
  } finally {
    cancel();
  }
}

/**
 * Waits for `promise`, or rejects with the abort reason of `signal` as soon
 * as it is aborted; `promise` itself goes on.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
