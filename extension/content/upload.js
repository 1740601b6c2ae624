// Protect intercepted image files through the service worker, then hand the protected files to the page.
(() => {
  const ally = (globalThis.__ally ??= {});
  if (ally.handleUpload) return;
  const api = globalThis.browser ?? globalThis.chrome;

  const IMAGE_RE = /^image\/(?!svg)/i;
  const EXT_RE = /\.(jpe?g|png|webp|gif|bmp|tiff?|heic|heif|avif)$/i;
  ally.isImage = (file) => IMAGE_RE.test(file.type) || (!file.type && EXT_RE.test(file.name));

  function toBase64(buffer) {
    const u8 = new Uint8Array(buffer);
    let s = "";
    for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
    return btoa(s);
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
  async function protectFile(file, { onProgress, onPort }) {
    const data = toBase64(await file.arrayBuffer());
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
      port.postMessage({ type: "image", name: file.name, mime: file.type, data, url: location.href });
    });
  }

  /** Hand ``files`` to the page as the original event would have (marked so that boot.js lets it through). */
  function deliver(kind, target, files, init = {}) {
    const dt = new DataTransfer();
    for (const f of files) dt.items.add(f);
    ally.dispatching = true;
    try {
      if (kind === "input") {
        target.files = dt.files;
        target.dispatchEvent(new Event("input", { bubbles: true, composed: true }));
        target.dispatchEvent(new Event("change", { bubbles: true }));
      } else if (kind === "drop") {
        target.dispatchEvent(new DragEvent("drop", { bubbles: true, cancelable: true, composed: true, dataTransfer: dt,
          clientX: init.clientX ?? 0, clientY: init.clientY ?? 0 }));
      } else if (kind === "paste") {
        target.dispatchEvent(new ClipboardEvent("paste", { bubbles: true, cancelable: true, composed: true, clipboardData: dt }));
      }
    } finally {
      ally.dispatching = false;
    }
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
    const summary = { faces: 0, cloaked: 0, protected: 0 };
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
        }
      }
    } catch (e) {
      if (aborted) return;
      const error = e.error ?? { message: String(e?.message ?? e) };
      overlay.set({ state: "error", title: "Upload blocked", message: reasonText(error), progress: false });
      overlay.buttons([
        { label: "Upload original anyway", kind: "danger", action: "original", onClick: () => { finish(); deliver(kind, target, files, init); } },
        { label: "Cancel", kind: "primary", action: "cancel", onClick: () => { if (kind === "input") target.value = ""; finish(); } },
      ]);
      return;
    }
    deliver(kind, target, out, init);
    const faces = summary.cloaked ? `${summary.cloaked} face${summary.cloaked > 1 ? "s" : ""} cloaked` : "no face found";
    overlay.set({ state: "done", title: "Photo protected", fraction: 1, stage: "",
      message: summary.protected ? `${faces}; metadata removed.` : "Protection is off for this site: uploaded unchanged.", progress: false });
    overlay.buttons([{ label: "OK", action: "ok", onClick: finish }]);
    overlay.close(4000);
  };
})();
