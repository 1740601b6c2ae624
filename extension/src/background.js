// The service worker: owns the one daemon connection, answers the content scripts, popup and options page,
// and keeps the content-script registrations of user-added sites in step with the settings.
import { bytesToBase64, base64ToBytes } from "./b64.js";
import { DaemonConnection } from "./connection.js";
import { changedWords, diffWords } from "./diff.js";
import { LEVELS, normalizeLevel } from "./levels.js";
import { imageParams, imageRequest, protectList } from "./protections.js";
import { ProtocolError, localError } from "./protocol.js";
import { createStore } from "./settings.js";
import { allSites, pageConfig, siteForUrl } from "./sites.js";

const api = globalThis.browser ?? globalThis.chrome;
const store = createStore(api.storage.local);
const CLIENT = { name: "ally-extension", version: api.runtime.getManifest().version };
const JOB_TIMEOUT_MARGIN_MS = 30_000;
export const CONTENT_SCRIPTS = ["content/overlay.js", "content/upload.js", "content/composer.js", "content/boot.js"];
export const MAIN_WORLD_SCRIPTS = ["content/main-world.js"];

const connection = new DaemonConnection({
  client: CLIENT,
  getToken: () => store.token(),
  getPort: async () => (await store.settings()).port,
  onChange: (state) => {
    // Kept for the popup across service-worker restarts (the socket itself is re-opened on demand).
    api.storage.session?.set({ connection: summarize(state) }).catch(() => {});
  },
});

function summarize(state) {
  const hello = state.hello;
  return {
    status: state.status,
    reason: state.reason,
    daemon: hello?.daemon ?? null,
    session: hello?.session?.kind ?? null,
    capabilities: hello?.capabilities ?? null,
    device: state.lastStatus?.device ?? hello?.capabilities?.["protect.image"]?.device ?? null,
    models: state.lastStatus?.models?.state ?? null,
    since: state.since,
  };
}

function jobTimeout() {
  const s = connection.state.hello?.limits?.job_timeout_s ?? 600;
  return s * 1000 + JOB_TIMEOUT_MARGIN_MS;
}

function errorPayload(e) {
  if (e instanceof ProtocolError) return e.toJSON();
  return { code: 900, name: "internal", message: String(e?.message ?? e) };
}

// -- settings sent to the daemon --------------------------------------------------------------------------

async function pushLevel(level) {
  try {
    await connection.request("settings", { level: normalizeLevel(level) });
  } catch {
    /* sent again with every request anyway */
  }
}

// -- images ----------------------------------------------------------------------------------------------

/** Post to a content script's port that may have gone (the user cancelled, the tab closed). */
function post(port, msg) {
  try {
    port.postMessage(msg);
  } catch {
    /* disconnected */
  }
}

async function protectImage(msg, port) {
  const settings = await store.settings();
  const page = pageConfig(msg.url, settings);
  const ask = page.site ? imageRequest(settings.level, protectList(settings, page.site.id)) : null;
  let level = ask?.level ?? null;
  // "Protect harder" asks for a stronger level than the settings' for this one photo (never a weaker one).
  if (level !== null && level !== "off" && msg.level && LEVELS.indexOf(msg.level) > LEVELS.indexOf(level)) level = msg.level;
  if (!page.enabled || ask === null) {
    post(port, { type: "passthrough", reason: "protection is off for this site" });
    return;
  }
  const bytes = base64ToBytes(msg.data);
  let rpc;
  try {
    rpc = await connection.ensure();
  } catch (e) {
    post(port, { type: "error", error: errorPayload(e), connection: summarize(connection.state) });
    return;
  }
  const id = rpc.nextId();
  const onDisconnect = () => rpc.cancel(id);
  port.onDisconnect.addListener(onDisconnect);
  try {
    const image = { bytes: bytes.length, type: msg.mime || undefined };
    if (!image.type) delete image.type;
    const params = imageParams(image, { ...ask, level, site: page.profile, fullSize: page.fullSize },
      connection.state.hello?.capabilities?.["protect.image"]);
    const { result, binary } = await rpc.request("protect.image", params, {
      id, binary: bytes, timeoutMs: jobTimeout(),
      onProgress: (p) => post(port, { type: "progress", stage: p.stage, fraction: p.fraction }),
    });
    await store.bump({ images: 1, faces: result.cloaked ? result.faces : 0 });
    post(port, { type: "done", result, data: bytesToBase64(binary) });
  } catch (e) {
    post(port, { type: "error", error: errorPayload(e), connection: summarize(connection.state) });
  } finally {
    port.onDisconnect.removeListener(onDisconnect);
  }
}

