// MedPortal's few behaviours: the draft stream, the upload progress bar, the theme.
"use strict";

(function () {
  const theme = localStorage.getItem("medportal-theme");
  if (theme) document.documentElement.dataset.theme = theme;
})();

// Follows one report's draft over a websocket. The server sends a snapshot of the
// database's text first, then chunks {stream, seq, offset, text}. A chunk that
// starts beyond the text we hold means messages were lost: ask for a fresh snapshot.
function followDraft(panel) {
  const url = panel.dataset.streamUrl;
  if (!url || panel.medportalStream) return;
  const out = panel.querySelector("#draft-stream");
  const state = { text: out ? out.textContent : "", stream: null, pending: new Map(), done: false, retry: 250 };
  panel.medportalStream = state;
  let socket = null;
  let resyncTimer = null;

  function render() { if (out) out.textContent = state.text; }

  function applyPending() {
    let progressed = true;
    while (progressed) {
      progressed = false;
      for (const [offset, text] of state.pending) {
        if (offset <= state.text.length) {
          if (offset + text.length > state.text.length) state.text += text.slice(state.text.length - offset);
          state.pending.delete(offset);
          progressed = true;
        }
      }
    }
  }

  function resyncSoon() {
    if (resyncTimer) return;
    resyncTimer = setTimeout(() => {
      resyncTimer = null;
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "resync" }));
    }, 200);
  }

  function finish() {
    state.done = true;
    if (socket) socket.close();
    htmx.ajax("GET", panel.dataset.panelUrl, { target: "#report-panel", swap: "innerHTML" });
  }

  function onMessage(event) {
    const message = JSON.parse(event.data);
    if (message.type === "snapshot") {
      // A new stream (a redraft, or a worker that took over) starts its text again.
      if (message.stream !== state.stream) { state.stream = message.stream; state.text = message.text; state.pending.clear(); }
      else if (message.text.length > state.text.length) state.text = message.text;
      applyPending();
      render();
      const status = panel.querySelector("#report-status");
      if (status) status.textContent = message.status_display;
      if (message.status !== "queued" && message.status !== "drafting") finish();
      else if (state.pending.size) resyncSoon();
    } else if (message.type === "chunk") {
      if (message.stream !== state.stream) { resyncSoon(); return; }
      state.pending.set(message.offset, message.text);
      applyPending();
      render();
      if (state.pending.size) resyncSoon();
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + url);
    socket.onopen = () => { state.retry = 250; };
    socket.onmessage = onMessage;
    socket.onclose = () => {
      if (state.done || !document.body.contains(panel)) return;
      setTimeout(connect, state.retry);  // the server restarts or Redis blinks: come back
      state.retry = Math.min(state.retry * 2, 5000);
    };
  }
  connect();
}

function setUpUploadProgress(root) {
  const form = root.querySelector ? root.querySelector("#upload-form") : null;
  if (!form || form.medportalProgress) return;
  form.medportalProgress = true;
  const bar = form.querySelector("#upload-progress");
  form.addEventListener("htmx:xhr:progress", (event) => {
    if (!event.detail.lengthComputable) return;
    bar.hidden = false;
    bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
  });
  form.addEventListener("htmx:afterRequest", () => { bar.value = 100; });
}

document.addEventListener("DOMContentLoaded", () => {
  const toggle = document.getElementById("theme-toggle");
  if (toggle) toggle.addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("medportal-theme", next);
  });
  htmx.onLoad((element) => {
    const panels = element.matches && element.matches(".report-panel") ? [element] : element.querySelectorAll(".report-panel");
    panels.forEach(followDraft);
    setUpUploadProgress(element);
  });
});
