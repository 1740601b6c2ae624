import assert from "node:assert/strict";
import { test } from "node:test";
import { applyOps, changedWords, diffWords, tokenize } from "../src/diff.js";

test("tokens keep the whitespace", () => {
  assert.deepEqual(tokenize("a  b\nc"), ["a", "  ", "b", "\n", "c"]);
  assert.equal(tokenize("").length, 0);
});

test("a replaced word shows as a deletion and an insertion", () => {
  const ops = diffWords("I live in Berlin now", "I live in a big city now");
  assert.deepEqual(ops, [
    { op: "eq", text: "I live in " },
    { op: "del", text: "Berlin" },
    { op: "ins", text: "a big city" },
    { op: "eq", text: " now" },
  ]);
  assert.equal(changedWords(ops), 1, "a replacement is one change");
  assert.equal(changedWords(diffWords("a b c d", "x b c y")), 2);
  assert.equal(changedWords(diffWords("a b", "a b c")), 1);
});

test("identical texts are one equal run", () => {
  assert.deepEqual(diffWords("same text", "same text"), [{ op: "eq", text: "same text" }]);
  assert.equal(changedWords(diffWords("same text", "same text")), 0);
});

test("ops always rebuild both sides (random edits)", () => {
  const words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta"];
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let k = 0; k < 100; k++) {
    const a = Array.from({ length: 1 + Math.floor(rnd() * 12) }, () => words[Math.floor(rnd() * words.length)]).join(" ");
    const b = a.split(" ").map((w) => (rnd() < 0.3 ? words[Math.floor(rnd() * words.length)] : w))
      .filter(() => rnd() > 0.1).join(rnd() < 0.5 ? " " : "  ");
    const r = applyOps(diffWords(a, b));
    assert.equal(r.before, a);
    assert.equal(r.after, b);
  }
});

test("huge texts fall back to a whole replacement", () => {
  const a = Array.from({ length: 3000 }, (_, i) => `a${i}`).join(" ");
  const b = Array.from({ length: 3000 }, (_, i) => `b${i}`).join(" ");
  const ops = diffWords(a, b);
  assert.deepEqual(ops.map((o) => o.op), ["del", "ins"]);
  assert.deepEqual(applyOps(ops), { before: a, after: b });
});