api.runtime.onConnect.addListener((port) => {
  if (port.name !== "ally.protect") return;
  port.onMessage.addListener((msg) => {
    if (msg?.type === "image") protectImage(msg, port).catch((e) => post(port, { type: "error", error: errorPayload(e) }));
  });
});

// -- text ------------------------------------------------------------------------------------------------

async function protectText(text) {
  const settings = await store.settings();
  let rpc;
  try {
    rpc = await connection.ensure();
  } catch (e) {
    return { ok: false, error: errorPayload(e) };
  }
  const cap = connection.state.hello?.capabilities?.["protect.text"];
  if (cap && cap.available === false) {
    return { ok: false, unavailable: true,
      error: { code: 404, name: "unsupported", message: `Text protection is not available in this daemon: ${cap.reason}` } };
  }
  try {
    const { result } = await rpc.request("protect.text", { text, level: normalizeLevel(settings.level) },
      { timeoutMs: jobTimeout() });
    const ops = diffWords(text, result.text);
    await store.bump({ texts: 1 });
    return { ok: true, text: result.text, ops, changed: changedWords(ops), changes: result.changes,
      report: result.report ?? null };
  } catch (e) {
    return { ok: false, unavailable: e.errorName === "unsupported", error: errorPayload(e) };
  }
}

// -- "protect me" -----------------------------------------------------------------------------------------

async function meRequest(method, params) {
  try {
    await connection.ensure();
    const { result } = await connection.request(method, params, { timeoutMs: 10_000 });
    return { ok: true, result };
  } catch (e) {
    return { ok: false, error: errorPayload(e) };
  }
}

async function meAdd(data, mime) {
  const bytes = base64ToBytes(String(data ?? ""));
  try {
    const rpc = await connection.ensure();
    const image = { bytes: bytes.length };
    if (mime) image.type = String(mime).slice(0, 100);
    const { result } = await rpc.request("me.add", { image }, { binary: bytes, timeoutMs: jobTimeout() });
    return { ok: true, result };
  } catch (e) {
    return { ok: false, error: errorPayload(e) };
  }
}

// -- user-added sites: optional host permissions + dynamic content scripts ---------------------------------

let syncing = Promise.resolve();

/** Register the content scripts of user-added sites (one sync at a time: they race on script ids otherwise). */
export function syncRegistrations() {
  syncing = syncing.catch(() => {}).then(doSync);
  return syncing;
}

async function doSync() {
  if (!api.scripting?.registerContentScripts) return;
  const settings = await store.settings();
  const wanted = allSites(settings).filter((s) => s.custom);
  const existing = await api.scripting.getRegisteredContentScripts();
  const ids = existing.map((s) => s.id).filter((id) => id.startsWith("ally-site-"));
  if (ids.length) await api.scripting.unregisterContentScripts({ ids });
  const scripts = [];
  for (const site of wanted) {
    const granted = await api.permissions.contains({ origins: site.patterns });
    if (!granted) continue;
    scripts.push({ id: `ally-site-${site.id}`, matches: site.patterns, js: CONTENT_SCRIPTS, runAt: "document_start",
      allFrames: false, persistAcrossSessions: true });
    scripts.push({ id: `ally-site-${site.id}-main`, matches: site.patterns, js: MAIN_WORLD_SCRIPTS,
      runAt: "document_start", world: "MAIN", allFrames: false, persistAcrossSessions: true });
  }
  if (scripts.length) await api.scripting.registerContentScripts(scripts);
}

// -- messages from the content scripts, popup and options --------------------------------------------------

