// The extension's persistent state in chrome.storage.local (the service worker may be stopped at any time).
import { DEFAULT_LEVEL, normalizeLevel } from "./levels.js";
import { DEFAULT_PORT } from "./protocol.js";

export const DEFAULT_SETTINGS = Object.freeze({
  level: DEFAULT_LEVEL,
  port: DEFAULT_PORT,
  protections: { face: true, metadata: true, emotion: false, text: true, immunize: false },
  sites: {}, // site id -> {enabled, autoText, emotion}; emotion absent: the global protections.emotion
  custom: {}, // user-added host -> {patterns}
});

export function withDefaults(stored) {
  const s = stored ?? {};
  return {
    level: normalizeLevel(s.level ?? DEFAULT_SETTINGS.level),
    port: Number.isInteger(s.port) ? s.port : DEFAULT_PORT,
    protections: { ...DEFAULT_SETTINGS.protections, ...(s.protections ?? {}), immunize: false },
    sites: { ...(s.sites ?? {}) },
    custom: { ...(s.custom ?? {}) },
  };
}

export function createStore(area) {
  return {
    async settings() {
      const { settings } = await area.get("settings");
      return withDefaults(settings);
    },
    async updateSettings(change) {
      const next = withDefaults({ ...(await this.settings()), ...change });
      await area.set({ settings: next });
      return next;
    },
    async token() {
      const { token } = await area.get("token");
      return typeof token === "string" && token ? token : null;
    },
    async setToken(token) {
      if (token) await area.set({ token });
      else await area.remove("token");
    },
    async counts() {
      const { counts } = await area.get("counts");
      return { images: 0, faces: 0, texts: 0, ...(counts ?? {}) };
    },
    async bump(change) {
      const c = await this.counts();
      for (const [k, v] of Object.entries(change)) c[k] = (c[k] ?? 0) + v;
      await area.set({ counts: c });
      return c;
    },
  };
}
