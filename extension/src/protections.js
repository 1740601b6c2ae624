// What a photo gets: the daemon's protections (faces, emotion, metadata; names from the schema), built from the
// settings (global switches) and the site's own switch for facial expressions.
import { normalizeLevel } from "./levels.js";
import { SCHEMA } from "./schema.gen.js";
import { siteState } from "./sites.js";

export const PROTECTIONS = Object.freeze([...SCHEMA.protections]);

/**
 * The `protect` list of a protect.image request on site ``siteId``, in the daemon's order: "faces" when the face
 * cloak is on, "emotion" when the site hides facial expressions (its own switch, else the global default),
 * "metadata" when metadata removal is on.
 */
export function protectList(settings, siteId) {
  const p = settings?.protections ?? {};
  const wanted = new Set();
  if (p.face !== false) wanted.add("faces");
  if (siteState(settings, siteId).emotion) wanted.add("emotion");
  if (p.metadata !== false) wanted.add("metadata");
  return PROTECTIONS.filter((name) => wanted.has(name));
}

/**
 * What to ask the daemon for a photo: ``{level, protect}``, or null to pass the file through untouched (nothing
 * would change it: no protection is on, or only the cloak/expressions at level "off" with metadata kept).
 * The level is "off" when neither faces nor emotion is asked (then only the metadata is removed).
 */
export function imageRequest(level, protect) {
  if (!protect?.length) return null;
  const pixels = protect.includes("faces") || protect.includes("emotion");
  const lvl = pixels ? normalizeLevel(level) : "off";
  if (lvl === "off" && !protect.includes("metadata")) return null;
  return { level: lvl, protect: [...protect] };
}

/**
 * The params of a protect.image request for ``ask`` (from imageRequest), given the daemon's
 * ``hello.capabilities["protect.image"]``: ``protect`` is sent only to a daemon that announces ``protections``
 * (an older one refuses an unknown param, and always cloaks and removes the metadata).
 */
export function imageParams(image, ask, capability) {
  const params = { image, level: ask.level };
  if (Array.isArray(capability?.protections)) params.protect = ask.protect.filter((p) => capability.protections.includes(p));
  if (params.protect && !params.protect.length) delete params.protect;
  // The site the photo goes to (the daemon resizes it to what the site serves before cloaking), sent only to a
  // daemon that announces it knows this site; "keep full size" only with it.
  if (ask.site && Array.isArray(capability?.sites) && capability.sites.includes(ask.site)) {
    params.site = ask.site;
    if (ask.fullSize === true) params.full_size = true;
  }
  return params;
}
