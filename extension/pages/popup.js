// The toolbar popup: daemon state, this site's switches (protection, facial expressions), the level, counts.
const api = globalThis.browser ?? globalThis.chrome;
const $ = (id) => document.getElementById(id);

export const STATUS_TEXT = {
  ready: "Connected", connecting: "Connecting…", reconnecting: "Reconnecting…", idle: "Not connected",
  down: "Daemon not running", unpaired: "Not paired", incompatible: "Daemon version not supported",
};

async function activeUrl() {
  const forced = new URLSearchParams(location.search).get("url"); // tests, and "open in a tab"
  if (forced) return forced;
  const [tab] = await api.tabs.query({ active: true, currentWindow: true }).catch(() => []);
  return tab?.url ?? "";
}

async function render() {
  const url = await activeUrl();
  const s = await api.runtime.sendMessage({ type: "popup.state", url });
  const c = s.connection;
  $("state").dataset.status = c.status;
  $("state").textContent = STATUS_TEXT[c.status] ?? c.status;
  $("version").textContent = c.daemon ? `daemon ${c.daemon.version}` : "";
  $("device").textContent = c.device ? `Computing on ${c.device}${c.models ? ` · models ${c.models}` : ""}` : "";
  const text = c.capabilities?.["protect.text"];
  $("text-cap").textContent = text && !text.available ? `Text protection unavailable: ${text.reason}` : "";
  $("reason").hidden = !c.reason || c.status === "ready";
  $("reason").textContent = c.reason ?? "";
  $("level").value = s.level;
  const toggle = $("site-toggle");
  if (s.site) {
    $("site-label").textContent = `Protect on ${s.site.name}`;
    toggle.disabled = false;
    toggle.checked = s.site.enabled;
    toggle.dataset.site = s.site.id;
    $("site-note").textContent = "";
    $("site-emotion").disabled = false;
    $("site-emotion").checked = s.site.emotion;
    $("site-emotion").dataset.site = s.site.id;
    $("site-fullsize").disabled = !s.site.profile;
    $("site-fullsize").checked = s.site.fullSize;
    $("site-fullsize").dataset.site = s.site.id;
    $("fullsize-note").textContent = !s.site.profile ? "Ally does not know what size this site serves."
      : s.site.fullSize ? "Photos keep their size; the site will shrink them, and the protection with them."
        : "Photos are protected at the size this site shows them (stronger protection).";
  } else {
    $("site-label").textContent = "This site";
    toggle.disabled = true;
    toggle.checked = false;
    $("site-note").textContent = "Not a protected site. Add it in Settings.";
    $("site-emotion").disabled = true;
    $("site-emotion").checked = false;
    $("site-fullsize").disabled = true;
    $("site-fullsize").checked = false;
    $("fullsize-note").textContent = "";
  }
  $("count-images").textContent = s.counts.images;
  $("count-faces").textContent = s.counts.faces;
  $("count-texts").textContent = s.counts.texts;
  document.body.dataset.ready = "1";
}

$("level").addEventListener("change", async (e) => {
  await api.runtime.sendMessage({ type: "settings.level", level: e.target.value });
  document.body.dataset.levelSaved = e.target.value;
});
$("site-toggle").addEventListener("change", async (e) => {
  await api.runtime.sendMessage({ type: "site.set", siteId: e.target.dataset.site, enabled: e.target.checked });
  document.body.dataset.siteSaved = String(e.target.checked);
});
$("site-emotion").addEventListener("change", async (e) => {
  await api.runtime.sendMessage({ type: "site.set", siteId: e.target.dataset.site, emotion: e.target.checked });
  document.body.dataset.emotionSaved = String(e.target.checked);
});
$("site-fullsize").addEventListener("change", async (e) => {
  await api.runtime.sendMessage({ type: "site.set", siteId: e.target.dataset.site, fullSize: e.target.checked });
  document.body.dataset.fullSizeSaved = String(e.target.checked);
  render();
});
render();
