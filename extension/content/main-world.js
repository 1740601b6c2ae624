// MAIN world, document_start. Sites often create a file input, never attach it, and call .click() (or
// .showPicker()) on it: its input/change events then never pass through `window`, where the isolated content
// script listens. Attach such an input to an invisible holder first, so that its events do.
(() => {
  const KEY = Symbol.for("ally.main-world");
  if (window[KEY]) return;
  window[KEY] = true;
  const proto = HTMLInputElement.prototype;
  const nativeClick = proto.click;
  const nativeShowPicker = proto.showPicker;
  let holder = null;

  function attach(input) {
    if (input.isConnected || input.type !== "file") return;
    if (!holder || !holder.isConnected) {
      holder = document.createElement("div");
      holder.setAttribute("data-ally-holder", "");
      holder.style.cssText = "position:fixed;width:0;height:0;overflow:hidden;opacity:0;pointer-events:none;";
      (document.body ?? document.documentElement).appendChild(holder);
    }
    holder.appendChild(input);
  }

  proto.click = function click() {
    try {
      attach(this);
    } catch {
      /* never break the page */
    }
    return nativeClick.call(this);
  };
  // Protected drops and pastes, posted by the isolated content script (upload.js): the DataTransfer is built
  // here, in the page's world, because Firefox hides from the page the files of one an extension filled. The
  // target carries the nonce while the event runs so that the content script lets it through. The names are
  // boot.js's ally.MESSAGE_KEY, TARGET_ATTR and DELIVERING_ATTR (a unit test keeps them equal).
  const MESSAGE_KEY = "__allyDelivery";
  window.addEventListener("message", (ev) => {
    const d = ev.source === window ? ev.data?.[MESSAGE_KEY] : undefined;
    if (d?.type !== "deliver" || typeof d.nonce !== "string") return;
    ev.stopImmediatePropagation();
    const target = document.querySelector(`[data-ally-target="${CSS.escape(d.nonce)}"]`);
    if (!target) return;
    target.removeAttribute("data-ally-target");
    const dt = new DataTransfer();
    for (const f of d.files ?? []) dt.items.add(f);
    const event = d.kind === "drop"
      ? new DragEvent("drop", { bubbles: true, cancelable: true, composed: true, dataTransfer: dt,
        clientX: d.init?.clientX ?? 0, clientY: d.init?.clientY ?? 0 })
      : new ClipboardEvent("paste", { bubbles: true, cancelable: true, composed: true, clipboardData: dt });
    // Firefox builds a synthetic paste's clipboardData from strings only: the files would not arrive
    const carried = (d.kind === "drop" ? event.dataTransfer : event.clipboardData)?.files?.length ?? 0;
    if (carried !== dt.files.length) {
      window.postMessage({ [MESSAGE_KEY]: { type: "undeliverable", nonce: d.nonce } }, "*");
      return;
    }
    target.setAttribute("data-ally-delivering", d.nonce);
    try {
      target.dispatchEvent(event);
    } finally {
      target.removeAttribute("data-ally-delivering");
      window.postMessage({ [MESSAGE_KEY]: { type: "delivered", nonce: d.nonce } }, "*");
    }
  }, true);

  if (typeof nativeShowPicker === "function") {
    proto.showPicker = function showPicker() {
      try {
        attach(this);
      } catch {
        /* never break the page */
      }
      return nativeShowPicker.call(this);
    };
  }
})();
