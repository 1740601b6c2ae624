// Serve-size protection (issue 17): the extension's site profiles are the daemon's one table
// (daemon/ally/sites.json), a tab's host maps to its profile, and protect.image carries the site.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { SITES_GENERATED_PATH, SITES_PATH, generateSites } from "../build.mjs";
import { imageParams } from "../src/protections.js";
import { DEFAULT_SITES, SITE_PROFILES, pageConfig, profileForHost, profileForUrl } from "../src/sites.js";

const table = JSON.parse(readFileSync(SITES_PATH, "utf8"));
const CAPABILITY = { protections: ["faces", "emotion", "metadata"], sites: Object.keys(table.sites) };

test("src/sites.gen.js is regenerated from the daemon's site table", () => {
  assert.equal(readFileSync(SITES_GENERATED_PATH, "utf8"), generateSites(table), "run `node extension/build.mjs --gen`");
  assert.deepEqual(SITE_PROFILES.map((p) => p.name), Object.keys(table.sites));
  assert.equal(SITE_PROFILES.find((p) => p.name === "instagram").maxWidth, table.sites.instagram.max_width);
});

test("a tab's host maps to its site profile, subdomains included", () => {
  assert.equal(profileForHost("instagram.com").name, "instagram");
  assert.equal(profileForHost("www.instagram.com").name, "instagram");
  assert.equal(profileForHost("WWW.FACEBOOK.COM.").name, "facebook");
  assert.equal(profileForHost("mobile.twitter.com").name, "x");
  assert.equal(profileForHost("x.com").name, "x");
  assert.equal(profileForHost("bsky.app").name, "bluesky");
  assert.equal(profileForHost("www.linkedin.com").name, "linkedin");
  assert.equal(profileForHost("www.threads.net").name, "threads");
  assert.equal(profileForHost("old.reddit.com").name, "reddit");
  assert.equal(profileForHost("mastodon.social").name, "mastodon");
});

test("look-alike hosts, other sites and non-https pages map to no profile", () => {
  for (const host of ["notx.com", "x.com.evil.example", "instagram.com-login.example", "example.org", "", "com"]) {
    assert.equal(profileForHost(host), null, host);
  }
  assert.equal(profileForUrl("http://www.instagram.com/"), null);
  assert.equal(profileForUrl("not a url"), null);
  assert.equal(profileForUrl("https://www.instagram.com/p/abc").name, "instagram");
});

test("every shipped site has a profile, and pages carry it", () => {
  for (const site of DEFAULT_SITES) {
    assert.ok(site.hosts.every((h) => profileForHost(h)), `${site.id} has no site profile`);
  }
  assert.equal(pageConfig("https://www.facebook.com/", {}).profile, "facebook");
  // a user-added site maps to a profile when its host is in the table (a Mastodon server, Bluesky)
  const custom = { custom: { "fosstodon.org": { patterns: ["https://fosstodon.org/*"] } } };
  assert.equal(pageConfig("https://fosstodon.org/@me", custom).profile, "mastodon");
  assert.equal(pageConfig("https://fosstodon.org/@me", { ...custom, sites: { "fosstodon.org": { fullSize: true } } }).fullSize, true);
});

test("protect.image carries the site, and full_size only with it, to a daemon that knows the site", () => {
  const ask = { level: "medium", protect: ["faces", "metadata"], site: "instagram", fullSize: false };
  const image = { bytes: 10 };
  assert.deepEqual(imageParams(image, ask, CAPABILITY),
    { image, level: "medium", protect: ["faces", "metadata"], site: "instagram" });
  assert.equal(imageParams(image, { ...ask, fullSize: true }, CAPABILITY).full_size, true);
  // an older daemon (no `sites` in its capabilities) would refuse the param: not sent
  assert.equal(imageParams(image, ask, { protections: CAPABILITY.protections }).site, undefined);
  assert.equal(imageParams(image, { ...ask, site: "myspace" }, CAPABILITY).site, undefined);
  assert.equal(imageParams(image, { ...ask, site: null, fullSize: true }, CAPABILITY).full_size, undefined);
});
