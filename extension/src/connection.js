// The service worker's one connection to the daemon: connect on demand, hello first, keepalive, reconnect
// with back-off, and tell "daemon not running" from "refused / not paired" with the /health endpoint.
import { backoffDelay } from "./backoff.js";
import { PROTOCOL_VERSION, healthUrl, localError, subprotocols, wsUrl } from "./protocol.js";
import { RpcSocket, openSocket } from "./rpc.js";

export const KEEPALIVE_MS = 20_000;
const HELLO_TIMEOUT_MS = 10_000;
const HEALTH_TIMEOUT_MS = 2_000;
// Close codes after which reconnecting cannot help (PROTOCOL.md §9: 4000 + error number).
const FATAL_CLOSES = new Set([4103]);

/** Is the daemon up? ``{up, state, version}`` from GET /health. */
export async function probeHealth(port, { fetchImpl = globalThis.fetch, timers = globalThis } = {}) {
  const ctrl = typeof AbortController === "function" ? new AbortController() : null;
  const timer = timers.setTimeout(() => ctrl?.abort(), HEALTH_TIMEOUT_MS);
  try {
    const r = await fetchImpl(healthUrl(port), { cache: "no-store", signal: ctrl?.signal });
    if (!r.ok) return { up: false };
    const body = await r.json();
    return { up: body?.service === "ally", state: body?.state, version: body?.version };
  } catch {
    return { up: false };
  } finally {
    timers.clearTimeout(timer);
  }
}

export class DaemonConnection {
  constructor({ getToken, getPort, client, WebSocketImpl = globalThis.WebSocket, fetchImpl = globalThis.fetch,
    timers = globalThis, random = Math.random, onChange = () => {}, onNotification = () => {},
    keepaliveMs = KEEPALIVE_MS, autoReconnect = true } = {}) {
    Object.assign(this, { getToken, getPort, client, WebSocketImpl, fetchImpl, timers, random, onChange,
      onNotificationCb: onNotification, keepaliveMs, autoReconnect });
    this.rpc = null;
    this.connecting = null;
    this.attempt = 0;
    this.reconnectTimer = null;
    this.keepaliveTimer = null;
    this.generation = 0;
    this.state = { status: "idle", reason: null, hello: null, lastStatus: null, since: Date.now() };
  }

  _set(change) {
    this.state = { ...this.state, ...change, since: Date.now() };
    try {
      this.onChange(this.state);
    } catch {
      /* listeners must not break the connection */
    }
  }

  get ready() {
    return this.rpc !== null && !this.rpc.closed && this.state.status === "ready";
  }

  /** The open RpcSocket, connecting first if needed; rejects with daemon_down / not_paired. */
  ensure() {
    if (this.ready) return Promise.resolve(this.rpc);
    if (!this.connecting) {
      const gen = this.generation;
      this.connecting = this._connect(gen).finally(() => {
        if (gen === this.generation) this.connecting = null;
      });
    }
    return this.connecting;
  }

  async request(method, params = {}, opts = {}) {
    const rpc = await this.ensure();
    return rpc.request(method, params, opts);
  }

  /** Forget the socket (the token or port changed): the next request connects again. */
  reset() {
    this.generation += 1;
    this.connecting = null;
    this._stopTimers();
    this.attempt = 0;
    const rpc = this.rpc;
    this.rpc = null;
    rpc?.close(1000, "reset");
    this._set({ status: "idle", reason: null, hello: null });
  }

  _stopTimers() {
    if (this.keepaliveTimer) this.timers.clearInterval(this.keepaliveTimer);
    if (this.reconnectTimer) this.timers.clearTimeout(this.reconnectTimer);
    this.keepaliveTimer = null;
    this.reconnectTimer = null;
  }

  async _connect(gen) {
    const port = await this.getPort();
    const token = await this.getToken();
    this._set({ status: "connecting" });
    if (!token) {
      const health = await probeHealth(port, this);
      const err = health.up ? localError("not_paired") : localError("daemon_down");
      this._set({ status: health.up ? "unpaired" : "down", reason: err.message, hello: null });
      if (!health.up) this._scheduleReconnect();
      throw err;
    }
    let ws;
    try {
      ws = await openSocket(this.WebSocketImpl, wsUrl(port), subprotocols(token), { timers: this.timers });
    } catch (e) {
      // The upgrade failed: a browser only sees 1006. /health says whether the daemon is there at all.
      const health = await probeHealth(port, this);
      if (gen !== this.generation) throw e;
      if (health.up) {
        const err = localError("not_paired", "The Ally daemon refused this browser: it is not paired (or the pairing "
          + "was revoked). Open the extension's options to pair again.");
        this._set({ status: "unpaired", reason: err.message, hello: null });
        throw err;
      }
      const err = localError("daemon_down");
      this._set({ status: "down", reason: err.message, hello: null });
      this._scheduleReconnect();
      throw err;
    }
    if (gen !== this.generation) {
      ws.close(1000, "reset");
      throw localError("connection_lost");
    }
    const rpc = new RpcSocket(ws, {
      timers: this.timers,
      onNotification: (msg) => this._onNotification(msg),
      onClose: ({ code, reason }) => this._onClosed(rpc, code, reason),
    });
    this.rpc = rpc;
    let hello;
    try {
      ({ result: hello } = await rpc.request("hello", { protocol: PROTOCOL_VERSION, client: this.client },
        { timeoutMs: HELLO_TIMEOUT_MS }));
    } catch (e) {
      rpc.close(1000, "hello failed");
      this._set({ status: e.errorName === "version_mismatch" ? "incompatible" : "down", reason: e.message });
      throw e;
    }
    this.attempt = 0;
    this._set({ status: "ready", reason: null, hello });
    this._startKeepalive(rpc);
    return rpc;
  }

  _startKeepalive(rpc) {
    if (this.keepaliveTimer) this.timers.clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = this.timers.setInterval(() => {
      if (rpc.closed) return;
      rpc.request("status", {}, { timeoutMs: 10_000 }).then(
        ({ result }) => this._set({ lastStatus: result }),
        () => rpc.close(4000, "keepalive failed"),
      );
    }, this.keepaliveMs);
  }

  _onNotification(msg) {
    if (msg.method === "shutdown") this._set({ status: "reconnecting", reason: msg.params?.reason ?? "shutdown" });
    try {
      this.onNotificationCb(msg);
    } catch {
      /* ignore */
    }
  }

  _onClosed(rpc, code, reason) {
    if (this.rpc !== rpc) return;
    this.rpc = null;
    if (this.keepaliveTimer) this.timers.clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = null;
    if (FATAL_CLOSES.has(code)) {
      this._set({ status: "incompatible", reason: reason || `closed with ${code}` });
      return;
    }
    this._set({ status: "reconnecting", reason: reason || `closed with ${code}` });
    this._scheduleReconnect();
  }

  /** Reconnect after a back-off (exponential, jittered); the attempt count resets on a successful hello. */
  _scheduleReconnect() {
    if (!this.autoReconnect || this.reconnectTimer) return;
    const delay = backoffDelay(this.attempt, { random: this.random });
    this.attempt += 1;
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = null;
      this.ensure().catch(() => {});
    }, delay);
    this.state = { ...this.state, retryInMs: delay };
  }
}
