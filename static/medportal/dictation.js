// Dictation in the report editor, and the Impression from the Findings (templates/dictation/
// editor_tools.html). The microphone runs through an AudioContext at 16 kHz; the worklet hands
// its samples here, where each utterance (cut at a pause, at most 8 s) goes to the server as one
// binary websocket message of 16-bit mono PCM. The text comes back in the order it was spoken and
// goes into the field that had the cursor, with the spoken commands done (medportal/dictation/
// commands.py). Hold F4, or click Dictate (again to stop).
"use strict";

const DICTATION_RATE = 16000;
const PAUSE_SAMPLES = DICTATION_RATE / 2;  // half a second of quiet ends an utterance
const MAX_PIECE_SAMPLES = DICTATION_RATE * 8;
const SPEECH_LEVEL = 0.01;  // RMS of a 128-sample frame above which someone is speaking

function setUpDictation(tools) {
  if (tools.medportalDictation) return;
  const form = tools.closest("form");
  const state = { socket: null, opening: null, recording: null, nextSeq: 1, answers: new Map(), field: null, last: null, impression: "" };
  tools.medportalDictation = state;
  tools.hidden = false;
  const status = tools.querySelector("#dictation-status");
  const button = tools.querySelector("#dictate-button");
  const say = (text) => { status.textContent = text; };

  form.addEventListener("focusin", (event) => { if (event.target.tagName === "TEXTAREA") state.field = event.target; });
  const fields = () => Array.from(form.querySelectorAll("textarea"));
  const target = () => (state.field && document.body.contains(state.field) ? state.field : form.querySelector("#id_findings"));

  function connect() {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) return Promise.resolve(state.socket);
    if (state.opening) return state.opening;
    state.opening = new Promise((resolve, reject) => {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const socket = new WebSocket(scheme + location.host + tools.dataset.url);
      socket.binaryType = "arraybuffer";
      socket.onopen = () => { state.socket = socket; state.opening = null; resolve(socket); };
      socket.onclose = () => { state.opening = null; if (state.socket === socket) state.socket = null; reject(new Error("closed")); };
      socket.onmessage = (event) => onMessage(JSON.parse(event.data));
    });
    return state.opening;
  }

  // ---- the text back, in order -------------------------------------------------------------
  function onMessage(message) {
    if (message.type === "transcript" || (message.type === "error" && message.seq)) {
      state.answers.set(message.seq, message);
      while (state.answers.has(state.nextSeq)) {
        const answer = state.answers.get(state.nextSeq);
        state.answers.delete(state.nextSeq);
        state.nextSeq += 1;
        if (answer.type === "transcript") answer.operations.forEach(apply);
        else say(answer.message);
      }
      if (!state.recording) say(state.answers.size ? "Transcribing…" : "Dictation done.");
    } else if (message.type === "impression.started") {
      showImpression("");
    } else if (message.type === "impression.chunk") {
      showImpression(state.impression + message.text);
    } else if (message.type === "impression.end") {
      showImpression(message.text);
      tools.querySelector("#impression-use").disabled = !message.text;
    } else if (message.type === "error") {
      if (message.about === "impression") showImpression("", message.message);
      else say(message.message);
    }
  }

  function changed(field) { field.dispatchEvent(new Event("input", { bubbles: true })); }

  function apply(operation) {
    let field = target();
    if (!field) return;
    if (operation.op === "next_field" || operation.op === "previous_field") {
      const all = fields();
      const next = all[all.indexOf(field) + (operation.op === "next_field" ? 1 : -1)];
      if (next) { next.focus(); next.setSelectionRange(next.value.length, next.value.length); state.field = next; }
      return;
    }
    if (operation.op === "scratch") {
      const last = state.last;
      if (last && document.body.contains(last.field) && last.field.value.slice(last.start, last.start + last.text.length) === last.text) {
        last.field.setRangeText("", last.start, last.start + last.text.length, "end");
        changed(last.field);
      }
      state.last = null;
      return;
    }
    const start = field.selectionStart;
    const before = field.value.slice(0, start);
    let text = operation.text;
    if (!operation.join) {
      if (/[.?!:]\s*$/.test(before) || !before.trim()) text = text.charAt(0).toUpperCase() + text.slice(1);
      if (before && !/\s$/.test(before)) text = " " + text;
    }
    field.setRangeText(text, start, field.selectionEnd, "end");
    state.last = { field, start, text };
    changed(field);
  }

  // ---- recording ------------------------------------------------------------------------------
  async function start() {
    if (state.recording) return;
    const recording = { pieces: [], samples: 0, speech: false, quiet: 0, stopped: false };
    state.recording = recording;
    button.setAttribute("aria-pressed", "true");
    button.textContent = "Stop dictating";
    say("Listening…");
    try {
      await connect();
      recording.stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
      recording.context = new AudioContext({ sampleRate: DICTATION_RATE });
      await recording.context.audioWorklet.addModule(tools.dataset.workletUrl);
      const source = recording.context.createMediaStreamSource(recording.stream);
      const tap = new AudioWorkletNode(recording.context, "dictation-tap");
      tap.port.onmessage = (event) => hear(recording, event.data);
      source.connect(tap);
      if (recording.stopped) finish(recording);
    } catch (error) {
      say("Dictation is not available: " + (error.message || error) + ".");
      finish(recording);
    }
  }

  function hear(recording, frame) {
    let sum = 0;
    for (let i = 0; i < frame.length; i += 1) sum += frame[i] * frame[i];
    const speaking = Math.sqrt(sum / frame.length) > SPEECH_LEVEL;
    recording.pieces.push(frame);
    recording.samples += frame.length;
    recording.quiet = speaking ? 0 : recording.quiet + frame.length;
    recording.speech = recording.speech || speaking;
    if (!recording.speech && recording.samples > PAUSE_SAMPLES) {
      recording.samples -= recording.pieces.shift().length;  // keep only a little quiet before speech
    } else if ((recording.speech && recording.quiet >= PAUSE_SAMPLES) || recording.samples >= MAX_PIECE_SAMPLES) {
      send(recording);
    }
  }

  function send(recording) {
    if (recording.speech && recording.samples) {
      const pcm = new Int16Array(recording.samples);
      let at = 0;
      for (const frame of recording.pieces) {
        for (let i = 0; i < frame.length; i += 1) pcm[at++] = Math.max(-1, Math.min(1, frame[i])) * 32767;
      }
      if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(pcm.buffer);
      else say("Not connected: that utterance was not sent.");
    }
    recording.pieces = [];
    recording.samples = 0;
    recording.speech = false;
    recording.quiet = 0;
  }

  function finish(recording) {
    recording.stopped = true;
    if (recording.context) {
      send(recording);
      recording.context.close();
    }
    if (recording.stream) recording.stream.getTracks().forEach((track) => track.stop());
    if (state.recording === recording) state.recording = null;
    button.setAttribute("aria-pressed", "false");
    button.textContent = "Dictate";
    if (!status.textContent.startsWith("Dictation is not")) say("Transcribing…");
  }

  function stop() { if (state.recording) finish(state.recording); }

  button.addEventListener("mousedown", (event) => event.preventDefault());  // the cursor stays put
  button.addEventListener("click", () => (state.recording ? stop() : start()));
  tools.medportalDictationKeys = { start, stop };

  // ---- the Impression from the Findings -------------------------------------------------------
  function showImpression(text, error) {
    state.impression = text;
    const box = tools.querySelector("#impression-suggestion");
    box.hidden = false;
    tools.querySelector("#impression-text").textContent = error ? "" : text;
    if (error) say(error);
  }

  tools.querySelector("#impression-button").addEventListener("click", async () => {
    const findings = form.querySelector("#id_findings");
    tools.querySelector("#impression-use").disabled = true;
    try {
      const socket = await connect();
      socket.send(JSON.stringify({ type: "impression", findings: findings ? findings.value : "" }));
    } catch (error) {
      say("Cannot reach the server; try again.");
    }
  });
  tools.querySelector("#impression-use").addEventListener("click", () => {
    const impression = form.querySelector("#id_impression");
    impression.value = state.impression;
    changed(impression);
    impression.focus();
  });
  tools.querySelector("#impression-dismiss").addEventListener("click", () => {
    tools.querySelector("#impression-suggestion").hidden = true;
  });
}

// Push to talk: hold F4 (no other key of the editor uses it).
function dictationKeys() {
  const tools = document.getElementById("dictation-tools");
  return tools && tools.medportalDictationKeys;
}
document.addEventListener("keydown", (event) => {
  if (event.key !== "F4" || event.altKey || event.ctrlKey || event.metaKey) return;
  const keys = dictationKeys();
  if (!keys) return;
  event.preventDefault();
  if (!event.repeat) keys.start();
});
document.addEventListener("keyup", (event) => {
  if (event.key !== "F4") return;
  const keys = dictationKeys();
  if (keys) { event.preventDefault(); keys.stop(); }
});

document.addEventListener("DOMContentLoaded", () => {
  htmx.onLoad((element) => {
    const tools = element.id === "dictation-tools" ? element : element.querySelector && element.querySelector("#dictation-tools");
    if (tools) setUpDictation(tools);
  });
});
