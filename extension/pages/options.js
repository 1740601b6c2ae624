// Options: pairing, protections, the site list.
import { bytesToBase64 } from "../src/b64.js";
import { pairWithDaemon } from "../src/pairing.js";
import { createStore } from "../src/settings.js";
import { allSites, parseSiteInput, profileForHost, siteState } from "../src/sites.js";

const api = globalThis.browser ?? globalThis.chrome;
const store = createStore(api.storage.local);
const $ = (id) => document.getElementById(id);
const CLIENT = { name: "ally-extension", version: api.runtime.getManifest().version };
const CONNECTION_REFRESH_MS = 3000;
const STATUS_TEXT = { ready: "Connected and paired", down: "Daemon not running", unpaired: "Not paired",
  connecting: "Connecting…", reconnecting: "Reconnecting…", idle: "Not connected", incompatible: "Daemon version not supported" };

async function renderConnection() {
  const c = await api.runtime.sendMessage({ type: "connection.state", connect: true });
  $("conn").dataset.status = c.status;
  $("conn").textContent = STATUS_TEXT[c.status] ?? c.status;
  $("conn-detail").textContent = c.daemon ? `daemon ${c.daemon.version}` : (c.reason ?? "");
}

async function renderSettings() {
  const s = await store.settings();
  $("port").value = s.port;
  $("prot-face").checked = s.protections.face;
  $("prot-metadata").checked = s.protections.metadata;
  $("prot-emotion").checked = s.protections.emotion;
  $("prot-text").checked = s.protections.text;
  $("prot-immunize").checked = false;
  const tbody = $("sites");
  tbody.textContent = "";
  for (const site of allSites(s)) {
    const st = siteState(s, site.id);
    const tr = document.createElement("tr");
    tr.dataset.site = site.id;
    tr.innerHTML = `<td></td><td><input type="checkbox" data-field="enabled"></td>
      <td><input type="checkbox" data-field="emotion"></td><td><input type="checkbox" data-field="autoText"></td>
      <td><input type="checkbox" data-field="fullSize"></td><td></td>`;
    tr.cells[0].textContent = site.name;
    tr.querySelector("[data-field=enabled]").checked = st.enabled;
    tr.querySelector("[data-field=autoText]").checked = st.autoText;
    tr.querySelector("[data-field=emotion]").checked = st.emotion;
    const fullSize = tr.querySelector("[data-field=fullSize]");
    fullSize.checked = st.fullSize;
    const profile = site.hosts.map(profileForHost).find(Boolean);
    fullSize.disabled = !profile; // a site whose served size Ally does not know is never resized
    fullSize.title = profile ? `${profile.label} serves photos at ${servedText(profile)}`
      : "Ally does not know what size this site serves";
    for (const box of tr.querySelectorAll("input")) {
      box.addEventListener("change", () =>
        api.runtime.sendMessage({ type: "site.set", siteId: site.id, [box.dataset.field]: box.checked }));
    }
    if (site.custom) {
      const rm = document.createElement("button");
      rm.textContent = "Remove";
      rm.dataset.action = "remove";
      rm.addEventListener("click", () => removeSite(site));
      tr.cells[5].appendChild(rm);
    }
    tbody.appendChild(tr);
  }
}

function servedText(p) {
  if (p.maxWidth && p.longEdge) return `up to ${p.maxWidth} px wide, ${p.longEdge} px tall`;
  if (p.longEdge) return `up to ${p.longEdge} px`;
  if (p.maxPixels) return `up to ${(p.maxPixels / 1e6).toFixed(1)} megapixels`;
  return "the size uploaded";
}

// -- "Protect me" ------------------------------------------------------------------------------------------

function meMessage(text, kind = "muted") {
  $("me-msg").className = kind;
  $("me-msg").textContent = text;
}

function errorText(error) {
  return error?.message ?? "the daemon did not answer";
}

async function renderMe() {
  const reply = await api.runtime.sendMessage({ type: "me.list" });
  const tbody = $("me-list");
  tbody.textContent = "";
  if (!reply?.ok) {
    meMessage(`Your photos cannot be listed: ${errorText(reply?.error)}`, "error");
    return;
  }
  const { references, only_me: onlyMe } = reply.result;
  $("me-only").checked = onlyMe;
  for (const ref of references) {
    const tr = document.createElement("tr");
    tr.dataset.ref = ref.id;
    tr.innerHTML = "<td></td><td></td><td></td>";
    tr.cells[0].textContent = new Date(ref.added).toLocaleString();
    tr.cells[1].textContent = ref.note;
    const forget = document.createElement("button");
    forget.textContent = "Forget";
    forget.addEventListener("click", async () => {
      const r = await api.runtime.sendMessage({ type: "me.forget", id: ref.id });
      meMessage(r?.ok ? "Forgotten." : `Not forgotten: ${errorText(r?.error)}`, r?.ok ? "ok" : "error");
      renderMe();
    });
    tr.cells[2].appendChild(forget);
    tbody.appendChild(tr);
  }
  $("me-forget-all").disabled = references.length === 0;
  if (!references.length && !$("me-msg").textContent) meMessage("No photos of you yet.");
}

