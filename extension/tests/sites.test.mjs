import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { DEFAULT_PATTERNS, pageConfig, parseSiteInput, siteForUrl, siteState } from "../src/sites.js";

const manifest = JSON.parse(readFileSync(new URL("../manifest.json", import.meta.url), "utf8"));

test("shipped sites and their subdomains match, over https only", () => {
  assert.equal(siteForUrl("https://x.com/compose/post", {}).id, "x");
  assert.equal(siteForUrl("https://mobile.twitter.com/", {}).id, "x");
  assert.equal(siteForUrl("https://www.facebook.com/", {}).id, "facebook");
  assert.equal(siteForUrl("https://www.instagram.com/", {}).id, "instagram");
  assert.equal(siteForUrl("https://old.reddit.com/r/x", {}).id, "reddit");
  assert.equal(siteForUrl("https://mastodon.social/home", {}).id, "mastodon.social");
  assert.equal(siteForUrl("http://x.com/", {}), null);
});

test("look-alike hosts do not match", () => {
  assert.equal(siteForUrl("https://notx.com/", {}), null);
  assert.equal(siteForUrl("https://x.com.evil.example/", {}), null);
  assert.equal(siteForUrl("https://facebook.com-login.example/", {}), null);
  assert.equal(siteForUrl("not a url", {}), null);
});

test("user-added sites match once added", () => {
  const settings = { custom: { "fosstodon.org": { patterns: ["https://fosstodon.org/*", "https://*.fosstodon.org/*"] } } };
  assert.equal(siteForUrl("https://fosstodon.org/@me", {}), null);
  assert.equal(siteForUrl("https://fosstodon.org/@me", settings).id, "fosstodon.org");
});

test("per-site switches default to on, automatic text off, expressions as the global default", () => {
  assert.deepEqual(siteState({}, "x"), { enabled: true, autoText: false, emotion: false, fullSize: false });
  const s = { sites: { x: { enabled: false, autoText: true } } };
  assert.deepEqual(pageConfig("https://x.com/", s),
    { site: { id: "x", name: "X (Twitter)" }, enabled: false, autoText: true, emotion: false, fullSize: false,
      profile: "x" });
  assert.deepEqual(pageConfig("https://example.org/", s),
    { site: null, enabled: false, autoText: false, emotion: false, fullSize: false, profile: null });
});

test("hiding facial expressions: the site's own switch, else the global default", () => {
  const on = { protections: { emotion: true }, sites: { x: { emotion: false }, reddit: {} } };
  assert.equal(siteState(on, "x").emotion, false);  // the site said no
  assert.equal(siteState(on, "reddit").emotion, true);  // no choice of its own: the global default
  assert.equal(siteState({ sites: { x: { emotion: true } } }, "x").emotion, true);
  assert.equal(siteState({ sites: { x: { emotion: "yes" } } }, "x").emotion, false);  // only a boolean counts
});

test("typed site addresses are normalized into match patterns", () => {
  assert.deepEqual(parseSiteInput(" Fosstodon.org "), { host: "fosstodon.org", patterns: ["https://fosstodon.org/*", "https://*.fosstodon.org/*"] });
  assert.equal(parseSiteInput("https://www.example.social/@me").host, "example.social");
  assert.deepEqual(parseSiteInput("http://127.0.0.1:8080/").patterns, ["http://127.0.0.1/*"]);
  assert.throws(() => parseSiteInput(""), /Enter/);
  assert.throws(() => parseSiteInput("http://example.org"), /https/);
  assert.throws(() => parseSiteInput("ftp://example.org"), /https/);
  assert.throws(() => parseSiteInput("localhostish"), /host name/);
});

test("the manifest's content scripts and host permissions cover exactly the shipped sites", () => {
  const patterns = [...DEFAULT_PATTERNS].sort();
  for (const cs of manifest.content_scripts) assert.deepEqual([...cs.matches].sort(), patterns);
  const hosts = manifest.host_permissions.filter((p) => !p.startsWith("http://127.0.0.1"));
  assert.deepEqual([...hosts].sort(), patterns);
  assert.deepEqual(manifest.host_permissions.filter((p) => p.startsWith("http://")), ["http://127.0.0.1/*"]);
  assert.deepEqual(manifest.permissions.sort(), ["scripting", "storage"]);
});
