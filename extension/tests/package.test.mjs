import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { inflateRawSync } from "node:zlib";
import { packageAll } from "../build.mjs";

/** The zip's entries read back from its central directory: {name: inflated bytes}. */
function entries(zip) {
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const count = zip.readUInt16LE(end + 10);
  let p = zip.readUInt32LE(end + 16);
  const out = {};
  for (let i = 0; i < count; i++) {
    assert.equal(zip.readUInt32LE(p), 0x02014b50);
    const size = zip.readUInt32LE(p + 20), nameLen = zip.readUInt16LE(p + 28), local = zip.readUInt32LE(p + 42);
    const name = zip.subarray(p + 46, p + 46 + nameLen).toString("utf8");
    const dataAt = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    out[name] = inflateRawSync(zip.subarray(dataAt, dataAt + size));
    p += 46 + nameLen + zip.readUInt16LE(p + 30) + zip.readUInt16LE(p + 32);
  }
  return out;
}

test("--package: a Chromium zip and a Firefox XPI, manifest at the root, every built file inside", () => {
  const dist = mkdtempSync(join(tmpdir(), "ally-pack-"));
  try {
    const files = packageAll(dist);
    for (const [target, file] of Object.entries(files)) {
      const zip = readFileSync(file);
      const inside = entries(zip);
      const manifest = JSON.parse(inside["manifest.json"].toString("utf8"));
      assert.equal(manifest.manifest_version, 3);
      assert.equal(target === "firefox", "browser_specific_settings" in manifest);
      assert.equal(target === "chromium", "key" in manifest);
      const built = readFileSync(join(dist, target, "src", "schema.gen.js"));
      assert.deepEqual(inside["src/schema.gen.js"], built);
      assert.ok(Object.keys(inside).every((n) => !n.startsWith("/") && !n.includes("..")));
      // A standard tool reads it too (CRCs included), when one is installed.
      try {
        execFileSync("unzip", ["-tq", file], { stdio: "pipe" });
      } catch (e) {
        if (e.code !== "ENOENT") throw e;
      }
    }
    assert.ok(files.firefox.endsWith(".xpi") && files.chromium.endsWith(".zip"));
    assert.deepEqual(readFileSync(packageAll(dist).firefox), readFileSync(files.firefox)); // reproducible
  } finally {
    rmSync(dist, { recursive: true, force: true });
  }
});