async function addMe(files) {
  let added = 0;
  for (const file of files) {
    meMessage(`Reading ${file.name}…`);
    const data = bytesToBase64(new Uint8Array(await file.arrayBuffer()));
    const r = await api.runtime.sendMessage({ type: "me.add", data, mime: file.type });
    if (r?.ok) added += 1;
    else {
      meMessage(`${file.name}: ${errorText(r?.error)}`, "error");
      await renderMe();
      return;
    }
  }
  meMessage(`Added ${added} photo${added === 1 ? "" : "s"}; only the numbers describing your face were kept.`, "ok");
  renderMe();
}

async function addSite() {
  const msg = $("site-msg");
  let parsed;
  try {
    parsed = parseSiteInput($("site-add-input").value);
  } catch (e) {
    msg.className = "error";
    msg.textContent = e.message;
    return;
  }
  // Must be called from the click (a user gesture); the browser asks the user.
  const granted = await api.permissions.request({ origins: parsed.patterns }).catch(() => false);
  if (!granted) {
    msg.className = "error";
    msg.textContent = `Permission for ${parsed.host} was not granted; the site was not added.`;
    return;
  }
  const s = await store.settings();
  await store.updateSettings({ custom: { ...s.custom, [parsed.host]: { patterns: parsed.patterns } } });
  await api.runtime.sendMessage({ type: "sites.sync" });
  msg.className = "ok";
  msg.textContent = `Added ${parsed.host}. Reload its open tabs.`;
  $("site-add-input").value = "";
  renderSettings();
}

async function removeSite(site) {
  const s = await store.settings();
  const custom = { ...s.custom };
  delete custom[site.id];
  const sites = { ...s.sites };
  delete sites[site.id];
  await store.updateSettings({ custom, sites });
  await api.permissions.remove({ origins: site.patterns }).catch(() => false);
  await api.runtime.sendMessage({ type: "sites.sync" });
  renderSettings();
}

async function startPairing() {
  const result = $("pair-result");
  result.className = "";
  result.textContent = "";
  $("pair-start").disabled = true;
  let ttlTimer = null;
  try {
    const { port } = await store.settings();
    const { token } = await pairWithDaemon({
      port, client: CLIENT, name: `Ally for ${navigator.userAgent.includes("Firefox") ? "Firefox" : "Chromium"}`,
      onCode: ({ code, expires_in_s }) => {
        $("pair-code").textContent = code;
        $("pair-idle").hidden = true;
        $("pair-wait").hidden = false;
        let left = Math.round(expires_in_s);
        $("pair-ttl").textContent = left;
        ttlTimer = setInterval(() => { $("pair-ttl").textContent = Math.max(0, --left); }, 1000);
      },
    });
    await store.setToken(token);
    result.className = "ok";
    result.textContent = "Paired. Photos on protected sites are now protected before upload.";
  } catch (e) {
    result.className = "error";
    result.textContent = e.errorName === "daemon_down"
      ? "The daemon is not running. Start it with `ally serve` and try again."
      : `Pairing failed: ${e.message}`;
  } finally {
    clearInterval(ttlTimer);
    $("pair-idle").hidden = false;
    $("pair-wait").hidden = true;
    $("pair-start").disabled = false;
    setTimeout(renderConnection, 300);
  }
}

$("pair-start").addEventListener("click", startPairing);
$("pair-forget").addEventListener("click", async () => { await store.setToken(null); setTimeout(renderConnection, 200); });
$("token-save").addEventListener("click", async () => {
  const t = $("token").value.trim();
  if (t) await store.setToken(t);
  $("token").value = "";
  setTimeout(renderConnection, 300);
});
$("port").addEventListener("change", async (e) => {
  const port = Number(e.target.value);
  if (Number.isInteger(port) && port >= 1024 && port <= 65535) {
    await store.updateSettings({ port });
    setTimeout(renderConnection, 300); // the worker reconnects on the new port
  }
});
for (const key of ["face", "emotion", "metadata", "text"]) {
  $(`prot-${key}`).addEventListener("change", async (e) => {
    const s = await store.settings();
    await store.updateSettings({ protections: { ...s.protections, [key]: e.target.checked } });
  });
}
$("site-add").addEventListener("click", addSite);
$("me-add").addEventListener("click", () => $("me-file").click());
$("me-file").addEventListener("change", (e) => {
  const files = [...e.target.files];
  e.target.value = "";
  addMe(files);
});
$("me-forget-all").addEventListener("click", async () => {
  const r = await api.runtime.sendMessage({ type: "me.forget", all: true });
  meMessage(r?.ok ? "All your photos' descriptions were forgotten." : `Not forgotten: ${errorText(r?.error)}`,
    r?.ok ? "ok" : "error");
  renderMe();
});
$("me-only").addEventListener("change", async (e) => {
  const r = await api.runtime.sendMessage({ type: "settings.onlyMe", onlyMe: e.target.checked });
  if (!r?.ok) {
    e.target.checked = !e.target.checked;
    meMessage(`Not saved: ${errorText(r?.error)}`, "error");
  }
});
$("origin").textContent = location.origin;
api.storage.onChanged.addListener((changes, area) => { if (area === "local" && changes.settings) renderSettings(); });

renderSettings();
renderMe().catch(() => {});
renderConnection().finally(() => { document.body.dataset.ready = "1"; });
// the daemon may be started, stopped or paired from the command line while this page is open
setInterval(() => renderConnection().catch(() => {}), CONNECTION_REFRESH_MS);
