// Privacy levels: the daemon's names (from the schema), and what the extension sends for a set of protections.
import { SCHEMA } from "./schema.gen.js";

export const LEVELS = Object.freeze([...SCHEMA.levels]);
export const DEFAULT_LEVEL = "medium";

export function isLevel(value) {
  return LEVELS.includes(value);
}

export function normalizeLevel(value) {
  const v = String(value ?? "").toLowerCase();
  return isLevel(v) ? v : DEFAULT_LEVEL;
}

/**
 * What to ask the daemon for an image, given the level and the protections switched on in the options:
 * null = pass the file through untouched (nothing is on); "off" = metadata removal only; else the level.
 */
export function imageLevel(level, protections) {
  const face = protections?.face !== false;
  const metadata = protections?.metadata !== false;
  const lvl = normalizeLevel(level);
  if (face && lvl !== "off") return lvl;
  if (metadata || face) return "off"; // the daemon always strips metadata; "off" skips the cloak
  return null;
}
