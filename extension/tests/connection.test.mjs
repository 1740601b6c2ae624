import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";
import { DaemonConnection } from "../src/connection.js";
import { pairWithDaemon } from "../src/pairing.js";
import { FakeSocket, FakeTimers, fakeFetch, flush } from "./fakes.mjs";

const HELLO = { protocol: 1, daemon: { name: "ally", version: "0.1.0" }, session: { kind: "extension" },
  capabilities: { "protect.text": { available: false, reason: "none" } }, limits: { job_timeout_s: 600 } };

let up;
let timers;
beforeEach(() => {
  FakeSocket.instances = [];
  FakeSocket.behaviour = "open";
  up = true;
  timers = new FakeTimers();
});

function make(token = "tok") {
  const states = [];
  const fetchImpl = fakeFetch(() => up);
  const conn = new DaemonConnection({ getToken: async () => token, getPort: async () => 28417, client: { name: "t" },
    WebSocketImpl: FakeSocket, fetchImpl, timers, random: () => 0.5, onChange: (s) => states.push(s.status) });
  return { conn, states, fetchImpl };
}

async function answerHello(ws) {
  await flush();
  const hello = ws.json().find((m) => m.method === "hello");
  assert.ok(hello, "hello is the first message");
  ws.receive({ id: hello.id, result: HELLO });
  await flush();
}

test("connects with the token as a subprotocol, sends hello first, then is ready", async () => {
  const { conn } = make();
  const p = conn.ensure();
  await flush();
  const ws = FakeSocket.instances[0];
  assert.equal(ws.url, "ws://127.0.0.1:28417/ws");
  assert.deepEqual(ws.protocols, ["ally", "ally.token.tok"]);
  assert.equal(ws.json()[0].method, "hello");
  assert.equal(ws.json()[0].params.protocol, 1);
  await answerHello(ws);
  await p;
  assert.equal(conn.state.status, "ready");
  assert.equal(conn.state.hello.daemon.version, "0.1.0");
  // concurrent ensure() calls share one socket
  await Promise.all([conn.ensure(), conn.ensure()]);
  assert.equal(FakeSocket.instances.length, 1);
});

test("no daemon (health fails): status down and reconnects with back-off", async () => {
  FakeSocket.behaviour = "refuse";
  up = false;
  const { conn } = make();
  await assert.rejects(conn.ensure(), (e) => e.errorName === "daemon_down");
  assert.equal(conn.state.status, "down");
  assert.deepEqual(timers.pendingDelays(), [500]);
  timers.advance(500);
  await flush(); await flush(); await flush();
  assert.equal(FakeSocket.instances.length, 2);
  assert.deepEqual(timers.pendingDelays(), [1000], "the next delay doubles");
  // the daemon comes back: the scheduled attempt connects
  FakeSocket.behaviour = "open";
  up = true;
  timers.advance(1000);
  await flush();
  await answerHello(FakeSocket.instances[2]);
  assert.equal(conn.state.status, "ready");
  assert.equal(conn.attempt, 0, "the back-off resets after a hello");
});

test("refused handshake while /health answers: unpaired, and no reconnect loop", async () => {
  FakeSocket.behaviour = "refuse";
  const { conn, fetchImpl } = make();
  await assert.rejects(conn.ensure(), (e) => e.errorName === "not_paired");
  assert.equal(conn.state.status, "unpaired");
  assert.deepEqual(fetchImpl.calls, ["http://127.0.0.1:28417/health"]);
  assert.deepEqual(timers.pendingDelays(), []);
});

test("no token: unpaired without opening a socket", async () => {
  const { conn } = make(null);
  await assert.rejects(conn.ensure(), (e) => e.errorName === "not_paired");
  assert.equal(FakeSocket.instances.length, 0);
});

