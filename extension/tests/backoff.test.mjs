import assert from "node:assert/strict";
import { test } from "node:test";
import { BACKOFF, backoffDelay, retryAfter } from "../src/backoff.js";

test("the schedule doubles from 500 ms and is capped at 30 s (no jitter at random=0.5)", () => {
  const delays = Array.from({ length: 10 }, (_, i) => backoffDelay(i, { random: () => 0.5 }));
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
});

test("jitter spreads each delay over [0.5, 1.5) of the nominal one", () => {
  assert.equal(backoffDelay(3, { random: () => 0 }), 2000);
  assert.equal(backoffDelay(3, { random: () => 0.999999 }), 6000);
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(20);
    assert.ok(d >= BACKOFF.maxMs * 0.5 && d < BACKOFF.maxMs * 1.5, `delay ${d}`);
  }
});

test("busy hints get jitter too and a 50 ms floor", () => {
  assert.equal(retryAfter(1000, () => 0.5), 1000);
  assert.equal(retryAfter(10, () => 0.5), 50);
  assert.equal(retryAfter(1000, () => 0), 500);
});
