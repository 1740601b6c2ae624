import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeFrame, encodeFrame } from "../src/frames.js";
import { ProtocolError } from "../src/protocol.js";
import { RpcSocket } from "../src/rpc.js";
import { FakeSocket, FakeTimers, flush } from "./fakes.mjs";

function setup() {
  const ws = new FakeSocket("ws://x", []);
  const timers = new FakeTimers();
  const notes = [];
  const closes = [];
  const rpc = new RpcSocket(ws, { timers, onNotification: (m) => notes.push(m), onClose: (c) => closes.push(c) });
  return { ws, timers, rpc, notes, closes };
}

test("answers are matched by id, whatever their order", async () => {
  const { ws, rpc } = setup();
  const a = rpc.request("status");
  const b = rpc.request("settings", { level: "high" });
  const [ra, rb] = ws.json();
  assert.equal(ra.method, "status");
  assert.deepEqual(rb.params, { level: "high" });
  assert.notEqual(ra.id, rb.id);
  ws.receive({ id: rb.id, result: { level: "high", device: "cpu" } });
  ws.receive({ id: ra.id, result: { device: "cpu" } });
  assert.deepEqual((await b).result, { level: "high", device: "cpu" });
  assert.deepEqual((await a).result, { device: "cpu" });
  assert.equal(rpc.pending.size, 0);
});

test("an error answer rejects with the daemon's code and name", async () => {
  const { ws, rpc } = setup();
  const p = rpc.request("protect.text", { text: "x" });
  ws.receive({ id: ws.json()[0].id, error: { code: 300, name: "busy", message: "full", data: { retry_after_ms: 850 } } });
  await assert.rejects(p, (e) => e instanceof ProtocolError && e.code === 300 && e.errorName === "busy" && e.retry
    && e.data.retry_after_ms === 850);
});

test("protect.image sends the request, then its frame; resolves with the result and the frame with its id", async () => {
  const { ws, rpc } = setup();
  const progress = [];
  const p = rpc.request("protect.image", { image: { bytes: 3 } }, { binary: new Uint8Array([1, 2, 3]), onProgress: (x) => progress.push(x) });
  const [req] = ws.json();
  assert.equal(typeof ws.sent[0], "string");
  const frame = decodeFrame(ws.binaries()[0]);
  assert.equal(frame.id, req.id);
  assert.deepEqual([...frame.payload], [1, 2, 3]);
  ws.receive({ method: "progress", params: { job: req.id, stage: "face 1/1", fraction: 0.5 } });
  ws.receive({ id: req.id, result: { image: { bytes: 2 }, faces: 1 } });
  ws.receive({ method: "progress", params: { job: "other", stage: "x", fraction: 0.1 } }); // another job's
  let settled = false;
  p.then(() => { settled = true; });
  await flush();
  assert.equal(settled, false, "waits for the frame after the result");
  ws.receiveBinary(encodeFrame("other-id", new Uint8Array([0]))); // not ours
  ws.receiveBinary(encodeFrame(req.id, new Uint8Array([7, 7])));
  const r = await p;
  assert.deepEqual([...r.binary], [7, 7]);
  assert.equal(r.result.faces, 1);
  assert.deepEqual(progress, [{ job: req.id, stage: "face 1/1", fraction: 0.5 }]);
});

test("a frame that arrives before its result is kept", async () => {
  const { ws, rpc } = setup();
  const p = rpc.request("protect.image", { image: { bytes: 1 } }, { binary: new Uint8Array([1]) });
  const id = ws.json()[0].id;
  ws.receiveBinary(encodeFrame(id, new Uint8Array([5])));
  ws.receive({ id, result: { image: { bytes: 1 } } });
  assert.deepEqual([...(await p).binary], [5]);
});

test("a request without an answer times out, and a timed-out job is cancelled", async () => {
  const { ws, rpc, timers } = setup();
  const p = rpc.request("protect.text", { text: "x" }, { timeoutMs: 1000 });
  const id = ws.json()[0].id;
  timers.advance(999);
  assert.equal(rpc.pending.size, 1);
  timers.advance(1);
  await assert.rejects(p, (e) => e.errorName === "timeout");
  const cancel = ws.json().find((m) => m.method === "cancel");
  assert.deepEqual(cancel.params, { job: id });
  ws.receive({ id, result: { text: "late" } }); // a late answer is ignored
  assert.equal(rpc.pending.size, 0);
});

test("a closed socket fails every pending request with connection_lost", async () => {
  const { ws, rpc, closes } = setup();
  const a = rpc.request("status");
  const b = rpc.request("protect.image", { image: { bytes: 1 } }, { binary: new Uint8Array([1]) });
  ws.drop(1001, "going away");
  await assert.rejects(a, (e) => e.errorName === "connection_lost");
  await assert.rejects(b, (e) => e.errorName === "connection_lost");
  assert.deepEqual(closes, [{ code: 1001, reason: "going away" }]);
  await assert.rejects(rpc.request("status"), (e) => e.errorName === "connection_lost");
});

test("notifications other than progress go to the listener; junk is ignored", () => {
  const { ws, notes, rpc } = setup();
  ws.receive("{not json");
  ws.receive({ id: null, error: { code: 105, name: "unexpected_binary", message: "?" } });
  ws.receiveBinary(new Uint8Array([1, 2, 3]));
  ws.receive({ method: "shutdown", params: { reason: "bye", grace_s: 10 } });
  assert.deepEqual(notes.map((n) => n.method), ["shutdown"]);
  assert.equal(rpc.unmatchedErrors[0].errorName, "unexpected_binary");
});
