// lulc-stac web map: imagery backdrop, the class map with an opacity slider, its legend, click-to-identify,
// a run selector, a layer selector (classes, cleaned map, change, probabilities), a period slider with the
// class-area series when the run belongs to a series, and the area-of-applicability hatching. Talks only to
// this tiler (/runs, /legend, /cog, /stac, /backdrop, /aoa, /statistics/series); no other library.
// A tiler with a bearer token: the first 401 opens a small form for the token (or it comes from the address's
// #token=... fragment, removed at once); the page keeps it in sessionStorage and sends it as the Authorization
// header on every request, tiles included (fetched, then shown as blobs). Never in a URL.
"use strict";

(function () {
  const TMS = "WebMercatorQuad";
  const params = new URLSearchParams(window.location.search);
  const state = {
    runs: [],
    run: null,
    layer: null,
    legend: null,
    series: null,
    seriesUrl: null,
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
  const TOKEN_KEY = "lulc-tiler-token";
  let asking = null;  // the token form's pending answer, shared by every request refused meanwhile

  function storedToken() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  // #token=... in the address: keep it for the session and take it out of the address bar (and history).
  function tokenFromFragment() {
    const fragment = new URLSearchParams(window.location.hash.slice(1));
    const token = fragment.get("token");
    if (token === null) return;
    fragment.delete("token");
    const rest = fragment.toString();
    const address = window.location.pathname + window.location.search + (rest ? `#${rest}` : "");
    history.replaceState(history.state, "", address);
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
  }

  // The form asks until the user gives a token; `sent` is the refused one (null: none was sent).
  function askToken(sent) {
    if (!asking) {
      if (sent) sessionStorage.removeItem(TOKEN_KEY);
      const form = $("token-form");
      const message = $("token-message");
      message.textContent = sent ? "Wrong token: try again." : "This map needs an access token.";
      message.classList.toggle("error", Boolean(sent));
      form.hidden = false;
      $("token-input").value = "";
      $("token-input").focus();
      asking = new Promise((resolve) => {
        const submit = (event) => {
          event.preventDefault();
          const token = $("token-input").value.trim();
          if (!token) {
            message.textContent = "Enter the token.";
            message.classList.add("error");
            return;
          }
          sessionStorage.setItem(TOKEN_KEY, token);
          $("token-input").value = "";
          form.hidden = true;
          form.removeEventListener("submit", submit);
          asking = null;
          resolve();
        };
        form.addEventListener("submit", submit);
      });
    }
    return asking;
  }

  // fetch with the Authorization header when the page has a token; a 401 asks for one and tries again.
  async function authFetch(path, init) {
    for (;;) {
      const token = storedToken();
      let request = init;
      if (token) {
        const headers = new Headers(init && init.headers);
        headers.set("Authorization", `Bearer ${token}`);
        request = { ...init, headers };
      }
      const response = await fetch(path, request);
      if (response.status !== 401) return response;
      if (storedToken() !== token) continue;  // a new token came while this request was under way
      await askToken(token);
    }
  }

  // Tiles: plain images while the page has no token (as Leaflet loads them); with one, fetched with the
  // header and shown from a blob URL, revoked when the tile unloads. Errors give Leaflet's tileerror as before.
  const AuthTileLayer = L.TileLayer.extend({
    initialize(url, options) {
      L.TileLayer.prototype.initialize.call(this, url, options);
      this.on("tileunload tileabort", (event) => {
        const tile = event.tile;
        if (tile.lulcAbort) tile.lulcAbort.abort();
        if (tile.lulcBlobUrl) URL.revokeObjectURL(tile.lulcBlobUrl);
        tile.lulcAbort = tile.lulcBlobUrl = null;
      });
    },

    createTile(coords, done) {
      if (!storedToken()) {
        const plain = L.TileLayer.prototype.createTile.call(this, coords, done);
        plain.lulcUrl = plain.src;
        return plain;
      }
      const tile = document.createElement("img");
      tile.lulcUrl = this.getTileUrl(coords);
      tile.alt = "";
      L.DomEvent.on(tile, "load", L.Util.bind(this._tileOnLoad, this, done, tile));
      L.DomEvent.on(tile, "error", L.Util.bind(this._tileOnError, this, done, tile));
      const abort = new AbortController();
      tile.lulcAbort = abort;
      authFetch(tile.lulcUrl, { signal: abort.signal })
        .then((response) => {
          if (!response.ok) throw new Error(`tile ${response.status}`);
          return response.blob();
        })
        .then((blob) => {
          if (abort.signal.aborted) return;
          tile.lulcAbort = null;
          tile.lulcBlobUrl = URL.createObjectURL(blob);
          tile.src = tile.lulcBlobUrl;
        })
        .catch((err) => {
          if (!abort.signal.aborted) this._tileOnError(done, tile, err);
        });
      return tile;
    },
  });

  function tileLayer(url, options) {
    return new AuthTileLayer(url, options);
  }

  tokenFromFragment();
  const map = L.map("map", { zoomControl: true, attributionControl: true });
  window.lulcMap = map;
  map.setView([0, 0], 2);

  // What failed to draw, by layer ("classes", "aoa"): shown in the panel until that layer loads fine again.
  const problems = new Map();

  function setProblem(key, text) {
    if (text) problems.set(key, text);
    else problems.delete(key);
    const list = $("problems");
    list.replaceChildren();
    for (const [name, message] of problems) {
      const li = document.createElement("li");
      li.dataset.layer = name;
      li.textContent = message;
      list.append(li);
    }
    list.hidden = problems.size === 0;
  }

  function fileName(path) {
    return String(path || "").split("/").pop() || "the file";
  }

  // Why a request for `file` failed, in words (the server's GDAL text is no help to a reader of the map).
  function failure(status, detail, file) {
    if (status === 404 && /not found/i.test(detail)) return `${file} is missing on the server (moved or deleted?)`;
    if (status === 400 && /raster|read/i.test(detail)) return `${file} cannot be read (damaged or not a map)`;
    if (status === 429 || status === 503) return `the tiler is busy (HTTP ${status}); pan or zoom to try again`;
    if (status === 502 || status === 504) return `the server storing ${file} did not answer (HTTP ${status})`;
    if (status === 0) return "the tiler cannot be reached";
    return `the tiler refused it (HTTP ${status})`;
  }

  // The status and detail of a failed tile, asked again (an image's error event carries neither).
  async function tileFailure(url, file) {
    try {
      const response = await authFetch(url);
      if (response.ok) return null;  // it failed once, works now
      const body = await response.json().catch(() => ({}));
      const detail = typeof body.detail === "string" ? body.detail : "";
      if (response.status === 404 && /outside/i.test(detail)) return null;  // a tile beside the map: nothing
      return failure(response.status, detail, file);
    } catch (err) {
      return failure(0, "", file);
    }
  }

  // Count a layer's failed tiles, explain the first in the panel, and take the message back once a round
  // of tiles loads with no failed tile left at the zoom shown. Failures are kept per tile, not per round:
  // Leaflet starts no new round ("loading") while one is unfinished, so a count reset per round carried a
  // cut-short round's failures into the next. `current` tells whether the layer is still the one shown.
  function watchTiles(layer, key, what, file, current) {
    const failed = new Set();  // "z/x/y" of the tiles that failed and are still on the map
    const tileKey = (coords) => `${coords.z}/${coords.x}/${coords.y}`;
    let reported = false;
    layer.on("tileload tileunload tileabort", (event) => { failed.delete(tileKey(event.coords)); });
    layer.on("tileerror", (event) => {
      state.tileErrors += 1;
      failed.add(tileKey(event.coords));
      if (reported) return;
      reported = true;
      tileFailure(event.tile.lulcUrl || event.tile.src, file).then((reason) => {
        if (!current()) return;
        if (reason) setProblem(key, `${what}: ${reason}.`);
        else reported = false;
      });
    });
    layer.on("load", () => {
      // the zoom whose tiles loaded: Leaflet's tile zoom, which changes as a zoom starts (getZoom() only as
      // its animation ends, so a round from the cache could end under the zoom left)
      const zoom = `${layer._tileZoom ?? Math.round(map.getZoom())}/`;
      if (current() && ![...failed].some((tile) => tile.startsWith(zoom))) {
        reported = false;
        setProblem(key, null);
      }
    });
  }

  function setStatus(text, isError) {
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", Boolean(isError));
  }

  async function getJSON(path) {
    const response = await authFetch(path);
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

  function renderRamp() {
    const list = $("legend");
    list.replaceChildren();
    const li = document.createElement("li");
    const ramp = document.createElement("span");
    ramp.className = "ramp";
    const text = document.createElement("span");
    text.textContent = "0 – 100 %";
    li.append(ramp, text);
    list.append(li);
    renderLegendExtras();
  }

  // Below the classes: what the map's other marks mean (no data; the AOA hatching while it is shown).
  function renderLegendExtras() {
    const list = $("legend");
    for (const old of list.querySelectorAll("li[data-extra]")) old.remove();
    const extra = (key, swatchClass, text) => {
      const li = document.createElement("li");
      li.dataset.extra = key;
      const swatch = document.createElement("span");
      swatch.className = `swatch ${swatchClass}`;
      const label = document.createElement("span");
      label.textContent = text;
      li.append(swatch, label);
      list.append(li);
    };
    extra("nodata", "nodata", "No data (no class: clouds, no imagery, outside the area): not drawn");
    if (state.run && state.run.aoa && $("aoa-toggle").checked) {
      extra("aoa", "hatch", "Hatched: outside the area of applicability (the model extrapolates)");
    }
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
    renderLegendExtras();
  }

  function escapeHtml(text) {
    const holder = document.createElement("span");
    holder.textContent = text;
    return holder.innerHTML;
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
    const image = run.backdrop.endpoint === "cog";
    const source = image ? `input image ${run.backdrop.id}` : `Sentinel-2 ${run.backdrop.id}`;
    // Leaflet puts attributions in as HTML: an item id or file name is text, so escape it
    const options = { zIndex: 1, maxZoom: 22, attribution: escapeHtml(source) };
    const bounds = runBounds(run);
    if (bounds) options.bounds = bounds;
    state.backdropLayer = tileLayer(tileUrl(image ? "cog" : "stac", query), options);
    state.backdropLayer.on("load", () => { state.backdropTilesLoaded = true; });
    state.backdropLayer.on("tileerror", () => { state.tileErrors += 1; });
    state.backdropLayer.addTo(map);
  }

  function layersOf(run) {
    if (run.layers && run.layers.length) return run.layers;
    return [{ id: "classes", kind: "classes", title: "Classes", url: run.classes, item: run.item, band: null }];
  }

  function layerQuery(layer) {
    const url = `url=${encodeURIComponent(layer.url)}`;
    if (layer.kind === "probability") return `${url}&bidx=${layer.band}&rescale=0,100&colormap_name=viridis`;
    return url;
  }

  // The map shown over the imagery: the run's classes, a product of it, or one class's probability.
  async function showLayer(layer) {
    const run = state.run;
    state.layer = layer;
    state.classTilesLoaded = false;
    if (state.classLayer) map.removeLayer(state.classLayer);
    state.classLayer = null;
    setProblem("classes", null);
    $("layer-select").value = layer.id;
    map.closePopup();  // the last click's answer was about the map shown before
    $("info").textContent = "Click the map to see the class.";
    $("info").dataset.state = "idle";
    if (layer.kind === "probability") {
      state.legend = null;
      renderRamp();
    } else {
      try {
        state.legend = await getJSON(`legend?url=${encodeURIComponent(layer.url)}`);
        renderLegend(state.legend);
      } catch (err) {
        setStatus(`Legend: ${err.message}`, true);
        return false;
      }
    }
    if (state.layer !== layer) return false;  // another layer was chosen meanwhile
    setStatus(runTitle(run));  // the legend loads: a failure to load one before is over
    const options = { zIndex: 2, opacity: opacity(), maxZoom: 22 };
    const bounds = runBounds(run);
    if (bounds) options.bounds = bounds;
    const classLayer = tileLayer(tileUrl("cog", layerQuery(layer)), options);
    state.classLayer = classLayer;
    classLayer.on("load", () => { state.classTilesLoaded = true; });
    watchTiles(classLayer, "classes", `The map (${layer.title}) could not be drawn`, fileName(layer.url),
      () => state.classLayer === classLayer);
    classLayer.addTo(map);
    return true;
  }

  async function selectRun(run, keepView) {
    const previous = state.layer;
    if (state.run && state.run !== run) setProblem("run", null);  // a run was chosen: the ?run= note is done
    state.run = run;
    const bounds = runBounds(run);
    if (bounds && !keepView) map.fitBounds(bounds);
    $("run-select").value = run.id;

    const layers = layersOf(run);
    const select = $("layer-select");
    select.replaceChildren();
    for (const layer of layers) {
      const option = document.createElement("option");
      option.value = layer.id;
      option.textContent = layer.title;
      select.append(option);
    }
    $("layer-row").hidden = layers.length < 2;
    // the same kind of layer as before (stepping through a series keeps the cleaned map or the change)
    const same = previous && (layers.find((l) => l.id === previous.id) || layers.find((l) => l.kind === previous.kind));
    if (!(await showLayer(same || layers[0]))) return;

    $("aoa-row").hidden = !run.aoa;
    showAoa();
    $("backdrop-row").hidden = !run.backdrop;
    $("backdrop-info").textContent = run.backdrop
      ? `${run.backdrop.id} (${run.backdrop.datetime.slice(0, 10)})` : "";
    showBackdrop();
    showSeries(run);
    setStatus(runTitle(run));
  }

  function runTitle(run) {
    return run.title + (run.model ? ` · model ${run.model}` : "");
  }

  // A run that is one period of a series: a slider over the periods and the class areas of each period.
  function showSeries(run) {
    const series = run.series;
    $("series-row").hidden = !series;
    if (!series) return;
    const slider = $("period-slider");
    const index = series.periods.findIndex((p) => p.run === run.id);
    slider.max = String(series.periods.length - 1);
    slider.value = String(index);
    $("period-value").textContent = series.periods[index].period;
    if (state.seriesUrl !== series.url) {
      state.seriesUrl = series.url;
      state.series = null;
      loadSeries(run, series);
    } else {
      renderSeries();
    }
  }

  // The one box every period's areas are counted in, whichever period the page opened: all the periods'
  // maps (each run's bbox can be its own data's footprint), else the opened run's when one crosses ±180°.
  function seriesBox(run, series) {
    const boxes = series.periods.map((p) => state.runs.find((r) => r.id === p.run)).filter((r) => r && r.bbox)
      .map((r) => r.bbox);
    if (!boxes.length || boxes.some(([w, , e]) => w > e)) return run.bbox || [-180, -90, 180, 90];
    return [Math.min(...boxes.map((b) => b[0])), Math.min(...boxes.map((b) => b[1])),
      Math.max(...boxes.map((b) => b[2])), Math.max(...boxes.map((b) => b[3]))];
  }

  async function loadSeries(run, series) {
    $("series-table").replaceChildren();
    const [w, s, e, n] = seriesBox(run, series);
    const ring = (west, east) => [[[west, s], [east, s], [east, n], [west, n], [west, s]]];
    // a bbox whose west is east of its east crosses the antimeridian (STAC, RFC 7946): split it at ±180°
    const polygon = w <= e
      ? { type: "Polygon", coordinates: ring(w, e) }
      : { type: "MultiPolygon", coordinates: [ring(w, 180), ring(-180, e)] };
    try {
      const response = await authFetch(`statistics/series?url=${encodeURIComponent(series.url)}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(polygon),
      });
      const body = await response.json();
      if (!response.ok) throw new Error(`${response.status}: ${body.detail}`);
      if (state.seriesUrl !== series.url) return;
      state.series = body;
      renderSeries();
    } catch (err) {
      setStatus(`Class areas: ${err.message}`, true);
    }
  }

  function renderSeries() {
    const table = $("series-table");
    table.replaceChildren();
    const body = state.series;
    if (!body || !body.periods.length) return;
    const current = $("period-value").textContent;
    const head = document.createElement("tr");
    const corner = document.createElement("th");
    corner.textContent = "ha";
    head.append(corner);
    for (const period of body.periods) {
      const th = document.createElement("th");
      th.textContent = period.period;
      if (period.period === current) th.className = "current";
      head.append(th);
    }
    table.append(head);
    const addRow = (label, value, hectaresOf) => {
      const tr = document.createElement("tr");
      tr.dataset.value = value;
      const name = document.createElement("td");
      name.textContent = label;
      tr.append(name);
      for (const period of body.periods) {
        const td = document.createElement("td");
        td.textContent = hectaresOf(period.statistics).toFixed(1);
        if (period.period === current) td.className = "current";
        tr.append(td);
      }
      table.append(tr);
      return tr;
    };
    body.periods[0].statistics.classes.forEach((entry, row) => {
      addRow(entry.name, String(entry.value), (stats) => stats.classes[row].hectares);
    });
    // pixels without a class (clouds, no imagery): a gap in a period's map, not land cover lost
    const nodata = (stats) => (stats.nodata_pixels * stats.pixel_area_m2) / 10000;
    addRow("No data", "nodata", nodata).className = "nodata";
    addRow("Total", "total", (stats) => stats.hectares + nodata(stats)).className = "total";
  }

  // The area of applicability: hatching over the pixels whose DI exceeds the model's threshold.
  function showAoa() {
    if (state.aoaLayer) {
      map.removeLayer(state.aoaLayer);
      state.aoaLayer = null;
    }
    setProblem("aoa", null);
    state.aoaTilesLoaded = false;
    renderLegendExtras();
    const run = state.run;
    if (!run || !run.aoa || !$("aoa-toggle").checked) return;
    const query = `url=${encodeURIComponent(run.aoa)}&threshold=${run.aoa_threshold}`;
    const options = { zIndex: 3, maxZoom: 22 };
    const bounds = runBounds(run);
    if (bounds) options.bounds = bounds;
    const aoaLayer = tileLayer(`aoa/tiles/WebMercatorQuad/{z}/{x}/{y}.png?${query}`, options);
    state.aoaLayer = aoaLayer;
    aoaLayer.on("load", () => { state.aoaTilesLoaded = true; });
    watchTiles(aoaLayer, "aoa", "The area-of-applicability hatching could not be drawn, so the map does not show "
      + "where the model extrapolates", fileName(run.aoa), () => state.aoaLayer === aoaLayer);
    aoaLayer.addTo(map);
  }

  // Whether the model applies at the clicked pixel: its DI against the run's AOA threshold, from aoa.tif.
  async function aoaNote(point, run) {
    const note = document.createElement("span");
    note.className = "aoa";
    const threshold = run.aoa_threshold;
    try {
      const response = await authFetch(`aoa/point/${point}?url=${encodeURIComponent(run.aoa)}&threshold=${threshold}`);
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        const detail = typeof body.detail === "string" ? body.detail : "";
        throw new Error(failure(response.status, detail, fileName(run.aoa)));
      }
      if (body.inside === null || body.inside === undefined) {
        note.textContent = " · no area-of-applicability value here";
      } else if (body.inside) {
        note.textContent = ` · inside the area of applicability (DI ${body.di.toFixed(2)} ≤ threshold ${threshold.toFixed(2)})`;
      } else {
        note.textContent = ` · OUTSIDE the area of applicability (DI ${body.di.toFixed(2)} > threshold `
          + `${threshold.toFixed(2)}): the model extrapolates here`;
        note.classList.add("outside");
      }
      note.dataset.inside = String(body.inside);
    } catch (err) {
      note.textContent = ` · area of applicability unknown: ${err.message}`;
      note.dataset.inside = "unknown";
    }
    return note;
  }

  async function identify(latlng) {
    const run = state.run;
    const layer = state.layer;
    const info = $("info");
    if (!run || !layer || (!state.legend && layer.kind !== "probability")) return;
    info.dataset.state = "loading";
    info.textContent = "…";
    const point = `${latlng.lng},${latlng.lat}`;
    try {
      // a bbox across ±180° is no Leaflet box to test a point against: the tiler tells
      const bounds = run.bbox && run.bbox[0] <= run.bbox[2] ? runBounds(run) : null;
      const response = bounds && !bounds.contains(latlng) ? null
        : await authFetch(`cog/point/${point}?${layerQuery(layer)}`);
      const body = response ? await response.json().catch(() => ({})) : {};
      const detail = typeof body.detail === "string" ? body.detail : "";
      if (!response || (response.status === 404 && /outside/i.test(detail))) {
        info.textContent = "Outside the map.";
        info.dataset.state = "outside";
        return;
      }
      if (!response.ok) throw new Error(`${failure(response.status, detail, fileName(layer.url))}.`);
      const value = body.values[0];
      const entry = state.legend ? state.legend.classes.find((c) => c.value === value) : null;
      info.replaceChildren();
      info.classList.remove("error");
      const name = document.createElement("span");
      name.className = "class-name";
      const missing = value === null || value === undefined;
      if (layer.kind === "probability") {
        name.textContent = missing ? "No data" : `${layer.title.replace("Probability: ", "")}: ${value} %`;
      } else {
        name.textContent = missing ? "No data" : entry ? entry.name : `value ${value}`;
      }
      info.append(name);
      info.dataset.value = missing ? "" : String(value);
      if (run.confidence && entry && layer.kind === "classes") {
        const conf = await authFetch(`cog/point/${point}?url=${encodeURIComponent(run.confidence)}`);
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
      if (run.aoa && !missing) info.append(await aoaNote(point, run));
      if (state.layer !== layer) return;  // another layer or run was chosen meanwhile: its panel is reset
      info.dataset.state = "done";
      // a string would be taken as HTML (class titles come from the item): give Leaflet a text node
      L.popup().setLatLng(latlng).setContent(document.createTextNode(info.textContent)).openOn(map);
    } catch (err) {
      info.textContent = `Cannot tell: ${err.message}`;
      info.dataset.state = "error";
      info.classList.add("error");
    }
  }

  async function start() {
    let runs = [];
    let runsFolder = null;
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
        const response = await authFetch("runs");
        runsFolder = response.headers.get("X-Lulc-Runs-Folder");
        runs = await response.json().catch(() => null);
        if (!response.ok || !Array.isArray(runs)) {
          const detail = runs && typeof runs.detail === "string" ? runs.detail : response.statusText;
          throw new Error(`${response.status}: ${detail}`);
        }
      }
    } catch (err) {
      setStatus(`Cannot load runs: ${err.message}`, true);
      return;
    }
    state.runs = runs;
    if (!runs.length) {
      setStatus(runsFolder === "set"
        ? "No runs found in this tiler's runs folder (a run is a folder holding classes.tif and item.json). "
          + "Classify into it, or open /?url=PATH/classes.tif"
        : "This tiler has no runs folder: start it with --runs DIR, or open /?url=PATH/classes.tif", true);
      return;
    }
    const select = $("run-select");
    for (const run of runs) {
      const option = document.createElement("option");
      option.value = run.id;
      option.textContent = `${run.id} · ${run.title}`;
      select.append(option);
    }
    $("run-row").hidden = runs.length < 2;
    select.addEventListener("change", () => selectRun(runs.find((r) => r.id === select.value)));
    const asked = params.get("run");
    const wanted = runs.find((r) => r.id === asked) || runs[0];
    if (asked !== null && wanted.id !== asked) {
      setProblem("run", `There is no run "${asked}" here: showing ${wanted.id} instead`
        + (runs.length > 1 ? " (choose one in the Run list)." : "."));
    }
    select.value = wanted.id;
    await selectRun(wanted);
  }

  // The panel folds to its title, status and problems (a phone's screen is mostly panel otherwise); the map
  // then ends where the panel begins, so Leaflet keeps popups in the part that can be seen.
  function layout() {
    const phone = window.matchMedia("(max-width: 600px)").matches;
    const collapsed = document.body.classList.contains("panel-collapsed");
    $("map").style.bottom = phone && collapsed ? `${$("panel").offsetHeight}px` : "";
    map.invalidateSize();
  }

  function setPanel(open) {
    document.body.classList.toggle("panel-collapsed", !open);
    $("panel-toggle").textContent = open ? "Hide panel" : "Show panel";
    $("panel-toggle").setAttribute("aria-expanded", String(open));
    layout();
  }

  $("panel-toggle").addEventListener("click", () => setPanel(document.body.classList.contains("panel-collapsed")));
  window.addEventListener("resize", layout);
  new ResizeObserver(layout).observe($("panel"));  // a message in the folded panel changes its height
  $("opacity").addEventListener("input", () => {
    const value = opacity();
    $("opacity-value").textContent = `${Math.round(value * 100)} %`;
    if (state.classLayer) state.classLayer.setOpacity(value);
  });
  for (const radio of document.querySelectorAll("input[name=backdrop]")) {
    radio.addEventListener("change", showBackdrop);
  }
  $("aoa-toggle").addEventListener("change", showAoa);
  $("layer-select").addEventListener("change", () => {
    const layer = layersOf(state.run).find((l) => l.id === $("layer-select").value);
    if (layer) showLayer(layer);
  });
  $("period-slider").addEventListener("input", () => {
    const series = state.run && state.run.series;
    if (!series) return;
    const period = series.periods[parseInt($("period-slider").value, 10)];
    const run = state.runs.find((r) => r.id === period.run);
    if (run && run !== state.run) selectRun(run, true);
  });
  map.on("click", (event) => identify(event.latlng));
  start();
})();