async function popupState(url) {
  const settings = await store.settings();
  const site = url ? siteForUrl(url, settings) : null;
  const page = url ? pageConfig(url, settings) : null;
  // Try to be connected when the popup asks (lazily reconnects after a service-worker restart).
  await connection.ensure().catch(() => {});
  if (connection.ready) {
    await connection.request("status", {}, { timeoutMs: 5000 })
      .then(({ result }) => connection._set({ lastStatus: result })).catch(() => {});
  }
  return {
    connection: summarize(connection.state),
    level: settings.level,
    protections: settings.protections,
    site: site ? { id: site.id, name: site.name, enabled: page.enabled, autoText: page.autoText, emotion: page.emotion,
      fullSize: page.fullSize, profile: page.profile } : null,
    counts: await store.counts(),
  };
}

const handlers = {
  "site.config": async ({ url }) => {
    const settings = await store.settings();
    const cap = connection.state.hello?.capabilities?.["protect.text"];
    return { ...pageConfig(url, settings), protections: settings.protections,
      text: cap ? { available: cap.available, reason: cap.reason ?? null } : null };
  },
  "popup.state": ({ url }) => popupState(url),
  "settings.level": async ({ level }) => {
    const s = await store.updateSettings({ level: normalizeLevel(level) });
    await pushLevel(s.level);
    return { level: s.level };
  },
  "site.set": async ({ siteId, enabled, autoText, emotion, fullSize }) => {
    const s = await store.settings();
    const cur = s.sites[siteId] ?? {};
    const next = { ...cur };
    if (enabled !== undefined) next.enabled = Boolean(enabled);
    if (autoText !== undefined) next.autoText = Boolean(autoText);
    if (emotion !== undefined) next.emotion = Boolean(emotion);
    if (fullSize !== undefined) next.fullSize = Boolean(fullSize);
    await store.updateSettings({ sites: { ...s.sites, [siteId]: next } });
    return { ok: true };
  },
  "sites.sync": async () => {
    await syncRegistrations();
    return { ok: true };
  },
  "protect.text": ({ text }) => protectText(String(text ?? "")),
  // "Protect me": the user's reference photos live in the daemon (only their embeddings are kept there).
  "me.list": () => meRequest("me.list", {}),
  "me.add": ({ data, mime }) => meAdd(data, mime),
  "me.forget": ({ id, all }) => meRequest("me.forget", all ? { all: true } : { id: String(id ?? "") }),
  "settings.onlyMe": ({ onlyMe }) => meRequest("settings", { only_me: Boolean(onlyMe) }),
  "connection.state": async ({ connect }) => {
    if (connect) await connection.ensure().catch(() => {});
    return summarize(connection.state);
  },
  "options.open": async () => {
    await api.runtime.openOptionsPage();
    return { ok: true };
  },
  "connection.reset": async () => {
    connection.reset();
    await connection.ensure().catch(() => {});
    return summarize(connection.state);
  },
};

api.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  const handler = handlers[msg?.type];
  if (!handler) return false;
  Promise.resolve()
    .then(() => handler(msg, sender))
    .then(sendResponse, (e) => sendResponse({ ok: false, error: errorPayload(e) }));
  return true; // answered asynchronously
});

api.storage.onChanged.addListener((changes, area) => {
  if (area !== "local") return;
  if (changes.token) connection.reset();
  if (changes.settings) {
    const before = changes.settings.oldValue ?? {};
    const after = changes.settings.newValue ?? {};
    if (before.port !== after.port) connection.reset();
    if (JSON.stringify(before.custom ?? {}) !== JSON.stringify(after.custom ?? {})) syncRegistrations().catch(() => {});
  }
});

api.permissions?.onRemoved?.addListener(() => syncRegistrations().catch(() => {}));

api.commands?.onCommand.addListener(async (command, tab) => {
  if (command !== "protect-text") return;
  const target = tab ?? (await api.tabs.query({ active: true, currentWindow: true }))[0];
  if (target?.id !== undefined) api.tabs.sendMessage(target.id, { type: "composer.protect" }).catch(() => {});
});

api.runtime.onInstalled.addListener((details) => {
  syncRegistrations().catch(() => {});
  // first install: show the options page, where the user pairs the browser with the daemon
  if (details?.reason === "install") api.runtime.openOptionsPage().catch(() => {});
});

// For tests and debugging from the worker's console.
globalThis.ally = { connection, store, syncRegistrations, localError };