test("keepalive: a status request every 20 s; a dropped socket reconnects", async () => {
  const { conn } = make();
  const p = conn.ensure();
  await flush();
  const ws = FakeSocket.instances[0];
  await answerHello(ws);
  await p;
  timers.advance(20_000);
  const status = ws.json().filter((m) => m.method === "status");
  assert.equal(status.length, 1);
  ws.receive({ id: status[0].id, result: { device: "cpu" } });
  await flush();
  assert.equal(conn.state.lastStatus.device, "cpu");
  ws.drop(1006);
  assert.equal(conn.state.status, "reconnecting");
  assert.deepEqual(timers.pendingDelays(), [500]);
  timers.advance(500);
  await flush();
  await answerHello(FakeSocket.instances[1]);
  assert.equal(conn.state.status, "ready");
});

test("a keepalive without answer closes the socket (and reconnects)", async () => {
  const { conn } = make();
  const p = conn.ensure();
  await flush();
  await answerHello(FakeSocket.instances[0]);
  await p;
  timers.advance(20_000 + 10_000);
  await flush();
  assert.ok(FakeSocket.instances[0].closed, "closed after the keepalive timed out");
  assert.equal(conn.state.status, "reconnecting");
});

test("version mismatch close (4103) does not reconnect", async () => {
  const { conn } = make();
  const p = conn.ensure();
  await flush();
  await answerHello(FakeSocket.instances[0]);
  await p;
  FakeSocket.instances[0].drop(4103, "version_mismatch");
  assert.equal(conn.state.status, "incompatible");
  assert.ok(!timers.pendingDelays().some((d) => d < 20_000), "no reconnect scheduled");
});

test("reset() drops the socket; the next request reconnects (token change)", async () => {
  const { conn } = make();
  const p = conn.ensure();
  await flush();
  await answerHello(FakeSocket.instances[0]);
  await p;
  conn.reset();
  assert.equal(conn.state.status, "idle");
  const q = conn.request("status");
  await flush();
  const ws2 = FakeSocket.instances[1];
  await answerHello(ws2);
  const st = ws2.json().find((m) => m.method === "status");
  ws2.receive({ id: st.id, result: { ok: 1 } });
  assert.deepEqual((await q).result, { ok: 1 });
});

test("pairing: ally.pair subprotocol, hello, pair.begin, code shown, token from pair.completed", async () => {
  const codes = [];
  const p = pairWithDaemon({ port: 28417, name: "Ally test", client: { name: "t" }, WebSocketImpl: FakeSocket, timers,
    onCode: (c) => codes.push(c) });
  await flush();
  const ws = FakeSocket.instances[0];
  assert.deepEqual(ws.protocols, ["ally.pair"]);
  const hello = ws.json()[0];
  assert.equal(hello.method, "hello");
  ws.receive({ id: hello.id, result: HELLO });
  await flush();
  const begin = ws.json()[1];
  assert.deepEqual([begin.method, begin.params], ["pair.begin", { name: "Ally test" }]);
  ws.receive({ id: begin.id, result: { code: "482193", expires_in_s: 120 } });
  await flush();
  assert.deepEqual(codes, [{ code: "482193", expires_in_s: 120 }]);
  ws.receive({ method: "pair.completed", params: { origin: "chrome-extension://x", token: "T0K" } });
  assert.deepEqual(await p, { token: "T0K", origin: "chrome-extension://x" });
});

test("pairing: an expired code rejects", async () => {
  const p = pairWithDaemon({ port: 1, name: "n", client: { name: "t" }, WebSocketImpl: FakeSocket, timers });
  await flush();
  const ws = FakeSocket.instances[0];
  ws.receive({ id: ws.json()[0].id, result: HELLO });
  await flush();
  ws.receive({ id: ws.json()[1].id, result: { code: "1", expires_in_s: 120 } });
  ws.receive({ method: "pair.failed", params: { error: { code: 205, name: "pairing_failed", message: "expired" } } });
  await assert.rejects(p, (e) => e.errorName === "pairing_failed");
});
