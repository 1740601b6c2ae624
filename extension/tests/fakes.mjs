// Test doubles: a fake WebSocket the test drives by hand, fake timers, a fake fetch.
export class FakeSocket {
  static instances = [];
  static behaviour = "open"; // open | refuse
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.sent = [];
    this.closed = null;
    FakeSocket.instances.push(this);
    queueMicrotask(() => {
      if (FakeSocket.behaviour === "open") this.onopen?.({});
      else this.onclose?.({ code: 1006, reason: "" });
    });
  }
  send(data) {
    if (this.closed) throw new Error("closed");
    this.sent.push(data);
  }
  close(code = 1000, reason = "") {
    if (this.closed) return;
    this.closed = { code, reason };
    queueMicrotask(() => this.onclose?.({ code, reason }));
  }
  // test side
  json() {
    return this.sent.filter((d) => typeof d === "string").map((d) => JSON.parse(d));
  }
  binaries() {
    return this.sent.filter((d) => typeof d !== "string");
  }
  receive(obj) {
    this.onmessage?.({ data: typeof obj === "string" ? obj : JSON.stringify(obj) });
  }
  receiveBinary(bytes) {
    this.onmessage?.({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) });
  }
  drop(code = 1006, reason = "") {
    this.closed = { code, reason };
    this.onclose?.({ code, reason });
  }
}

export class FakeTimers {
  constructor() {
    this.now = 0;
    this.nextId = 1;
    this.timers = new Map();
  }
  setTimeout(fn, ms) {
    const id = this.nextId++;
    this.timers.set(id, { fn, at: this.now + ms, every: null });
    return id;
  }
  setInterval(fn, ms) {
    const id = this.nextId++;
    this.timers.set(id, { fn, at: this.now + ms, every: ms });
    return id;
  }
  clearTimeout(id) {
    this.timers.delete(id);
  }
  clearInterval(id) {
    this.timers.delete(id);
  }
  pendingDelays() {
    return [...this.timers.values()].map((t) => t.at - this.now);
  }
  advance(ms) {
    const end = this.now + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      const [id, t] = due;
      this.now = t.at;
      if (t.every) t.at += t.every;
      else this.timers.delete(id);
      t.fn();
    }
    this.now = end;
  }
}

export const flush = () => new Promise((r) => setImmediate(r));

export function fakeFetch(up) {
  const calls = [];
  const fn = async (url) => {
    calls.push(url);
    if (!up()) throw new TypeError("Failed to fetch");
    return { ok: true, json: async () => ({ ok: true, service: "ally", version: "0.1.0", protocol: 1, state: "ready" }) };
  };
  fn.calls = calls;
  return fn;
}
