import assert from "node:assert/strict";
import { test } from "node:test";
import { imageLevel, normalizeLevel } from "../src/levels.js";
import { withDefaults } from "../src/settings.js";

test("levels normalize to the daemon's names", () => {
  assert.equal(normalizeLevel("HIGH"), "high");
  assert.equal(normalizeLevel("bogus"), "medium");
});

test("what an image asks for, by protections", () => {
  assert.equal(imageLevel("low", { face: true, metadata: true }), "low");
  assert.equal(imageLevel("off", { face: true, metadata: true }), "off");
  assert.equal(imageLevel("high", { face: false, metadata: true }), "off");
  assert.equal(imageLevel("high", { face: false, metadata: false }), null);
});

test("settings defaults; edit immunization cannot be switched on", () => {
  const s = withDefaults({ protections: { immunize: true, text: false } });
  assert.deepEqual(s.protections, { face: true, metadata: true, text: false, immunize: false });
  assert.equal(s.port, 28417);
  assert.equal(s.level, "medium");
});
