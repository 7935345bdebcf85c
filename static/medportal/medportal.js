// MedPortal's few behaviours: the draft stream, the live worklist, the upload progress bar, the theme, Alt+N.
"use strict";

// The theme: the one chosen with the toggle on this browser (set by theme.js before the page
// paints), else the system's (prefers-color-scheme, in medportal.css); the reading room (the
// study page, <html data-room>) is dark unless light was chosen.
function currentTheme() {
  const chosen = document.documentElement.dataset.theme;
  if (chosen) return chosen;
  if ("room" in document.documentElement.dataset) return "dark";
  return window.matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark";
}

function labelThemeToggle(toggle) {
  const other = currentTheme() === "dark" ? "light" : "dark";
  toggle.textContent = other === "light" ? "Light theme" : "Dark theme";
  toggle.title = `Switch to the ${other} theme (remembered on this browser)`;
}

// Alt+N: "Next study" (claim and open the next one), from anywhere but a text field other
// than the report's own editor, where a letter key must stay a letter.
document.addEventListener("keydown", (event) => {
  if (!event.altKey || event.ctrlKey || event.metaKey || event.code !== "KeyN") return;
  const target = event.target;
  const field = target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
  if (field && !target.closest("#report-edit-form")) return;
  const button = document.getElementById("next-study");
  if (!button || !button.form) return;
  event.preventDefault();
  button.form.requestSubmit(button);
});

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
    lastMessageAt = Date.now();
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

  // The end of a draft may be lost with the rest; after a quiet spell, ask where things stand.
  let lastMessageAt = Date.now();
  const quietCheck = setInterval(() => {
    if (state.done || !document.body.contains(panel)) { clearInterval(quietCheck); return; }
    if (Date.now() - lastMessageAt > 3000 && socket && socket.readyState === WebSocket.OPEN) {
      lastMessageAt = Date.now();
      socket.send(JSON.stringify({ type: "resync" }));
    }
  }, 1000);

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

// The worklist listens on a websocket; the server only says "changed" and the page
// re-fetches its own list (htmx trigger "worklist-changed"). While the socket is down,
// window.medportalWorklistLive is false and the list is re-fetched every 5 s instead.
function followWorklist() {
  const list = document.getElementById("worklist");
  if (!list || window.medportalWorklistSocket) return;
  const url = list.dataset.liveUrl;
  let retry = 500;
  let refreshTimer = null;
  setInterval(() => { if (!window.medportalWorklistLive) htmx.trigger(document.body, "worklist-changed"); }, 5000);

  function refreshSoon() {  // a burst of changes (an upload, a busy worker) makes one request
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => { refreshTimer = null; htmx.trigger(document.body, "worklist-changed"); }, 300);
  }

  // Refreshes the page makes by itself do not count as the user being active (the
  // idle timeout); sorting, paging and claiming in the list do. Hence not hx-headers
  // on #worklist, which every link and form inside it would inherit.
  document.body.addEventListener("htmx:configRequest", (event) => {
    const trigger = event.detail.triggeringEvent;
    if (trigger && trigger.type === "worklist-changed") event.detail.headers["X-MedPortal-Background"] = "1";
  });

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + url);
    window.medportalWorklistSocket = socket;
    socket.onopen = () => {
      if (retry > 500) refreshSoon();  // back after a drop: catch up on what we missed
      retry = 500;
      window.medportalWorklistLive = true;
    };
    socket.onmessage = (event) => { if (JSON.parse(event.data).type === "changed") refreshSoon(); };
    socket.onclose = (event) => {
      window.medportalWorklistLive = false;
      if (event.code === 4403) return;  // not allowed: keep polling, which checks permissions itself
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
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
  if (toggle) {
    labelThemeToggle(toggle);
    toggle.addEventListener("click", () => {
      const next = currentTheme() === "dark" ? "light" : "dark";
      document.documentElement.dataset.theme = next;
      localStorage.setItem("medportal-theme", next);
      labelThemeToggle(toggle);
    });
  }
  htmx.onLoad((element) => {
    const panels = element.matches && element.matches(".report-panel") ? [element] : element.querySelectorAll(".report-panel");
    panels.forEach(followDraft);
    setUpUploadProgress(element);
  });
  followWorklist();
});
