// Protocol vocabulary shared with the daemon (names come from the generated schema module, never re-typed).
import { SCHEMA } from "./schema.gen.js";

export { SCHEMA };
export const PROTOCOL_VERSION = SCHEMA.version;
export const DEFAULT_PORT = 28417;
export const WS_PATH = "/ws";
export const HEALTH_PATH = "/health";

export const METHODS = Object.freeze(Object.fromEntries(Object.keys(SCHEMA.methods).map((m) => [m, m])));
export const ERRORS_BY_NAME = Object.freeze(Object.fromEntries(SCHEMA.errors.map((e) => [e.name, e])));
export const ERRORS_BY_CODE = Object.freeze(Object.fromEntries(SCHEMA.errors.map((e) => [e.code, e])));

/** Errors the extension itself raises (not daemon codes): the connection could not be used. */
export const LOCAL_ERRORS = Object.freeze({
  daemon_down: "The Ally daemon is not running on this computer. Start it with `ally serve`.",
  not_paired: "This browser is not paired with the Ally daemon. Open the extension's options to pair.",
  connection_lost: "The connection to the Ally daemon was lost.",
  timeout: "The Ally daemon did not answer in time.",
  disabled: "Protection is off.",
});

const HUNDREDS = { 1: "message", 2: "access", 3: "limits", 4: "job", 5: "image", 9: "daemon" };

/** The family of an error code, by its hundred (PROTOCOL.md §12: unknown codes are read by their hundred). */
export function errorFamily(code) {
  return HUNDREDS[Math.floor(code / 100)] ?? "unknown";
}

export class ProtocolError extends Error {
  constructor({ code = 0, name = "internal", message = "", data = undefined } = {}) {
    super(message || ERRORS_BY_NAME[name]?.message || LOCAL_ERRORS[name] || name);
    this.code = code;
    this.errorName = name;
    this.data = data;
  }
  get retry() {
    return ERRORS_BY_CODE[this.code]?.retry ?? false;
  }
  get family() {
    return errorFamily(this.code);
  }
  toJSON() {
    return { code: this.code, name: this.errorName, message: this.message, data: this.data };
  }
}

/** A local (extension-side) failure, e.g. the daemon is down: code 0, a LOCAL_ERRORS name. */
export function localError(name, message) {
  return new ProtocolError({ code: 0, name, message: message ?? LOCAL_ERRORS[name] });
}

/** Which of the four message shapes (PROTOCOL.md §3) a parsed daemon message is. */
export function messageKind(msg) {
  if (msg === null || typeof msg !== "object") return "invalid";
  if ("method" in msg && !("id" in msg)) return "notification";
  if ("error" in msg) return "error";
  if ("result" in msg) return "result";
  return "invalid";
}

export function methodReturnsBinary(method) {
  return Boolean(SCHEMA.methods[method]?.binaryOut);
}

export function methodTakesBinary(method) {
  return Boolean(SCHEMA.methods[method]?.binaryIn);
}

export function wsUrl(port = DEFAULT_PORT) {
  return `ws://127.0.0.1:${port}${WS_PATH}`;
}

export function healthUrl(port = DEFAULT_PORT) {
  return `http://127.0.0.1:${port}${HEALTH_PATH}`;
}

/** Subprotocols to offer: a normal session with the token, or a pairing session. */
export function subprotocols(token) {
  return token ? [SCHEMA.subprotocol, SCHEMA.tokenPrefix + token] : [SCHEMA.pairingSubprotocol];
}
