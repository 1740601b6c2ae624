import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { GECKO_ID, HERE, build, manifestFor } from "../build.mjs";

const source = JSON.parse(readFileSync(join(HERE, "manifest.json"), "utf8"));
export const PINNED_ID = "imikjllcodhkhephicimpgdglkhkjgbo";

test("the manifest key pins the documented Chromium extension id", () => {
  const hex = createHash("sha256").update(Buffer.from(source.key, "base64")).digest("hex").slice(0, 32);
  const id = [...hex].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join("");
  assert.equal(id, PINNED_ID);
  assert.ok(readFileSync(join(HERE, "README.md"), "utf8").includes(PINNED_ID), "README documents the id");
});

test("the Chromium manifest: MV3, module service worker, narrow permissions", () => {
  const m = manifestFor("chromium", source);
  assert.equal(m.manifest_version, 3);
  assert.deepEqual(m.background, { service_worker: "src/background.js", type: "module" });
  assert.deepEqual(m.optional_host_permissions, ["https://*/*"]);
  assert.ok(!m.host_permissions.includes("<all_urls>"));
  assert.deepEqual(m.content_scripts.map((c) => c.run_at), ["document_start", "document_start"]);
  assert.equal(m.content_scripts[0].world, "MAIN");
});

test("the Firefox manifest: background.scripts, gecko id, no key", () => {
  const m = manifestFor("firefox", source);
  assert.deepEqual(m.background, { scripts: ["src/background.js"], type: "module" });
  assert.equal(m.browser_specific_settings.gecko.id, GECKO_ID);
  // nothing leaves the machine: said in Firefox's data-collection consent (web-ext lint asks for the key)
  assert.deepEqual(m.browser_specific_settings.gecko.data_collection_permissions, { required: ["none"] });
  // Firefox's default MV3 policy has upgrade-insecure-requests, which turns ws://127.0.0.1 into wss:// (the
  // daemon speaks plain ws on loopback): the manifest states a policy without it
  assert.ok(!/upgrade-insecure-requests/.test(m.content_security_policy?.extension_pages ?? "upgrade-insecure-requests"));
  assert.equal(m.key, undefined);
  assert.equal(m.minimum_chrome_version, undefined);
  assert.deepEqual(m.permissions, source.permissions);
});

test("a build copies every file the manifests and pages refer to", () => {
  const out = mkdtempSync(join(tmpdir(), "ally-ext-"));
  try {
    for (const target of ["chromium", "firefox"]) {
      const dir = build(target, join(out, target));
      const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
      const files = [
        ...(m.background.scripts ?? [m.background.service_worker]),
        ...m.content_scripts.flatMap((c) => c.js),
        m.action.default_popup, m.options_ui.page, "pages/about.html", "src/schema.gen.js",
        ...Object.values(m.icons),
      ];
      for (const f of files) assert.ok(existsSync(join(dir, f)), `${target}: ${f} missing`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("the service worker registers the same content scripts as the manifest", () => {
  const bg = readFileSync(join(HERE, "src/background.js"), "utf8");
  const list = (name) => JSON.parse(bg.match(new RegExp(`export const ${name} = (\\[[^\\]]*\\])`))[1]);
  assert.deepEqual(list("CONTENT_SCRIPTS"), source.content_scripts[1].js);
  assert.deepEqual(list("MAIN_WORLD_SCRIPTS"), source.content_scripts[0].js);
});

test("the page-world delivery names agree between boot.js (isolated world) and main-world.js", () => {
  // the two worlds share no code: the message key and the two marker attributes are written in both files
  const boot = readFileSync(join(HERE, "content/boot.js"), "utf8");
  const main = readFileSync(join(HERE, "content/main-world.js"), "utf8");
  const names = {
    MESSAGE_KEY: /ally\.MESSAGE_KEY = "([^"]+)"/, TARGET_ATTR: /ally\.TARGET_ATTR = "([^"]+)"/,
    DELIVERING_ATTR: /ally\.DELIVERING_ATTR = "([^"]+)"/,
  };
  for (const [key, re] of Object.entries(names)) {
    const value = boot.match(re)?.[1];
    assert.ok(value, `boot.js defines ${key}`);
    assert.ok(main.includes(`"${value}"`), `main-world.js uses ${key} = "${value}"`);
  }
});
