// A wait that ends early when its signal aborts, so closing never waits out a backoff.
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Waits for `promise`, or `ms` at most; the timer is cleared either way, so it never holds the process open. */
export async function atMost(promise: Promise<unknown>, ms: number): Promise<void> {
  const stop = new AbortController();
  try {
    await Promise.race([promise, sleep(ms, stop.signal)]);
  } finally {
    stop.abort();
  }
}
