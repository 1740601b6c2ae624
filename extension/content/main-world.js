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
