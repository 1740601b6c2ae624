// Binary frames (PROTOCOL.md §4): magic "ALY1", id length (1 byte), ASCII id, payload.
import { SCHEMA } from "./schema.gen.js";

const MAGIC = new TextEncoder().encode(SCHEMA.frameMagic);
const ID_RE = new RegExp(SCHEMA.idPattern ?? "^[A-Za-z0-9._:-]+$");

export class FrameError extends Error {}

export function validId(id) {
  return typeof id === "string" && id.length >= 1 && id.length <= SCHEMA.maxIdBytes && ID_RE.test(id);
}

/** Encode ``payload`` (Uint8Array | ArrayBuffer) as the frame for request ``id``. */
export function encodeFrame(id, payload) {
  if (!validId(id)) throw new FrameError(`invalid request id ${JSON.stringify(id)}`);
  const body = payload instanceof Uint8Array ? payload : new Uint8Array(payload);
  const idBytes = new TextEncoder().encode(id);
  const out = new Uint8Array(MAGIC.length + 1 + idBytes.length + body.length);
  out.set(MAGIC, 0);
  out[MAGIC.length] = idBytes.length;
  out.set(idBytes, MAGIC.length + 1);
  out.set(body, MAGIC.length + 1 + idBytes.length);
  return out;
}

/** Decode a frame (ArrayBuffer | Uint8Array) into ``{id, payload}``; throws FrameError on a bad header. */
export function decodeFrame(data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (bytes.length < MAGIC.length + 2) throw new FrameError("frame too short");
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) throw new FrameError("bad frame magic");
  }
  const n = bytes[MAGIC.length];
  if (n < 1 || n > SCHEMA.maxIdBytes) throw new FrameError(`bad id length ${n}`);
  const start = MAGIC.length + 1;
  if (bytes.length < start + n) throw new FrameError("frame shorter than its id");
  const id = new TextDecoder().decode(bytes.subarray(start, start + n));
  if (!validId(id)) throw new FrameError("bad id in frame");
  return { id, payload: bytes.subarray(start + n) };
}
