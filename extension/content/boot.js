// Isolated world, document_start: catch file uploads (input/change/drop/paste) in the capture phase on window,
// before the page sees them; copy the files synchronously and hand them to upload.js.
(() => {
  const ally = (globalThis.__ally ??= {});
  if (ally.booted) return;
  ally.booted = true;
  const api = globalThis.browser ?? globalThis.chrome;

  ally.config = null; // {enabled, autoText, protections, text} for this page, from the service worker
  async function loadConfig() {
    try {
      ally.config = await api.runtime.sendMessage({ type: "site.config", url: location.href });
      ally.onConfig?.(ally.config);
    } catch {
      /* the worker is starting: keep the safe default (protect) */
    }
  }
  loadConfig();
  api.storage.onChanged.addListener((changes, area) => {
    if (area === "local" && changes.settings) loadConfig();
  });

  const pendingInputs = new WeakSet(); // file inputs whose selection is being protected
  // shared with main-world.js (the page world), which dispatches protected drops and pastes for us
  ally.MESSAGE_KEY = "__allyDelivery";
  ally.TARGET_ATTR = "data-ally-target";
  ally.DELIVERING_ATTR = "data-ally-delivering";

  function ourDelivery(e) {
    const nonce = e.target instanceof Element ? e.target.getAttribute(ally.DELIVERING_ATTR) : null;
    return Boolean(nonce) && ally.deliveries?.delete(nonce) === true;
  }

  function onFileEvent(e) {
    if (ally.dispatching || ourDelivery(e)) return; // our own re-dispatch
    if (ally.config && !ally.config.enabled) return; // site switched off: untouched
    let kind;
    let files;
    const target = e.target;
    if (e.type === "input" || e.type === "change") {
      if (!(target instanceof HTMLInputElement) || target.type !== "file") return;
      if (pendingInputs.has(target)) {
        // the `change` that follows the `input` we already caught
        e.stopImmediatePropagation();
        return;
      }
      kind = "input";
      files = Array.from(target.files ?? []);
    } else if (e.type === "drop") {
      // a drop onto a file input sets its files natively: deliver it as that input's selection
      kind = target instanceof HTMLInputElement && target.type === "file" ? "input" : "drop";
      files = Array.from(e.dataTransfer?.files ?? []);
    } else if (e.type === "paste") {
      kind = "paste";
      files = Array.from(e.clipboardData?.files ?? []);
    } else {
      return;
    }
    if (!files.length || !files.some((f) => ally.isImage(f))) return; // non-images pass untouched
    e.stopImmediatePropagation();
    if (e.cancelable) e.preventDefault();
    const init = { clientX: e.clientX, clientY: e.clientY };
    if (kind === "input") {
      pendingInputs.add(target);
      // Nothing may upload the original while it is protected: empty the input now.
      target.files = new DataTransfer().files;
      setTimeout(() => pendingInputs.delete(target), 0);
    }
    ally.handleUpload({ kind, target, files, init });
  }

  for (const type of ["input", "change", "drop", "paste"]) window.addEventListener(type, onFileEvent, true);
  ally.startComposer?.();
})();
