// The progress / decision overlay shown next to an upload or a composer (shadow DOM, isolated styles).
(() => {
  const ally = (globalThis.__ally ??= {});
  if (ally.Overlay) return;

  const STYLE = `
    :host { all: initial; }
    .box { position: fixed; z-index: 2147483647; width: 320px; box-sizing: border-box; padding: 12px 14px;
      max-height: calc(100vh - 16px); display: flex; flex-direction: column; overflow: hidden;
      background: #fff; color: #1f2937; border: 1px solid #cbd5e1; border-radius: 10px;
      box-shadow: 0 8px 24px rgba(15,23,42,.18); font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
    .head { display: flex; align-items: center; gap: 8px; font-weight: 600; margin-bottom: 6px; flex: none; }
    .dot { width: 10px; height: 10px; border-radius: 50%; background: #2563eb; flex: none; }
    .box[data-state=error] .dot { background: #dc2626; }
    .box[data-state=done] .dot { background: #16a34a; }
    .msg { white-space: pre-wrap; word-break: break-word; }
    /* One scroll area: the head and the buttons stay in view, everything between grows, then scrolls as one
       (no box inside it is cut off at a fixed height). */
    .content { overflow-y: auto; min-height: 0; flex: 0 1 auto; overscroll-behavior: contain; }
    .report { margin: 6px 0 0; padding-left: 18px; font-size: 12px; }
    .report li.warn { color: #92400e; }
    .bar { height: 6px; background: #e2e8f0; border-radius: 3px; margin: 8px 0 2px; overflow: hidden; }
    .fill { height: 100%; width: 0; background: #2563eb; transition: width .2s; }
    .stage { color: #64748b; font-size: 12px; }
    .buttons { display: flex; gap: 8px; justify-content: flex-end; margin-top: 10px; flex-wrap: wrap; flex: none; }
    button { font: inherit; padding: 5px 10px; border-radius: 6px; border: 1px solid #cbd5e1; background: #f8fafc;
      cursor: pointer; color: #1f2937; }
    button.primary { background: #2563eb; border-color: #2563eb; color: #fff; }
    button.danger { background: #fff; border-color: #dc2626; color: #b91c1c; }
    .diff { border: 1px solid #e2e8f0; border-radius: 6px; padding: 6px 8px;
      margin-top: 8px; background: #f8fafc; white-space: pre-wrap; word-break: break-word; }
    del { background: #fee2e2; color: #991b1b; }
    ins { background: #dcfce7; color: #166534; text-decoration: none; }
    del + ins { margin-left: 3px; }
    .thumbs { display: flex; gap: 6px; margin-top: 8px; }
    .thumbs figure { margin: 0; flex: 1; min-width: 0; text-align: center; font-size: 11px; color: #64748b; }
    .thumbs img { width: 100%; height: 96px; box-sizing: border-box; object-fit: cover; border-radius: 4px;
      border: 1px solid #e2e8f0; display: block; }
    .box[data-state=warn] .dot { background: #d97706; }
    [hidden] { display: none !important; }
  `;

  class Overlay {
    constructor(anchor, kind = "upload") {
      this.anchor = anchor;
      this.host = document.createElement("ally-overlay");
      this.host.setAttribute("data-ally-overlay", kind);
      this.root = this.host.attachShadow({ mode: "open" });
      // a static template; the style goes in by textContent (no markup is ever built from data)
      this.root.innerHTML = `
        <div class="box" part="box" data-state="working" role="status" aria-live="polite">
          <div class="head"><span class="dot"></span><span class="title">Ally</span></div>
          <div class="content" data-scroll>
            <div class="msg"></div>
            <div class="bar"><div class="fill"></div></div>
            <div class="stage"></div>
            <div class="diff" hidden></div>
            <div class="thumbs" hidden>
              <figure><img class="before" alt="original"><figcaption>original</figcaption></figure>
              <figure><img class="after" alt="what will be uploaded"><figcaption>uploaded</figcaption></figure>
            </div>
            <ul class="report" data-goal="" hidden></ul>
          </div>
          <div class="buttons"></div>
        </div>`;
      const style = document.createElement("style");
      style.textContent = STYLE;
      this.root.prepend(style);
      this.box = this.root.querySelector(".box");
      // finished overlays give way to a new one (those waiting for a decision stay)
      for (const other of Overlay.open) if (other.box.dataset.state === "done") other.close();
      Overlay.open.add(this);
      (document.body ?? document.documentElement).appendChild(this.host);
      this.place();
      this._onScroll = () => this.place();
      window.addEventListener("scroll", this._onScroll, true);
      window.addEventListener("resize", this._onScroll);
    }

    place() {
      const r = this.anchor?.isConnected ? this.anchor.getBoundingClientRect() : null;
      const visible = r && r.width > 0 && r.height > 0;
      const w = 320;
      let left = visible ? Math.min(Math.max(8, r.left), window.innerWidth - w - 8) : window.innerWidth - w - 16;
      let top = visible ? r.bottom + 8 : 16;
      if (visible && top > window.innerHeight - 140) top = Math.max(8, r.top - 150);
      const h = this.box.offsetHeight || 0;  // a long review (diff + report) must keep its buttons on screen
      if (top + h > window.innerHeight - 8) top = Math.max(8, window.innerHeight - h - 8);
      this.box.style.left = `${Math.max(8, left)}px`;
      this.box.style.top = `${Math.max(8, top)}px`;
    }

    set({ state, title, message, stage, fraction, progress } = {}) {
      if (state) this.box.dataset.state = state;
      if (title !== undefined) this.root.querySelector(".title").textContent = title;
      if (message !== undefined) this.root.querySelector(".msg").textContent = message;
      if (stage !== undefined) this.root.querySelector(".stage").textContent = stage;
      if (stage) this.box.dataset.stages = String(Number(this.box.dataset.stages ?? 0) + 1);
      if (fraction !== undefined) this.root.querySelector(".fill").style.width = `${Math.round(fraction * 100)}%`;
      if (progress !== undefined) {
        this.root.querySelector(".bar").hidden = !progress;
        this.root.querySelector(".stage").hidden = !progress;
      }
    }

    /** Show a word diff: ops = [{op: eq|del|ins, text}]. */
    diff(ops) {
      const el = this.root.querySelector(".diff");
      el.textContent = "";
      for (const { op, text } of ops) {
        const node = op === "eq" ? document.createTextNode(text) : document.createElement(op === "del" ? "del" : "ins");
        if (op !== "eq") node.textContent = text;
        el.appendChild(node);
      }
      el.hidden = false;
    }

    /** What still shows after text protection (the daemon's report.notes; warnings for what is left). */
    report(report) {
      const el = this.root.querySelector(".report");
      el.textContent = "";
      if (!report) { el.hidden = true; return; }
      el.dataset.goal = report.goal_reached ? "reached" : "not-reached";
      const warn = !report.goal_reached || report.left?.length || report.reader?.some((r) => r.still_shows);
      for (const note of report.notes ?? []) {
        const li = document.createElement("li");
        li.textContent = note;
        if (warn) li.className = "warn";
        el.appendChild(li);
      }
      el.hidden = !el.childElementCount;
      this.place();
    }

    /** Before/after thumbnails of a photo (Files or Blobs); the URLs are revoked when the overlay closes. */
    thumbs(before, after) {
      const el = this.root.querySelector(".thumbs");
      this._urls ??= [];
      for (const [cls, blob] of [["before", before], ["after", after]]) {
        const img = el.querySelector(`img.${cls}`);
        const url = URL.createObjectURL(blob);
        this._urls.push(url);
        img.onerror = () => { el.hidden = true; };  // a page's CSP may refuse blob: images: then none is shown
        img.src = url;
      }
      el.hidden = false;
      this.place();
    }

    /**
     * The photo's receipt: one line per face (the daemon's result.receipt); warns where a face still matches. With
     * ``expressions`` (result.expression_receipt, when facial expressions are hidden), a line per face on what an
     * expression reader that was not used reads; warns where it still reads the face's expression.
     */
    receipt(entries, expressions = []) {
      const el = this.root.querySelector(".report");
      el.textContent = "";
      const faces = entries ?? [];
      const reads = expressions ?? [];
      for (let i = 0; i < Math.max(faces.length, reads.length); i++) {  // per face: identity, then expression
        if (faces[i]) el.appendChild(faceLine(i, faces[i]));
        if (reads[i]) el.appendChild(expressionLine(i, reads[i]));
      }
      const short = (entries ?? []).some((r) => r.matched) || stillRead(expressions) > 0;
      el.dataset.goal = short ? "not-reached" : "reached";
      el.hidden = !el.childElementCount;
      this.place();
    }

    /** Buttons: [{label, kind: primary|danger|plain, action, onClick}]. Replaces the current ones. */
    buttons(list) {
      const el = this.root.querySelector(".buttons");
      el.textContent = "";
      for (const b of list) {
        const btn = document.createElement("button");
        btn.textContent = b.label;
        btn.className = b.kind ?? "";
        btn.dataset.action = b.action;
        btn.addEventListener("click", (e) => {
          e.preventDefault();
          e.stopPropagation();
          b.onClick();
        });
        el.appendChild(btn);
      }
    }

    close(afterMs = 0) {
      const go = () => {
        for (const url of this._urls ?? []) URL.revokeObjectURL(url);
        window.removeEventListener("scroll", this._onScroll, true);
        window.removeEventListener("resize", this._onScroll);
        this.host.remove();
        Overlay.open.delete(this);
      };
      if (afterMs) setTimeout(go, afterMs);
      else go();
    }
  }

  function faceLine(i, r) {
    const li = document.createElement("li");
    li.textContent = `Face ${i + 1}: ${r.matched ? "still recognised" : "no longer recognised"} by ${r.recognizer} ` +
      `(not used to make the cloak) after ${r.condition}; visibility ${r.ssimulacra2.toFixed(0)}/100.`;
    if (r.matched) li.className = "warn";
    return li;
  }

  /** One face's expression receipt (the daemon's expression_receipt entry), as the user reads it. */
  function expressionLine(i, e) {
    const li = document.createElement("li");
    const reader = "an expression reader that was not used";
    li.dataset.expression = e.found ? (e.changed ? "hidden" : "read") : "not-found";
    if (!e.found) {
      li.textContent = `Face ${i + 1}: ${reader} (${e.reader}) cannot find this face after ${e.condition}.`;
    } else if (e.changed) {
      li.textContent = `Face ${i + 1}: ${reader} no longer reads ${e.clean} (${e.reader} reads ${e.after} after ` +
        `${e.condition}).`;
    } else {
      li.textContent = `Face ${i + 1}: ${reader} still reads ${e.clean} (${e.reader}, ` +
        `${Math.round((e.after_confidence ?? 0) * 100)}% after ${e.condition}).`;
      li.className = "warn";
    }
    return li;
  }

  /** Faces whose expression the held-out reader still reads (found, not changed). */
  function stillRead(expressions) {
    return (expressions ?? []).filter((e) => e.found && !e.changed).length;
  }

  Overlay.open = new Set();
  Overlay.stillRead = stillRead;
  ally.Overlay = Overlay;
})();
