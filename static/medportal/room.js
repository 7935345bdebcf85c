// The reading room: MedPortal's keys (Alt+N next study, Ctrl+S save, Ctrl+Enter sign) work
// while the viewer has the focus too. The viewer is an iframe of the same origin, so its
// window's key presses can be seen here; those three are taken from it (the viewer has no use
// for them) and handed to this page, whose own handlers (medportal.js, editor.js) act on them.
// Every other key stays the viewer's.
"use strict";

function isRoomKey(event) {
  const mod = (event.ctrlKey || event.metaKey) && !event.altKey;
  if (event.altKey && !event.ctrlKey && !event.metaKey && event.code === "KeyN") return true;
  if (mod && !event.shiftKey && event.key.toLowerCase() === "s") return true;
  return mod && !event.shiftKey && event.key === "Enter";
}

function forwardRoomKeys(frame) {
  let view;
  try {
    view = frame.contentWindow;
    if (!view || view.medportalRoomKeys) return;
    view.medportalRoomKeys = true;
  } catch (error) {
    return;  // not (yet) this origin's document: nothing to listen to
  }
  view.addEventListener("keydown", (event) => {
    if (!isRoomKey(event)) return;
    event.preventDefault();
    event.stopPropagation();
    document.body.dispatchEvent(new KeyboardEvent("keydown", {
      key: event.key, code: event.code, altKey: event.altKey, ctrlKey: event.ctrlKey,
      metaKey: event.metaKey, shiftKey: event.shiftKey, bubbles: true, cancelable: true,
    }));
  }, true);
}

document.addEventListener("DOMContentLoaded", () => {
  const frame = document.getElementById("viewer-frame");
  if (!frame) return;
  frame.addEventListener("load", () => forwardRoomKeys(frame));
  forwardRoomKeys(frame);
});
