// lulc-stac web map: imagery backdrop, the class map with an opacity slider, its legend, click-to-identify,
// a run selector and the area-of-applicability hatching. Talks only to this tiler (/runs, /legend, /cog,
// /stac, /backdrop, /aoa); no other library.
"use strict";

(function () {
  const TMS = "WebMercatorQuad";
  const params = new URLSearchParams(window.location.search);
  const state = {
    runs: [],
    run: null,
    legend: null,
    classLayer: null,
    backdropLayer: null,
    aoaLayer: null,
    classTilesLoaded: false,
    backdropTilesLoaded: false,
    aoaTilesLoaded: false,
    tileErrors: 0,
  };
  window.lulcState = state;

  const $ = (id) => document.getElementById(id);
  const map = L.map("map", { zoomControl: true, attributionControl: true });
  window.lulcMap = map;
  map.setView([0, 0], 2);

  function setStatus(text, isError) {
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", Boolean(isError));
  }

  async function getJSON(path) {
    const response = await fetch(path);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
      throw new Error(`${response.status}: ${detail || response.statusText}`);
    }
    return body;
  }

  function tileUrl(prefix, query) {
    return `${prefix}/tiles/${TMS}/{z}/{x}/{y}.png?${query}`;
  }

  function runBounds(run) {
    if (!run.bbox) return null;
    const [w, s, e, n] = run.bbox;
    return L.latLngBounds([s, w], [n, e]);
  }

  function opacity() {
    return parseFloat($("opacity").value);
  }

  function renderLegend(legend) {
    const list = $("legend");
    list.replaceChildren();
    for (const entry of legend.classes) {
      const li = document.createElement("li");
      li.dataset.value = String(entry.value);
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = entry.color;
      const name = document.createElement("span");
      name.textContent = entry.name;
      li.append(swatch, name);
      list.append(li);
    }
  }

  function showBackdrop() {
    if (state.backdropLayer) {
      map.removeLayer(state.backdropLayer);
      state.backdropLayer = null;
    }
    state.backdropTilesLoaded = false;
    const run = state.run;
    const choice = document.querySelector("input[name=backdrop]:checked").value;
    if (!run || !run.backdrop || choice === "none") return;
    const layer = run.backdrop.layers.find((l) => l.name === choice);
    if (!layer) return;
    const query = `url=${encodeURIComponent(run.backdrop.url)}&${layer.query}`;
    const options = { zIndex: 1, maxZoom: 22, attribution: `Sentinel-2 ${run.backdrop.id}` };
    const bounds = runBounds(run);
    if (bounds) options.bounds = bounds;
    state.backdropLayer = L.tileLayer(tileUrl("stac", query), options);
    state.backdropLayer.on("load", () => { state.backdropTilesLoaded = true; });
    state.backdropLayer.on("tileerror", () => { state.tileErrors += 1; });
    state.backdropLayer.addTo(map);
  }

  async function selectRun(run) {
    state.run = run;
    state.classTilesLoaded = false;
    $("info").textContent = "Click the map to see the class.";
    $("info").dataset.state = "idle";
    if (state.classLayer) map.removeLayer(state.classLayer);
    const bounds = runBounds(run);
    if (bounds) map.fitBounds(bounds);

    try {
      state.legend = await getJSON(`legend?url=${encodeURIComponent(run.classes)}`);
      renderLegend(state.legend);
    } catch (err) {
      setStatus(`Legend: ${err.message}`, true);
      return;
    }

    const options = { zIndex: 2, opacity: opacity(), maxZoom: 22 };
    if (bounds) options.bounds = bounds;
    state.classLayer = L.tileLayer(tileUrl("cog", `url=${encodeURIComponent(run.classes)}`), options);
    state.classLayer.on("load", () => { state.classTilesLoaded = true; });
    state.classLayer.on("tileerror", () => { state.tileErrors += 1; });
    state.classLayer.addTo(map);

    $("aoa-row").hidden = !run.aoa;
    showAoa();
    $("backdrop-row").hidden = !run.backdrop;
    $("backdrop-info").textContent = run.backdrop
      ? `${run.backdrop.id} (${run.backdrop.datetime.slice(0, 10)})` : "";
    showBackdrop();
    setStatus(run.title + (run.model ? ` · model ${run.model}` : ""));
  }

  // The area of applicability: hatching over the pixels whose DI exceeds the model's threshold.
  function showAoa() {
    if (state.aoaLayer) {
      map.removeLayer(state.aoaLayer);
      state.aoaLayer = null;
    }
    state.aoaTilesLoaded = false;
    const run = state.run;
    if (!run || !run.aoa || !$("aoa-toggle").checked) return;
    const query = `url=${encodeURIComponent(run.aoa)}&threshold=${run.aoa_threshold}`;
    const options = { zIndex: 3, maxZoom: 22 };
    const bounds = runBounds(run);
    if (bounds) options.bounds = bounds;
    state.aoaLayer = L.tileLayer(`aoa/tiles/WebMercatorQuad/{z}/{x}/{y}.png?${query}`, options);
    state.aoaLayer.on("load", () => { state.aoaTilesLoaded = true; });
    state.aoaLayer.on("tileerror", () => { state.tileErrors += 1; });
    state.aoaLayer.addTo(map);
  }

  async function identify(latlng) {
    const run = state.run;
    const info = $("info");
    if (!run || !state.legend) return;
    info.dataset.state = "loading";
    info.textContent = "…";
    const point = `${latlng.lng},${latlng.lat}`;
    try {
      const response = await fetch(`cog/point/${point}?url=${encodeURIComponent(run.classes)}`);
      if (response.status === 404) {
        info.textContent = "Outside the map.";
        info.dataset.state = "outside";
        return;
      }
      const body = await response.json();
      if (!response.ok) throw new Error(body.detail || response.statusText);
      const value = body.values[0];
      const entry = state.legend.classes.find((c) => c.value === value);
      info.replaceChildren();
      info.classList.remove("error");
      const name = document.createElement("span");
      name.className = "class-name";
      name.textContent = value === null || value === undefined ? "No data" : entry ? entry.name : `value ${value}`;
      info.append(name);
      info.dataset.value = value === null || value === undefined ? "" : String(value);
      if (run.confidence && entry) {
        const conf = await fetch(`cog/point/${point}?url=${encodeURIComponent(run.confidence)}`);
        if (conf.ok) {
          const confBody = await conf.json();
          const c = confBody.values[0];
          if (c !== null && c !== undefined) {
            const text = document.createElement("span");
            text.className = "confidence";
            text.textContent = ` · confidence ${c} %`;
            info.append(text);
          }
        }
      }
      info.dataset.state = "done";
      L.popup().setLatLng(latlng).setContent(info.textContent).openOn(map);
    } catch (err) {
      info.textContent = `Error: ${err.message}`;
      info.dataset.state = "error";
      info.classList.add("error");
    }
  }

  async function start() {
    let runs = [];
    const url = params.get("url");
    try {
      if (url) {
        const run = { id: "url", title: url.split("/").pop(), classes: url, confidence: params.get("confidence"),
          item: null, bbox: null, datetime: null, model: null, backdrop: null };
        const feature = await getJSON(`cog/info.geojson?url=${encodeURIComponent(url)}`);
        run.bbox = feature.bbox;
        if (params.get("item")) run.backdrop = await getJSON(`backdrop?url=${encodeURIComponent(params.get("item"))}`);
        runs = [run];
      } else {
        runs = await getJSON("runs");
      }
    } catch (err) {
      setStatus(`Cannot load runs: ${err.message}`, true);
      return;
    }
    state.runs = runs;
    if (!runs.length) {
      setStatus("No runs found. Start the tiler with --runs DIR, or open /?url=PATH/classes.tif", true);
      return;
    }
    const select = $("run-select");
    for (const run of runs) {
      const option = document.createElement("option");
      option.value = run.id;
      option.textContent = run.datetime ? `${run.title} (${run.datetime.slice(0, 10)})` : run.title;
      select.append(option);
    }
    $("run-row").hidden = runs.length < 2;
    select.addEventListener("change", () => selectRun(runs.find((r) => r.id === select.value)));
    const wanted = runs.find((r) => r.id === params.get("run")) || runs[0];
    select.value = wanted.id;
    await selectRun(wanted);
  }

  $("opacity").addEventListener("input", () => {
    const value = opacity();
    $("opacity-value").textContent = `${Math.round(value * 100)} %`;
    if (state.classLayer) state.classLayer.setOpacity(value);
  });
  for (const radio of document.querySelectorAll("input[name=backdrop]")) {
    radio.addEventListener("change", showBackdrop);
  }
  $("aoa-toggle").addEventListener("change", showAoa);
  map.on("click", (event) => identify(event.latlng));
  start();
})();
