// Privacy levels: the daemon's names (from the schema). What a photo asks for: protections.js.
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
