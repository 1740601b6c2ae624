// Protect intercepted image files through the service worker, then hand the protected files to the page.
(() => {
  const ally = (globalThis.__ally ??= {});
  if (ally.handleUpload) return;
  const api = globalThis.browser ?? globalThis.chrome;

  const IMAGE_RE = /^image\/(?!svg)/i;
  const EXT_RE = /\.(jpe?g|png|webp|gif|bmp|tiff?|heic|heif|avif)$/i;
  ally.isImage = (file) => IMAGE_RE.test(file.type) || (!file.type && EXT_RE.test(file.name));

  /**
   * A file's bytes as base64, read by a FileReader (its result is a string). Not file.arrayBuffer() and typed
   * arrays: in Firefox a File the page made (a site's own DataTransfer) gives buffers of the page's compartment,
   * and a content script that touches them through typed arrays gets "Permission denied to access property
   * constructor".
   */
  function fileToBase64(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).slice(String(reader.result).indexOf(",") + 1));
      reader.onerror = () => reject(new Error(`could not read ${file.name}: ${reader.error?.message ?? "read error"}`));
      reader.readAsDataURL(file);
    });
  }

  function fromBase64(b64) {
    const s = atob(b64);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  class UploadError extends Error {
    constructor(error) {
      super(error?.message ?? "protection failed");
      this.error = error ?? {};
    }
  }

  /** One file through the daemon; resolves {file, result} or {file: original, passthrough}. */
  async function protectFile(file, { onProgress, onPort, level }) {
    const data = await fileToBase64(file);
    return new Promise((resolve, reject) => {
      const port = api.runtime.connect({ name: "ally.protect" });
      onPort(port);
      let settled = false;
      port.onMessage.addListener((msg) => {
        if (msg.type === "progress") onProgress(msg);
        else if (msg.type === "passthrough") { settled = true; resolve({ file, passthrough: true }); port.disconnect(); }
        else if (msg.type === "done") {
          settled = true;
          const mime = msg.result.image?.type || file.type;
          let name = file.name;
          if (mime !== file.type && file.type) {
            const ext = mime.split("/")[1]?.replace("jpeg", "jpg");
            if (ext) name = name.replace(/\.[^.]*$/, "") + "." + ext;
          }
          const out = new File([fromBase64(msg.data)], name, { type: file.type && mime === file.type ? file.type : mime,
            lastModified: file.lastModified });
          resolve({ file: out, result: msg.result });
          port.disconnect();
        } else if (msg.type === "error") {
          settled = true;
          reject(new UploadError(msg.error));
          port.disconnect();
        }
      });
      port.onDisconnect.addListener(() => {
        if (!settled) reject(new UploadError({ name: "connection_lost", message: "The extension's background worker stopped." }));
      });
      port.postMessage({ type: "image", name: file.name, mime: file.type, data, url: location.href, level });
    });
  }

  /** Give a file input its new files and re-dispatch input + change, marked so that boot.js lets them through. */
  function deliverToInput(target, files) {
    const dt = new DataTransfer();
    for (const f of files) dt.items.add(f);
    ally.dispatching = true;
    try {
      target.files = dt.files;
      target.dispatchEvent(new Event("input", { bubbles: true, composed: true }));
      target.dispatchEvent(new Event("change", { bubbles: true }));
    } finally {
      ally.dispatching = false;
    }
  }

  const DELIVERY_ACK_MS = 1500;
  const pendingDeliveries = new Map(); // nonce -> {timer (no answer from main-world.js), onUndeliverable}
  ally.deliveries = new Set(); // nonces of drops/pastes main-world.js dispatches for us (boot.js lets them pass)
  window.addEventListener("message", (ev) => {
    const d = ev.source === window ? ev.data?.[ally.MESSAGE_KEY] : undefined;
    const pending = pendingDeliveries.get(d?.nonce);
    if (!pending || (d.type !== "delivered" && d.type !== "undeliverable")) return;
    clearTimeout(pending.timer);
    pendingDeliveries.delete(d.nonce);
    ally.deliveries.delete(d.nonce);
    if (d.type === "undeliverable") pending.onUndeliverable("This browser does not let an extension hand a pasted photo to the page.");
  });

  /** Save a file through the browser's downloads (an anchor with a blob URL). */
  function save(file) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(file);
    a.download = file.name;
    a.style.display = "none";
    (document.body ?? document.documentElement).appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
  }

  /**
   * The page could not be given the files (Firefox cannot put files into a synthetic paste event): say so and
   * let the user save them, to add with the site's upload button. Nothing is lost, nothing goes up silently.
   */
  function showUndeliverable(anchor, files, isProtected, reason) {
    const o = new ally.Overlay(anchor?.getBoundingClientRect ? anchor : null, "upload");
    o.set({ state: "error", title: "The photo was not added", progress: false,
      message: `${reason} Save the ${isProtected ? "protected " : ""}photo and add it with the site's upload button.` });
    o.buttons([
      { label: isProtected ? "Save protected photo" : "Save photo", kind: "primary", action: "save",
        onClick: () => { for (const f of files) save(f); o.close(); } },
      { label: "Close", action: "cancel", onClick: () => o.close() },
    ]);
  }

  /**
   * Hand ``files`` to the page as the original event would have. A file input takes them here. A drop or paste
   * needs a DataTransfer the page may read: Firefox hides from the page the files of one a content script filled
   * (its items carry the extension's principal), so main-world.js builds the event from the posted files. If it
   * cannot, or does not answer (not injected), the user is told and may save the file: a dispatch from here could
   * reach a Firefox page empty, and a protected photo must never vanish silently.
   */
  function deliver(kind, target, files, init = {}, isProtected = true) {
    if (kind === "input") return deliverToInput(target, files);
    // not crypto.randomUUID(): it needs a secure context, and user-added sites may be plain http
    const nonce = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    ally.deliveries.add(nonce);
    target.setAttribute(ally.TARGET_ATTR, nonce);
    const onUndeliverable = (reason) => showUndeliverable(target, files, isProtected, reason);
    const timer = setTimeout(() => {
      pendingDeliveries.delete(nonce);
      ally.deliveries.delete(nonce);
      if (target.getAttribute(ally.TARGET_ATTR) === nonce) target.removeAttribute(ally.TARGET_ATTR);
      onUndeliverable("Ally could not hand the photo to the page.");
    }, DELIVERY_ACK_MS);
    pendingDeliveries.set(nonce, { timer, onUndeliverable });
    const point = { clientX: init.clientX ?? 0, clientY: init.clientY ?? 0 };
    window.postMessage({ [ally.MESSAGE_KEY]: { type: "deliver", nonce, kind, files, init: point } }, "*");
  }
  ally.deliver = deliver;

  function reasonText(error) {
    const name = error?.name;
    if (name === "daemon_down") return "The Ally daemon is not running, so this photo could not be protected.\nStart it with `ally serve`.";
    if (name === "not_paired") return "This browser is not paired with the Ally daemon, so this photo could not be protected.\nPair it in the extension's options.";
    return `Ally could not protect this photo: ${error?.message ?? "unknown error"}` + (error?.code ? ` (${error.name}, ${error.code})` : "");
  }

  /**
   * Protect the images among ``files`` (others pass untouched), then deliver. On failure, block and ask:
   * "Upload original anyway" or "Cancel". Never uploads the original silently.
   */
  ally.handleUpload = async ({ kind, target, files, init }) => {
    const images = files.filter(ally.isImage);
    const anchor = kind === "input" && !target.isConnected ? document.activeElement : target;
    const overlay = new ally.Overlay(anchor?.getBoundingClientRect ? anchor : null, "upload");
    let port = null;
    let aborted = false;
    const finish = () => overlay.close();
    overlay.set({ state: "working", title: "Ally is protecting your photo",
      message: images.length > 1 ? `Protecting ${images.length} photos before they are uploaded…` : `Protecting ${images[0].name} before it is uploaded…`,
      stage: "", fraction: 0, progress: true });
    overlay.buttons([{ label: "Cancel", action: "cancel", onClick: () => {
      aborted = true;
      port?.disconnect();
      if (kind === "input") target.value = "";
      finish();
    } }]);
    const out = [];
    const summary = { faces: 0, cloaked: 0, protected: 0, receipt: [], expressions: [], protect: [], level: null,
      first: null };
    try {
      let index = 0;
      for (const file of files) {
        if (!ally.isImage(file)) { out.push(file); continue; }
        const i = index++;
        const r = await protectFile(file, {
          onPort: (p) => { port = p; },
          onProgress: (p) => overlay.set({ stage: p.stage ?? "", fraction: (i + (p.fraction ?? 0)) / images.length }),
        });
        if (aborted) return;
        out.push(r.file);
        if (r.result) {
          summary.protected += 1;
          summary.faces += r.result.faces ?? 0;
          if (r.result.cloaked) summary.cloaked += r.result.faces ?? 0;
          summary.receipt.push(...(r.result.receipt ?? []));
          summary.expressions.push(...(r.result.expression_receipt ?? []));
          summary.protect = r.result.protect ?? summary.protect;
          summary.level = r.result.level;
          summary.first ??= { before: file, after: r.file };
        }
      }
    } catch (e) {
      if (aborted) return;
      const error = e.error ?? { message: String(e?.message ?? e) };
      overlay.set({ state: "error", title: "Upload blocked", message: reasonText(error), progress: false });
      const buttons = [
        { label: "Upload original anyway", kind: "danger", action: "original", onClick: () => { finish(); deliver(kind, target, files, init, false); } },
        { label: "Cancel", kind: "primary", action: "cancel", onClick: () => { if (kind === "input") target.value = ""; finish(); } },
      ];
      // not paired: the way out is the options page (the upload stays blocked; the user retries after pairing)
      if (error.name === "not_paired") {
        buttons.unshift({ label: "Pair now…", action: "pair", onClick: () => api.runtime.sendMessage({ type: "options.open" }).catch(() => {}) });
      }
      overlay.buttons(buttons);
      return;
    }
    deliver(kind, target, out, init);
    const plural = summary.cloaked > 1 ? "s" : "";
    // What was done, not what it achieved: the receipt lines below say whether each face's expression is hidden.
    const what = summary.protect.includes("faces") ? (summary.protect.includes("emotion") ? " (identity and expression)" : "")
      : " (expression only)";
    const faces = summary.cloaked ? `${summary.cloaked} face${plural} cloaked${what}`
      : (summary.faces ? `${summary.faces} face${summary.faces > 1 ? "s" : ""} found, pixels unchanged` : "no face found");
    const metadata = summary.protect.includes("metadata") || !summary.protect.length ? "metadata removed" : "metadata kept (not selected)";
    const matched = summary.receipt.filter((r) => r.matched).length + ally.Overlay.stillRead(summary.expressions);
    overlay.set({ state: matched ? "warn" : "done", title: matched ? "Photo protected — but not enough" : "Photo protected",
      fraction: 1, stage: "", progress: false,
      message: summary.protected ? `${faces}; ${metadata}.` : "Protection is off for this site: uploaded unchanged." });
    if (summary.first && summary.cloaked) overlay.thumbs(summary.first.before, summary.first.after);
    overlay.receipt(summary.receipt, summary.expressions);
    const harder = NEXT_LEVEL[summary.level];
    if (matched && harder) {
      // The protected photo is already with the page (better than the original). A harder one replaces it in a
      // file input; a dropped or pasted photo cannot be taken back, so the harder one is offered to save.
      overlay.buttons([
        { label: `Protect harder (${harder})`, kind: "primary", action: "harder",
          onClick: () => { finish(); protectHarder(kind, target, files, init, harder); } },
        { label: "Keep this one", action: "ok", onClick: finish },
      ]);
      return;
    }
    overlay.buttons([{ label: "OK", action: "ok", onClick: finish }]);
    if (!matched) overlay.close(4000);  // a warning stays until it is read
  };

  const NEXT_LEVEL = { low: "medium", medium: "high" };

  /** Protect the original files again at ``level``; a file input gets them, other targets a save button. */
  async function protectHarder(kind, target, files, init, level) {
    const overlay = new ally.Overlay(target?.getBoundingClientRect ? target : null, "upload");
    overlay.set({ state: "working", title: `Ally is protecting your photo harder (${level})`, message: "", progress: true, fraction: 0 });
    const out = [];
    const receipt = [];
    const expressions = [];
    try {
      for (const file of files) {
        if (!ally.isImage(file)) { out.push(file); continue; }
        const r = await protectFile(file, { level, onPort: () => {}, onProgress: (p) => overlay.set({ stage: p.stage ?? "", fraction: p.fraction ?? 0 }) });
        out.push(r.file);
        receipt.push(...(r.result?.receipt ?? []));
        expressions.push(...(r.result?.expression_receipt ?? []));
      }
    } catch (e) {
      overlay.set({ state: "error", title: "Could not protect harder", message: reasonText(e.error ?? { message: String(e) }), progress: false });
      overlay.buttons([{ label: "Close", action: "cancel", onClick: () => overlay.close() }]);
      return;
    }
    const still = receipt.filter((r) => r.matched).length + ally.Overlay.stillRead(expressions);
    overlay.set({ state: still ? "warn" : "done", title: `Photo protected at ${level}`, progress: false,
      message: kind === "input" ? "The upload now holds the harder-protected photo." : "Save it and upload it in place of the first one." });
    overlay.receipt(receipt, expressions);
    if (kind === "input") {
      deliverToInput(target, out);
      overlay.buttons([{ label: "OK", action: "ok", onClick: () => overlay.close() }]);
    } else {
      overlay.buttons([{ label: "Save protected photo", kind: "primary", action: "save", onClick: () => { for (const f of out) save(f); overlay.close(); } },
        { label: "Close", action: "cancel", onClick: () => overlay.close() }]);
    }
  }
})();
