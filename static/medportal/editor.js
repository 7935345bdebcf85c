// The report editor on the study page: autosave, Ctrl+S, Ctrl+Enter, and saving before
// signing or leaving. Each save goes through the same form and view as the Save button,
// with the header X-MedPortal-Save: the server then answers with the new version number,
// the status and the changes from the AI draft only (out-of-band swaps), so the text being
// typed is never replaced. A refused save (someone else saved first) replaces the panel with
// the message, the newer text and this user's unsaved text.
"use strict";

function editorText(form) {
  return Array.from(form.querySelectorAll("textarea, input[type=text]"))
    .map((field) => field.name + "=" + field.value)
    .join("\u0000");
}

function showLocalTimes(root) {
  // The server writes its own time zone's clock; show the reader's.
  root.querySelectorAll("time[datetime]").forEach((time) => {
    const when = new Date(time.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) time.textContent = when.toLocaleTimeString([], { hour12: false });
  });
}

function setAutosaveStatus(text) {
  const status = document.getElementById("autosave-status");
  if (status) status.textContent = text;
}

function setUpEditor(form) {
  if (form.medportalEditor) return;
  const delay = Number(form.dataset.autosaveMs) || 4000;
  const editor = { saved: editorText(form), timer: null, saving: null, lastStatus: 0 };
  form.medportalEditor = editor;

  editor.dirty = () => editorText(form) !== editor.saved;

  // Saves the text now, unless nothing changed; resolves once the text on the page is saved
  // (or the save was refused and the panel replaced).
  editor.save = (how) => {
    clearTimeout(editor.timer);
    editor.timer = null;
    if (!document.body.contains(form)) return Promise.resolve();
    if (editor.saving) return editor.saving.then(() => (editor.dirty() ? editor.save(how) : undefined));
    if (!editor.dirty()) {
      if (how === "keyboard") setAutosaveStatus("No changes to save.");
      return Promise.resolve();
    }
    const sent = editorText(form);
    setAutosaveStatus("Saving…");
    editor.lastStatus = 0;
    editor.saving = htmx
      .ajax("POST", form.getAttribute("hx-post"), {
        source: form,
        target: "#report-panel",
        swap: "none",
        headers: { "X-MedPortal-Save": how },
      })
      .then(() => {
        if (!document.body.contains(form)) return;  // refused: the panel says why
        if (editor.lastStatus === 0) {
          editor.schedule();  // queued behind another request (Save, a sign-off): try again later
        } else if (editor.lastStatus === 200) {
          editor.saved = sent;
          showLocalTimes(document.getElementById("autosave-status") || document.body);
        } else {
          setAutosaveStatus("Not saved (the server answered " + editor.lastStatus + "); trying again shortly.");
          editor.schedule();
        }
      })
      .catch(() => {
        setAutosaveStatus("Not saved: the server cannot be reached; trying again shortly.");
        editor.schedule();
      })
      .finally(() => { editor.saving = null; });
    return editor.saving;
  };

  editor.schedule = () => {
    clearTimeout(editor.timer);
    editor.timer = setTimeout(() => editor.save("auto"), delay);
  };

  form.addEventListener("htmx:afterRequest", (event) => {
    if (event.detail.elt === form && event.detail.xhr) editor.lastStatus = event.detail.xhr.status;
  });
  form.addEventListener("input", () => {
    if (!editor.dirty()) return;
    setAutosaveStatus("Unsaved changes…");
    editor.schedule();
  });
  // The Save button's own save makes a pending autosave needless.
  form.addEventListener("submit", () => { clearTimeout(editor.timer); });
}

function currentEditor() {
  const form = document.getElementById("report-edit-form");
  return form && form.medportalEditor ? form.medportalEditor : null;
}

// Signing, or leaving for the next study, with text not yet saved: save it first, then go on.
// (A sign-off signs the saved version; it must be the text on the screen.)
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.id !== "report-sign-form" && form.id !== "next-study-form") return;
  const editor = currentEditor();
  if (!editor || !(editor.dirty() || editor.saving)) return;
  event.preventDefault();
  event.stopPropagation();  // htmx must not send the sign-off before the save
  const submitter = event.submitter;
  editor.save("auto").then(() => {
    if (document.body.contains(form) && !editor.dirty()) form.requestSubmit(submitter);
  });
}, true);

// Text typed in the last seconds before the page is left goes out with the page.
window.addEventListener("pagehide", () => {
  const editor = currentEditor();
  const form = document.getElementById("report-edit-form");
  if (editor && editor.dirty() && !editor.saving) navigator.sendBeacon(form.action, new FormData(form));
});

function isTextField(element) {
  return element && (element.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(element.tagName));
}

document.addEventListener("keydown", (event) => {
  const mod = (event.ctrlKey || event.metaKey) && !event.altKey;
  if (!mod) return;
  const editor = currentEditor();
  if (!editor) return;
  const target = event.target;
  const inEditor = target.closest && target.closest("#report-edit-form");
  const signForm = document.getElementById("report-sign-form");
  const inSignForm = signForm && signForm.contains(target);

  if (event.key.toLowerCase() === "s" && !event.shiftKey) {
    // The browser's "save page" is never what is meant here.
    event.preventDefault();
    editor.save("keyboard");
  } else if (event.key === "Enter" && !event.shiftKey) {
    if (!signForm) return;
    // Not from fields of other forms (an addendum, a cancel reason): that would surprise.
    if (!inEditor && !inSignForm && isTextField(target)) return;
    event.preventDefault();
    const password = signForm.querySelector("input[type=password]");
    if (inSignForm && password && password.value) {
      signForm.requestSubmit(signForm.querySelector("#sign-button"));
    } else if (password) {
      editor.save("auto");
      password.focus();
    }
  }
});

document.addEventListener("DOMContentLoaded", () => {
  htmx.onLoad((element) => {
    const form = element.id === "report-edit-form" ? element : element.querySelector && element.querySelector("#report-edit-form");
    if (form) setUpEditor(form);
  });
});
