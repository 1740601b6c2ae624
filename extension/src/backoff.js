// Reconnect delays: exponential with a cap, times random jitter in [0.5, 1.5) (PROTOCOL.md §7).
export const BACKOFF = Object.freeze({ baseMs: 500, factor: 2, maxMs: 30_000 });

export function backoffDelay(attempt, { baseMs = BACKOFF.baseMs, factor = BACKOFF.factor, maxMs = BACKOFF.maxMs,
  random = Math.random } = {}) {
  const raw = Math.min(maxMs, baseMs * factor ** Math.max(0, attempt));
  return Math.round(raw * (0.5 + random()));
}

/** The daemon's `busy` hint plus jitter (×0.5–1.5). */
export function retryAfter(hintMs, random = Math.random) {
  return Math.round(Math.max(50, hintMs) * (0.5 + random()));
}
