// One open daemon socket: requests matched to answers by id, binary frames matched by id, timeouts, progress.
import { decodeFrame, encodeFrame } from "./frames.js";
import { ProtocolError, localError, messageKind, methodReturnsBinary } from "./protocol.js";

export const DEFAULT_TIMEOUT_MS = 15_000;

export class RpcSocket {
  /**
   * @param ws an open WebSocket (or anything with send/close and on* handlers)
   * @param opts.onNotification (msg) => void, for notifications other than a pending job's progress
   * @param opts.onClose ({code, reason}) => void, after every pending request was rejected
   */
  constructor(ws, { onNotification = () => {}, onClose = () => {}, timers = globalThis, idPrefix = "r" } = {}) {
    this.ws = ws;
    this.timers = timers;
    this.onNotification = onNotification;
    this.onCloseCb = onClose;
    this.idPrefix = idPrefix;
    this.counter = 0;
    this.pending = new Map(); // id -> {method, resolve, reject, timer, onProgress, result, binary, wantBinary}
    this.closed = false;
    this.unmatchedErrors = [];
    ws.binaryType = "arraybuffer";
    ws.onmessage = (ev) => this._onMessage(ev.data);
    ws.onclose = (ev) => this._onClose(ev?.code ?? 1006, ev?.reason ?? "");
  }

  nextId() {
    this.counter += 1;
    return `${this.idPrefix}${this.counter}`;
  }

  /**
   * Send ``method`` and resolve with ``{result, binary}`` (binary: Uint8Array for methods that return one).
   * Rejects with ProtocolError (daemon errors, timeout, connection lost).
   */
  request(method, params = {}, { binary = null, timeoutMs = DEFAULT_TIMEOUT_MS, onProgress = null, id = null } = {}) {
    if (this.closed) return Promise.reject(localError("connection_lost"));
    const rid = id ?? this.nextId();
    return new Promise((resolve, reject) => {
      const entry = { method, resolve, reject, onProgress, result: undefined, binary: undefined,
        wantBinary: methodReturnsBinary(method), timer: null };
      entry.timer = this.timers.setTimeout(() => {
        if (!this.pending.has(rid)) return;
        this.pending.delete(rid);
        if (method.startsWith("protect.")) this._sendQuiet({ id: this.nextId(), method: "cancel", params: { job: rid } });
        reject(localError("timeout", `the daemon did not answer ${method} within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.pending.set(rid, entry);
      try {
        this.ws.send(JSON.stringify({ id: rid, method, params }));
        if (binary) this.ws.send(encodeFrame(rid, binary));
      } catch (e) {
        this._settle(rid, null, localError("connection_lost", String(e?.message ?? e)));
      }
    });
  }

  /** Ask the daemon to cancel job ``id``; its request then fails with 400 cancelled. */
  cancel(id) {
    if (!this.pending.has(id)) return Promise.resolve(null);
    return this.request("cancel", { job: id }).catch(() => null);
  }

  close(code = 1000, reason = "") {
    try {
      this.ws.close(code, reason);
    } catch {
      /* already closed */
    }
    this._onClose(code, reason);
  }

  _sendQuiet(msg) {
    try {
      this.ws.send(JSON.stringify(msg));
    } catch {
      /* the close handler deals with it */
    }
  }

  _settle(id, value, error) {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    this.timers.clearTimeout(entry.timer);
    if (error) entry.reject(error);
    else entry.resolve(value);
  }

  _onMessage(data) {
    if (typeof data !== "string") {
      let frame;
      try {
        frame = decodeFrame(data);
      } catch {
        return; // a frame we cannot read names no request: nothing to settle
      }
      const entry = this.pending.get(frame.id);
      if (!entry || !entry.wantBinary) return;
      entry.binary = frame.payload.slice();
      if (entry.result !== undefined) this._settle(frame.id, { result: entry.result, binary: entry.binary });
      return;
    }
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    const kind = messageKind(msg);
    if (kind === "notification") {
      if (msg.method === "progress") {
        const entry = this.pending.get(msg.params?.job);
        if (entry?.onProgress) {
          try {
            entry.onProgress(msg.params);
          } catch {
            /* a listener's bug must not break the socket */
          }
        }
        return;
      }
      this.onNotification(msg);
      return;
    }
    if (kind === "error") {
      const err = new ProtocolError(msg.error ?? {});
      if (msg.id == null) {
        this.unmatchedErrors.push(err);
        return;
      }
      this._settle(msg.id, null, err);
      return;
    }
    if (kind === "result") {
      const entry = this.pending.get(msg.id);
      if (!entry) return;
      if (entry.wantBinary) {
        entry.result = msg.result;
        if (entry.binary !== undefined) this._settle(msg.id, { result: msg.result, binary: entry.binary });
        return; // wait for the frame with this id
      }
      this._settle(msg.id, { result: msg.result, binary: null });
    }
  }

  _onClose(code, reason) {
    if (this.closed) return;
    this.closed = true;
    for (const id of [...this.pending.keys()]) {
      this._settle(id, null, localError("connection_lost", `the connection to the daemon closed (${code}${reason ? " " + reason : ""})`));
    }
    this.onCloseCb({ code, reason });
  }
}

/** Open ``new WebSocketImpl(url, protocols)``; resolve with it once open, reject (with the close code) if not. */
export function openSocket(WebSocketImpl, url, protocols, { timers = globalThis, timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    let ws;
    try {
      ws = new WebSocketImpl(url, protocols);
    } catch (e) {
      reject(localError("daemon_down", String(e?.message ?? e)));
      return;
    }
    ws.binaryType = "arraybuffer";
    const timer = timers.setTimeout(() => {
      try {
        ws.close();
      } catch {
        /* ignore */
      }
      reject(localError("daemon_down", "connecting to the daemon timed out"));
    }, timeoutMs);
    ws.onopen = () => {
      timers.clearTimeout(timer);
      ws.onclose = null;
      ws.onerror = null;
      resolve(ws);
    };
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      timers.clearTimeout(timer);
      const err = localError("daemon_down", `the daemon refused or is not running (close ${ev?.code ?? 1006})`);
      err.closeCode = ev?.code ?? 1006;
      reject(err);
    };
  });
}
