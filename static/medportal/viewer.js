// The study page's image viewer. The server renders every image (window, thumbnails);
// this script only chooses which URL the <img> shows and moves it on screen. Without it
// the page still works: series, slices and presets are plain links.
"use strict";

(function () {
  const WHEEL_STEP = 40;  // pixels of wheel travel per slice (a mouse notch is 53-120; a trackpad sends less)
  const PAGE_STEP = 10;
  const ZOOM_STEP = 1.25, ZOOM_MIN = 0.25, ZOOM_MAX = 16;
  const WC_LIMIT = 100000, WW_MAX = 200000;  // the server's limits (imaging/viewer.py)

  function parseSlices(text) {
    return text ? text.split(",").map((pair) => pair.split(":").map(Number)) : [];
  }

  function parsePresets(text) {
    return text ? text.split(",").map((item) => {
      const [name, wc, ww] = item.split(":");
      return { name, wc: Number(wc), ww: Number(ww) };
    }) : [];
  }

  function setUp(viewer) {
    const viewport = viewer.querySelector("#viewport");
    const img = viewer.querySelector("#viewer-image");
    if (!viewport || !img) return;
    const counter = viewer.querySelector("#slice-counter");
    const previousLink = viewer.querySelector("#slice-previous");
    const nextLink = viewer.querySelector("#slice-next");
    const readout = viewer.querySelector("#window-readout");
    const zoomReadout = viewer.querySelector("#zoom-readout");
    const presetBox = viewer.querySelector("#window-presets");
    const panButton = viewer.querySelector("#pan-mode");
    const headerView = viewer.querySelector("#header-view");
    const headerLink = viewer.querySelector("#header-link");
    const headerContent = viewer.querySelector("#header-content");
    const thumbs = Array.from(viewer.querySelectorAll(".series-thumb"));
    viewer.querySelectorAll(".js-only").forEach((element) => { element.hidden = false; });
    viewer.classList.add("live");

    // Start where the server's page is: its counter and its image's window.
    const shown = new URL(img.src).searchParams;
    const state = {
      thumb: thumbs.find((t) => t.getAttribute("aria-current") === "true") || thumbs[0],
      index: (parseInt(counter.textContent, 10) || 1) - 1,
      window: shown.has("wc") && shown.has("ww") ? { wc: Number(shown.get("wc")), ww: Number(shown.get("ww")) } : null,
      zoom: 1, panX: 0, panY: 0, panMode: false,
    };
    let slices = parseSlices(state.thumb.dataset.slices);

    const urlFor = (kind, id) => viewer.dataset[kind].replace("/0/", "/" + id + "/");

    function imageUrl() {
      const [id, frame] = slices[state.index];
      const query = [];
      if (frame) query.push("frame=" + frame);
      if (state.window) query.push("wc=" + state.window.wc, "ww=" + state.window.ww);
      return urlFor("imageUrl", id) + (query.length ? "?" + query.join("&") : "");
    }

    // One image request at a time: while one loads, later wishes replace each other and
    // only the last is fetched, so a fast wheel or drag does not queue a request per step.
    let loading = false;
    let wanted = img.getAttribute("src");
    function requestImage(url) {
      wanted = url;
      if (loading || img.getAttribute("src") === url) return;
      loading = true;
      img.src = url;
    }
    function loaded() {
      loading = false;
      if (wanted !== img.getAttribute("src")) requestImage(wanted);
      else rememberInAddress();
    }
    img.addEventListener("load", loaded);
    img.addEventListener("error", loaded);

    function rememberInAddress() {  // a reload or a shared link shows the same image
      const query = new URLSearchParams({ series: state.thumb.dataset.seriesId, slice: state.index + 1 });
      if (state.window) { query.set("wc", state.window.wc); query.set("ww", state.window.ww); }
      history.replaceState(history.state, "", location.pathname + "?" + query + "#viewer");
    }

    function render() {
      counter.textContent = (state.index + 1) + " / " + slices.length;
      previousLink.setAttribute("aria-disabled", String(state.index === 0));
      nextLink.setAttribute("aria-disabled", String(state.index === slices.length - 1));
      img.alt = (state.thumb.dataset.modality || "Image") + " image " + (state.index + 1) + " of " + slices.length;
      readout.textContent = state.window ? "W " + state.window.ww + " · C " + state.window.wc : "Default window";
      presetBox.querySelectorAll(".preset").forEach((preset) => {
        const w = state.window;
        const active = preset.dataset.preset === "default" ? !w
          : !!w && Number(preset.dataset.wc) === w.wc && Number(preset.dataset.ww) === w.ww;
        preset.classList.toggle("active", active);
      });
      requestImage(imageUrl());
      const id = slices[state.index][0];
      headerLink.href = urlFor("headerUrl", id);
      if (headerView.open) loadHeaderSoon();
    }

    function place() {
      img.style.transform = "translate(" + state.panX + "px, " + state.panY + "px) scale(" + state.zoom + ")";
      zoomReadout.textContent = Math.round(state.zoom * 100) + "%";
    }

    function go(index) {
      const target = Math.max(0, Math.min(slices.length - 1, index));
      if (target === state.index) return;
      state.index = target;
      render();
    }

    function zoomBy(factor) {
      state.zoom = Math.max(ZOOM_MIN, Math.min(ZOOM_MAX, state.zoom * factor));
      place();
    }

    function resetView() {
      state.zoom = 1; state.panX = 0; state.panY = 0;
      place();
    }

    function buildPresets() {
      // Presets belong to the series' modality: rebuilt from its thumbnail's data.
      presetBox.replaceChildren();
      const add = (name, window) => {
        const link = document.createElement("a");
        link.className = "button preset";
        link.href = "?series=" + state.thumb.dataset.seriesId + "#viewer";
        link.textContent = name;
        link.dataset.preset = name;
        if (window) { link.dataset.wc = window.wc; link.dataset.ww = window.ww; }
        presetBox.append(link);
      };
      if (state.thumb.dataset.wc) {
        add("default", null);
        parsePresets(state.thumb.dataset.presets).forEach((p) => add(p.name, p));
      }
      add("reset", null);
    }

    function showSeries(thumb) {
      thumbs.forEach((t) => t.removeAttribute("aria-current"));
      thumb.setAttribute("aria-current", "true");
      state.thumb = thumb;
      slices = parseSlices(thumb.dataset.slices);
      state.index = 0;
      state.window = null;
      buildPresets();
      resetView();
      render();
    }

    // The header table: loaded when opened, and again (once things settle) for a new slice.
    let headerTimer = null;
    function loadHeader() {
      htmx.ajax("GET", headerLink.getAttribute("href"), { target: headerContent, swap: "innerHTML" });
    }
    function loadHeaderSoon() {
      clearTimeout(headerTimer);
      headerTimer = setTimeout(loadHeader, 250);
    }
    headerView.addEventListener("toggle", () => { if (headerView.open) loadHeader(); });

    thumbs.forEach((thumb) => thumb.addEventListener("click", (event) => {
      event.preventDefault();
      showSeries(thumb);
      viewport.focus();
    }));

    previousLink.addEventListener("click", (event) => { event.preventDefault(); go(state.index - 1); });
    nextLink.addEventListener("click", (event) => { event.preventDefault(); go(state.index + 1); });

    presetBox.addEventListener("click", (event) => {
      const preset = event.target.closest(".preset");
      if (!preset) return;
      event.preventDefault();
      const name = preset.dataset.preset;
      state.window = preset.dataset.wc ? { wc: Number(preset.dataset.wc), ww: Number(preset.dataset.ww) } : null;
      if (name === "reset") resetView();
      render();
    });

    viewer.querySelectorAll("[data-zoom]").forEach((button) => button.addEventListener("click", () => {
      const how = button.dataset.zoom;
      if (how === "in") zoomBy(ZOOM_STEP);
      else if (how === "out") zoomBy(1 / ZOOM_STEP);
      else resetView();
    }));

    panButton.addEventListener("click", () => {
      state.panMode = !state.panMode;
      panButton.setAttribute("aria-pressed", String(state.panMode));
      viewport.classList.toggle("panning", state.panMode);
    });

    let wheelTravel = 0;
    viewport.addEventListener("wheel", (event) => {
      event.preventDefault();  // neither the page scrolls nor the browser zooms
      const delta = event.deltaMode === 1 ? event.deltaY * 33 : event.deltaMode === 2 ? event.deltaY * 400 : event.deltaY;
      if (event.ctrlKey) { if (delta) zoomBy(delta < 0 ? ZOOM_STEP : 1 / ZOOM_STEP); return; }
      wheelTravel += delta;
      if (Math.abs(wheelTravel) < WHEEL_STEP) return;
      go(state.index + Math.sign(wheelTravel));
      wheelTravel = 0;
    }, { passive: false });

    viewport.addEventListener("keydown", (event) => {
      const moves = {
        ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1, PageDown: PAGE_STEP, PageUp: -PAGE_STEP,
      };
      if (event.key in moves) go(state.index + moves[event.key]);
      else if (event.key === "Home") go(0);
      else if (event.key === "End") go(slices.length - 1);
      else if (event.key === "+" || event.key === "=") zoomBy(ZOOM_STEP);
      else if (event.key === "-") zoomBy(1 / ZOOM_STEP);
      else if (event.key === "0") resetView();
      else return;
      event.preventDefault();
    });

    // Dragging: window/level (across = width, up and down = centre), or pan with Shift or in pan mode.
    let drag = null;
    viewport.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      viewport.focus();
      const pan = state.panMode || event.shiftKey;
      if (!pan && !state.thumb.dataset.wc) return;  // colour and PNG images have no window
      const start = state.window || { wc: Number(state.thumb.dataset.wc), ww: Number(state.thumb.dataset.ww) };
      drag = { pan, x: event.clientX, y: event.clientY, panX: state.panX, panY: state.panY, start };
      viewport.setPointerCapture(event.pointerId);
      event.preventDefault();
    });
    viewport.addEventListener("pointermove", (event) => {
      if (!drag) return;
      const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
      if (drag.pan) {
        state.panX = drag.panX + dx; state.panY = drag.panY + dy;
        place();
        return;
      }
      // A step relative to the window the drag began with: fine in a brain window, quick in a lung one.
      const step = Math.max(drag.start.ww, 10) / 200;
      state.window = {
        wc: Math.round(Math.max(-WC_LIMIT, Math.min(WC_LIMIT, drag.start.wc + dy * step))),
        ww: Math.round(Math.max(1, Math.min(WW_MAX, drag.start.ww + dx * step))),
      };
      render();
    });
    const endDrag = () => { drag = null; };
    viewport.addEventListener("pointerup", endDrag);
    viewport.addEventListener("pointercancel", endDrag);

    place();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const viewer = document.getElementById("viewer");
    if (viewer) setUp(viewer);
  });
})();
