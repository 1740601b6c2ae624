// Pairing (PROTOCOL.md §8): a pairing session, pair.begin, show the code, wait for pair.completed.
import { PROTOCOL_VERSION, ProtocolError, localError, subprotocols, wsUrl } from "./protocol.js";
import { RpcSocket, openSocket } from "./rpc.js";

/**
 * Pair with the daemon on ``port``. ``onCode({code, expires_in_s})`` is called once the daemon has a code for
 * the user to confirm with `ally pair --confirm CODE`. Resolves with ``{token, origin}``.
 */
export async function pairWithDaemon({ port, name, client, onCode, WebSocketImpl = globalThis.WebSocket,
  timers = globalThis }) {
  let ws;
  try {
    ws = await openSocket(WebSocketImpl, wsUrl(port), subprotocols(null), { timers });
  } catch {
    throw localError("daemon_down");
  }
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (fn, value) => {
      if (done) return;
      done = true;
      fn(value);
    };
    const rpc = new RpcSocket(ws, {
      timers,
      idPrefix: "p",
      onNotification: (msg) => {
        if (msg.method === "pair.completed") finish(resolve, { token: msg.params.token, origin: msg.params.origin });
        else if (msg.method === "pair.failed") finish(reject, new ProtocolError(msg.params?.error ?? {}));
      },
      onClose: ({ code }) =>
        finish(reject, code === 4205
          ? new ProtocolError({ code: 205, name: "pairing_failed", message: "The pairing code expired." })
          : localError("connection_lost", `the pairing session closed (${code}) before it was confirmed`)),
    });
    (async () => {
      await rpc.request("hello", { protocol: PROTOCOL_VERSION, client });
      const { result } = await rpc.request("pair.begin", { name });
      onCode?.(result);
    })().catch((e) => {
      finish(reject, e);
      rpc.close(1000, "pairing failed");
    });
  });
}
