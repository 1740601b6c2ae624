import assert from "node:assert/strict";
import { test } from "node:test";
import { FrameError, decodeFrame, encodeFrame, validId } from "../src/frames.js";

test("encode matches the layout of PROTOCOL.md §4", () => {
  const f = encodeFrame("p1", new Uint8Array([9, 8, 7]));
  assert.deepEqual([...f], [0x41, 0x4c, 0x59, 0x31, 2, 0x70, 0x31, 9, 8, 7]);
});

test("decode is the inverse of encode, from ArrayBuffer or Uint8Array", () => {
  const payload = new Uint8Array(1000).map((_, i) => i % 251);
  const f = encodeFrame("job:42_x-y.z", payload);
  for (const input of [f, f.buffer]) {
    const { id, payload: p } = decodeFrame(input);
    assert.equal(id, "job:42_x-y.z");
    assert.deepEqual([...p], [...payload]);
  }
});

test("an empty payload round-trips", () => {
  assert.equal(decodeFrame(encodeFrame("a", new Uint8Array())).payload.length, 0);
});

test("bad headers are refused", () => {
  assert.throws(() => decodeFrame(new Uint8Array([0x41, 0x4c, 0x59])), FrameError);
  assert.throws(() => decodeFrame(new Uint8Array([0x41, 0x4c, 0x59, 0x32, 1, 0x61])), /magic/);
  assert.throws(() => decodeFrame(new Uint8Array([0x41, 0x4c, 0x59, 0x31, 0, 0x61])), /id length/);
  assert.throws(() => decodeFrame(new Uint8Array([0x41, 0x4c, 0x59, 0x31, 5, 0x61])), /shorter/);
  assert.throws(() => decodeFrame(new Uint8Array([0x41, 0x4c, 0x59, 0x31, 1, 0x20])), /bad id/);
});

test("ids follow the schema: 1-64 of A-Z a-z 0-9 . _ : -", () => {
  assert.ok(validId("r1"));
  assert.ok(validId("x".repeat(64)));
  assert.ok(!validId(""));
  assert.ok(!validId("x".repeat(65)));
  assert.ok(!validId("a b"));
  assert.throws(() => encodeFrame("a/b", new Uint8Array(1)), FrameError);
});
