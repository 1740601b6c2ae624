// Text: a "Protect text" button by the focused composer (textarea or contenteditable), the keyboard command,
// and, where the site's automatic mode is on, a review of the text before the form is submitted.
(() => {
  const ally = (globalThis.__ally ??= {});
  if (ally.startComposer) return;
  const api = globalThis.browser ?? globalThis.chrome;
  const reviewed = new WeakMap(); // composer -> the text the user last reviewed
  let current = null; // the focused composer
  let button = null; // {host, root, btn}

  function composerOf(el) {
    if (!(el instanceof Element)) return null;
    if (el instanceof HTMLTextAreaElement) return el.readOnly || el.disabled ? null : el;
    if (el.isContentEditable) {
      let root = el;
      while (root.parentElement?.isContentEditable) root = root.parentElement;
      return root;
    }
    return null;
  }
  ally.composerOf = composerOf;

  const readText = (el) => (el instanceof HTMLTextAreaElement ? el.value : el.innerText.replace(/\n$/, ""));
  const norm = (s) => s.replace(/\s+/g, " ").trim();

  function textOn() {
    const c = ally.config;
    return !c || (c.enabled && c.protections?.text !== false);
  }

  /** Put ``text`` into the composer the way the site's framework notices; read back; else the clipboard. */
  async function applyText(el, text) {
    el.focus();
    if (el instanceof HTMLTextAreaElement) {
      const setter = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, "value").set;
      setter.call(el, text);
      el.dispatchEvent(new InputEvent("input", { bubbles: true, inputType: "insertReplacementText", data: text }));
    } else {
      const sel = window.getSelection();
      const range = document.createRange();
      range.selectNodeContents(el);
      sel.removeAllRanges();
      sel.addRange(range);
      document.execCommand("insertText", false, text);
    }
    await new Promise((r) => setTimeout(r, 50)); // let the framework re-render
    if (norm(readText(el)) === norm(text)) return { applied: true };
    try {
      await navigator.clipboard.writeText(text);
      return { applied: false, copied: true };
    } catch {
      return { applied: false, copied: false };
    }
  }
  ally.applyText = applyText;

  /** Ask the daemon for a rewrite of the composer's text; show the diff; apply on accept. */
  async function protectComposer(el, { onDone } = {}) {
    const done = (how) => { reviewed.set(el, readText(el)); onDone?.(how); };
    const text = readText(el);
    if (!text.trim()) { onDone?.("empty"); return; }
    const overlay = new ally.Overlay(el, "text");
    overlay.set({ state: "working", title: "Ally is protecting your text", message: "Looking for words that give away who wrote it…",
      progress: false });
    overlay.buttons([{ label: "Cancel", action: "cancel", onClick: () => overlay.close() }]);
    let r;
    try {
      r = await api.runtime.sendMessage({ type: "protect.text", text });
    } catch (e) {
      r = { ok: false, error: { message: String(e?.message ?? e) } };
    }
    if (!r?.ok) {
      const unavailable = r?.unavailable;
      overlay.set({ state: "error", title: unavailable ? "Text protection unavailable" : "Text not protected",
        message: r?.error?.message ?? "Ally could not protect this text." });
      overlay.buttons([{ label: onDone ? "Post anyway" : "OK", action: "dismiss", kind: "primary",
        onClick: () => { overlay.close(); done("unprotected"); } }]);
      return;
    }
    if (!r.changed) {
      overlay.set({ state: "done", title: "No change suggested", message: "Ally found nothing to rewrite in this text." });
      overlay.report(r.report);
      overlay.buttons([{ label: "OK", action: "dismiss", kind: "primary", onClick: () => { overlay.close(); done("unchanged"); } }]);
      return;
    }
    const shows = r.report && (!r.report.goal_reached || r.report.left?.length
      || r.report.reader?.some((x) => x.still_shows));
    overlay.set({ state: "review", title: shows ? "Suggested rewrite \u2014 some things still show" : "Suggested rewrite",
      message: `${r.changed} change${r.changed > 1 ? "s" : ""}: removed words are struck out, new ones highlighted.` });
    overlay.diff(r.ops);
    overlay.report(r.report);
    overlay.buttons([
      { label: "Keep mine", action: "reject", onClick: () => { overlay.close(); done("rejected"); } },
      { label: "Apply", action: "apply", kind: "primary", onClick: async () => {
        const a = await applyText(el, r.text);
        if (a.applied) { overlay.close(); done("applied"); return; }
        overlay.set({ state: "error", title: "Could not edit this composer",
          message: a.copied ? "The protected text is on the clipboard: select your text and paste (Ctrl+V) to replace it."
            : "Copy the protected text from above and paste it in place of yours." });
        overlay.buttons([{ label: "OK", action: "dismiss", onClick: () => { overlay.close(); done("copied"); } }]);
      } },
    ]);
  }
  ally.protectComposer = protectComposer;

  // -- the small button next to the focused composer -------------------------------------------------------
  function ensureButton() {
    if (button?.host.isConnected) return button;
    const host = document.createElement("ally-text-button");
    const root = host.attachShadow({ mode: "open" });
    root.innerHTML = `<style>
      :host { all: initial; }
      button { position: fixed; z-index: 2147483646; font: 12px/1 system-ui, sans-serif; padding: 5px 9px; border-radius: 999px;
        border: 1px solid #2563eb; background: #eff6ff; color: #1d4ed8; cursor: pointer; box-shadow: 0 2px 6px rgba(0,0,0,.12); }
      button[data-unavailable] { border-color: #94a3b8; background: #f1f5f9; color: #475569; }
    </style><button type="button" data-action="protect-text" title="Protect before posting (Alt+Shift+P)">Protect text</button>`;
    const btn = root.querySelector("button");
    btn.addEventListener("mousedown", (e) => e.preventDefault()); // keep the composer focused
    btn.addEventListener("click", (e) => {
      e.preventDefault();
      e.stopPropagation();
      if (current) protectComposer(current);
    });
    (document.body ?? document.documentElement).appendChild(host);
    button = { host, root, btn };
    return button;
  }

  function placeButton() {
    if (!button || !current) return;
    const r = current.getBoundingClientRect();
    button.btn.style.left = `${Math.max(4, r.right - 110)}px`;
    button.btn.style.top = `${Math.max(4, r.bottom + 4)}px`;
  }

  async function showButton(el) {
    current = el;
    const b = ensureButton();
    b.host.hidden = false;
    placeButton();
    const state = await api.runtime.sendMessage({ type: "connection.state", connect: true }).catch(() => null);
    const cap = state?.capabilities?.["protect.text"];
    if (cap && cap.available === false) {
      b.btn.dataset.unavailable = "";
      b.btn.textContent = "Protect text (unavailable)";
      b.btn.title = `Text protection is not available in this daemon: ${cap.reason}`;
    } else {
      delete b.btn.dataset.unavailable;
      b.btn.textContent = "Protect text";
      b.btn.title = "Protect before posting (Alt+Shift+P)";
    }
  }

  function onFocusIn(e) {
    const el = composerOf(e.target);
    if (!el || !textOn()) return;
    showButton(el);
  }

  function onFocusOut() {
    setTimeout(() => {
      const active = composerOf(document.activeElement);
      if (!active && button) { button.host.hidden = true; current = null; }
    }, 150);
  }

  // -- automatic mode: review before the post goes out ----------------------------------------------------
  function needsReview(el) {
    return el && ally.config?.enabled && ally.config?.autoText && textOn() && readText(el).trim()
      && reviewed.get(el) !== readText(el);
  }

  function onSubmit(e) {
    if (ally.dispatching) return;
    const form = e.target;
    if (!(form instanceof HTMLFormElement)) return;
    const el = [...form.querySelectorAll("textarea, [contenteditable]")].map(composerOf).find(needsReview);
    if (!el) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    const submitter = e.submitter ?? null;
    protectComposer(el, { onDone: () => form.requestSubmit(submitter && form.contains(submitter) ? submitter : undefined) });
  }

  function onKeyDown(e) {
    if (e.key !== "Enter" || !(e.ctrlKey || e.metaKey)) return;
    const el = composerOf(e.target);
    if (!needsReview(el)) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    protectComposer(el, { onDone: () => {} }); // then the user posts again (a synthetic key would not count)
  }

  ally.startComposer = () => {
    document.addEventListener("focusin", onFocusIn, true);
    document.addEventListener("focusout", onFocusOut, true);
    window.addEventListener("scroll", placeButton, true);
    window.addEventListener("submit", onSubmit, true);
    window.addEventListener("keydown", onKeyDown, true);
    api.runtime.onMessage.addListener((msg) => {
      if (msg?.type !== "composer.protect") return;
      const el = composerOf(document.activeElement) ?? current;
      if (el) protectComposer(el);
    });
  };
})();
