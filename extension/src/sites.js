// Which sites are protected: the shipped social sites, user-added ones, and per-site switches; and which site
// profile (what the site serves: size, JPEG quality; the daemon's table, daemon/ally/sites.json) a page belongs to.
import { SITE_PROFILES } from "./sites.gen.js";

export { SITE_PROFILES };

/** Shipped sites. `hosts`: the host names (and their subdomains) that belong to the site. */
export const DEFAULT_SITES = Object.freeze([
  { id: "x", name: "X (Twitter)", hosts: ["x.com", "twitter.com"] },
  { id: "facebook", name: "Facebook", hosts: ["facebook.com"] },
  { id: "instagram", name: "Instagram", hosts: ["instagram.com"] },
  { id: "reddit", name: "Reddit", hosts: ["reddit.com"] },
  { id: "mastodon.social", name: "Mastodon (mastodon.social)", hosts: ["mastodon.social"] },
]);

/** The match patterns of a host (itself and its subdomains), https only. */
export function hostPatterns(host) {
  return [`https://${host}/*`, `https://*.${host}/*`];
}

export const DEFAULT_PATTERNS = Object.freeze(DEFAULT_SITES.flatMap((s) => s.hosts.flatMap(hostPatterns)));

const HOST_RE = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

export function hostOf(url) {
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return "";
  }
}

function hostMatches(host, siteHost) {
  return host === siteHost || host.endsWith("." + siteHost);
}

/**
 * Parse what a user typed to add a site ("example.social", "https://example.social/@me") into
 * ``{host, patterns}`` or throw an Error saying why not. Only https sites (and http on loopback) are accepted.
 */
export function parseSiteInput(input) {
  let text = String(input ?? "").trim().toLowerCase();
  if (!text) throw new Error("Enter a site address, e.g. example.social");
  if (!/^[a-z]+:\/\//.test(text)) text = "https://" + text;
  let url;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`"${input}" is not a web address`);
  }
  const host = url.hostname.replace(/^www\./, "");
  const loopback = host === "127.0.0.1" || host === "localhost";
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    throw new Error("Only https sites can be protected");
  }
  if (!loopback && (!HOST_RE.test(host) || !host.includes("."))) throw new Error(`"${host}" is not a host name`);
  const scheme = url.protocol.replace(":", "");
  const patterns = loopback ? [`${scheme}://${host}/*`] : hostPatterns(host);
  return { host, patterns };
}

/** All sites: shipped ones and user-added ones (``custom``: {host: {patterns}}), each with its hosts. */
export function allSites(settings) {
  const custom = Object.entries(settings?.custom ?? {}).map(([host, c]) => ({
    id: host, name: host, hosts: [host], patterns: c.patterns ?? hostPatterns(host), custom: true,
  }));
  const shipped = DEFAULT_SITES.map((s) => ({ ...s, patterns: s.hosts.flatMap(hostPatterns), custom: false }));
  return [...shipped, ...custom];
}

/**
 * The site profile (``SITE_PROFILES``: the table the daemon resizes by) that a host belongs to — the host itself
 * or a subdomain of one of the profile's hosts — or null. The name is what protect.image's ``site`` takes.
 */
export function profileForHost(host) {
  const h = String(host ?? "").toLowerCase().replace(/\.$/, "");
  if (!h) return null;
  return SITE_PROFILES.find((p) => p.hosts.some((ph) => hostMatches(h, ph))) ?? null;
}

/** The site profile of a page's URL (https only, like the shipped sites), or null. */
export function profileForUrl(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== "https:") return null;
  return profileForHost(u.hostname);
}

/** The site a page belongs to, or null (not a protected site). */
export function siteForUrl(url, settings) {
  const host = hostOf(url);
  if (!host) return null;
  const u = new URL(url);
  for (const site of allSites(settings)) {
    if (!site.hosts.some((h) => hostMatches(host, h))) continue;
    if (!site.custom && u.protocol !== "https:") continue;
    return site;
  }
  return null;
}

/**
 * Per-site switches with defaults: protection on, automatic text review off, facial expressions hidden as the
 * global default says (``protections.emotion``, off unless switched on) unless the site has its own choice, and
 * photos brought to the size the site serves (``fullSize`` off: the cloak is computed at the size people see).
 */
export function siteState(settings, siteId) {
  const s = settings?.sites?.[siteId] ?? {};
  const emotion = typeof s.emotion === "boolean" ? s.emotion : settings?.protections?.emotion === true;
  return { enabled: s.enabled !== false, autoText: s.autoText === true, emotion, fullSize: s.fullSize === true };
}

/** What the content script on ``url`` should do; ``profile``: the site profile's name to send, or null. */
export function pageConfig(url, settings) {
  const site = siteForUrl(url, settings);
  if (!site) return { site: null, enabled: false, autoText: false, emotion: false, fullSize: false, profile: null };
  const st = siteState(settings, site.id);
  return { site: { id: site.id, name: site.name }, ...st, profile: profileForUrl(url)?.name ?? null };
}
