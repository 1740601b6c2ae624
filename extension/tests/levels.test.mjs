import assert from "node:assert/strict";
import { test } from "node:test";
import { normalizeLevel } from "../src/levels.js";
import { PROTECTIONS, imageParams, imageRequest, protectList } from "../src/protections.js";
import { SCHEMA } from "../src/schema.gen.js";
import { withDefaults } from "../src/settings.js";

test("levels normalize to the daemon's names", () => {
  assert.equal(normalizeLevel("HIGH"), "high");
  assert.equal(normalizeLevel("bogus"), "medium");
});

test("what an image asks for, by protections", () => {
  const fm = ["faces", "metadata"];
  assert.deepEqual(imageRequest("low", fm), { level: "low", protect: fm });
  assert.deepEqual(imageRequest("off", fm), { level: "off", protect: fm });
  assert.deepEqual(imageRequest("high", ["metadata"]), { level: "off", protect: ["metadata"] });
  assert.deepEqual(imageRequest("high", ["emotion"]), { level: "high", protect: ["emotion"] });
  assert.equal(imageRequest("high", []), null);  // nothing on: the file passes untouched
  assert.equal(imageRequest("off", ["faces"]), null);  // nothing would change it either
});

test("the protect list: names and order are the daemon's", () => {
  assert.deepEqual(PROTECTIONS, SCHEMA.protections);
  assert.deepEqual(PROTECTIONS, ["faces", "emotion", "metadata"]);
});

test("the protect list is built from the settings and the site's expression switch", () => {
  const base = withDefaults({});
  assert.deepEqual(protectList(base, "mastodon.social"), ["faces", "metadata"]);  // emotion is off by default
  const site = withDefaults({ sites: { "mastodon.social": { emotion: true } } });
  assert.deepEqual(protectList(site, "mastodon.social"), ["faces", "emotion", "metadata"]);
  assert.deepEqual(protectList(site, "x"), ["faces", "metadata"]);  // only that site
  const global = withDefaults({ protections: { emotion: true }, sites: { x: { emotion: false } } });
  assert.deepEqual(protectList(global, "reddit"), ["faces", "emotion", "metadata"]);  // the global default
  assert.deepEqual(protectList(global, "x"), ["faces", "metadata"]);  // the site's own choice wins
  const noFace = withDefaults({ protections: { face: false, metadata: false, emotion: true } });
  assert.deepEqual(protectList(noFace, "x"), ["emotion"]);
  assert.deepEqual(protectList(withDefaults({ protections: { face: false, metadata: false } }), "x"), []);
});

test("settings defaults; edit immunization cannot be switched on", () => {
  const s = withDefaults({ protections: { immunize: true, text: false } });
  assert.deepEqual(s.protections, { face: true, metadata: true, emotion: false, text: false, immunize: false });
  assert.equal(s.port, 28417);
  assert.equal(s.level, "medium");
});

test("protect is sent to a daemon that announces it, in the names it announces", () => {
  const image = { bytes: 10, type: "image/jpeg" };
  const ask = { level: "low", protect: ["faces", "emotion", "metadata"] };
  const now = { available: true, protections: ["faces", "emotion", "metadata"] };
  assert.deepEqual(imageParams(image, ask, now), { image, level: "low", protect: ["faces", "emotion", "metadata"] });
  assert.deepEqual(imageParams(image, ask, { available: true }), { image, level: "low" });  // an older daemon
  assert.deepEqual(imageParams(image, ask, undefined), { image, level: "low" });
  assert.deepEqual(imageParams(image, ask, { protections: ["faces", "metadata"] }),
    { image, level: "low", protect: ["faces", "metadata"] });
});
