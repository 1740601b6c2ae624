// The extension's protocol constants against the daemon's own schema file (daemon/ally/server/protocol.schema.json).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { GENERATED_PATH, SCHEMA_PATH, generateConstants } from "../build.mjs";
import { LEVELS } from "../src/levels.js";
import { ERRORS_BY_CODE, ERRORS_BY_NAME, METHODS, PROTOCOL_VERSION, errorFamily, subprotocols } from "../src/protocol.js";

const schema = JSON.parse(readFileSync(SCHEMA_PATH, "utf8"));
const x = schema["x-ally-protocol"];

test("src/schema.gen.js is regenerated from the current schema", () => {
  assert.equal(readFileSync(GENERATED_PATH, "utf8"), generateConstants(schema),
    "run `node extension/build.mjs --gen`");
});

test("methods, error names and codes, levels and version equal the schema's", () => {
  assert.deepEqual(Object.keys(METHODS).sort(), Object.keys(x.methods).sort());
  assert.deepEqual(Object.keys(ERRORS_BY_NAME).sort(), x.errors.map((e) => e.name).sort());
  for (const e of x.errors) assert.equal(ERRORS_BY_CODE[e.code].name, e.name);
  assert.deepEqual(LEVELS, schema.$defs.level.enum);
  assert.equal(PROTOCOL_VERSION, x.version);
});

test("every method and error name the extension's code uses exists in the schema", () => {
  const sources = ["background.js", "connection.js", "pairing.js", "rpc.js"].map((f) =>
    readFileSync(new URL(`../src/${f}`, import.meta.url), "utf8")).join("\n");
  const methods = [...sources.matchAll(/(?:request|_sendQuiet)\(\s*"([a-z.]+)"/g)].map((m) => m[1]);
  methods.push(...[...sources.matchAll(/method: "([a-z.]+)"/g)].map((m) => m[1]));
  assert.ok(methods.length >= 5, "found the method names in the sources");
  for (const m of methods) assert.ok(m in x.methods, `unknown method ${m}`);
  const notifications = [...sources.matchAll(/msg\.method === "([a-z.]+)"/g)].map((m) => m[1]);
  const defs = Object.keys(schema.$defs).filter((k) => k.startsWith("notification:")).map((k) => k.slice(13));
  for (const n of notifications) assert.ok(defs.includes(n), `unknown notification ${n}`);
  const errorNames = [...sources.matchAll(/errorName === "([a-z_]+)"/g)].map((m) => m[1]);
  for (const n of errorNames) assert.ok(n in ERRORS_BY_NAME, `unknown error ${n}`);
  // the binary flags the rpc layer relies on
  assert.equal(x.methods["protect.image"].binary_out, true);
  assert.equal(x.methods["protect.text"].binary_out, false);
});

test("subprotocols and error families follow the schema and PROTOCOL.md §12", () => {
  assert.deepEqual(subprotocols("tok"), [x.subprotocol, x.token_prefix + "tok"]);
  assert.deepEqual(subprotocols(null), [x.pairing_subprotocol]);
  assert.equal(errorFamily(300), "limits");
  assert.equal(errorFamily(599), "image");
  assert.equal(errorFamily(1234), "unknown");
});
