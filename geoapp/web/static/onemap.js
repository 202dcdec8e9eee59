/*
 * The one map in the browser: fetch each visible layer from the query API for the current view,
 * draw it styled by status, and add the legend, search box and measuring tool. For editors (the
 * server marks each layer `editable` in the config; the script never guesses roles) popups get a
 * status form and a shape editor, and the map gets Leaflet.draw's tools to add features.
 *
 * Every value from the data reaches the page through textContent or DOM nodes, never as HTML,
 * so a feature named "<img src=x onerror=alert(1)>" or "${alert(1)}" shows as text.
 */
(function () {
  "use strict";

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.appendChild(c));
    return node;
  }

  // Coordinates: the API speaks WGS84; a GCJ-02 basemap (Amap) needs overlays shifted onto it.
  function makeShift(gcj02) {
    if (!gcj02) {
      const same = (lng, lat) => [lng, lat];
      return { toMap: same, toData: same, geojson: (g) => g, geojsonToData: (g) => g };
    }
    const toMap = (lng, lat) => gcoord.transform([lng, lat], gcoord.WGS84, gcoord.GCJ02);
    const toData = (lng, lat) => gcoord.transform([lng, lat], gcoord.GCJ02, gcoord.WGS84);
    return {
      toMap,
      toData,
      geojson: (g) => gcoord.transform(g, gcoord.WGS84, gcoord.GCJ02),
      geojsonToData: (g) => gcoord.transform(g, gcoord.GCJ02, gcoord.WGS84),
    };
  }

  function formatValue(field, value, lang) {
    if (value === null || value === undefined || value === "") return "—";
    if (field.values) {
      const choice = field.values.find((c) => c.value === value);
      if (choice) return choice.label;
    }
    if (field.type === "boolean") return value ? field.yes : field.no;
    if (field.type === "number") {
      value = Number(value).toLocaleString(lang === "en" ? "en" : "zh-CN", { maximumFractionDigits: 2 });
    }
    return field.unit ? `${value} ${field.unit}` : String(value);
  }

  function titleOf(layer, feature) {
    const title = (feature.properties || {})[layer.titleField];
    return title === null || title === undefined ? `#${feature.id}` : String(title);
  }

  function popupContent(apiLayer, feature) {
    const { layer, cfg } = apiLayer;
    const props = feature.properties || {};
    const rows = layer.popup
      .filter((name) => layer.fields[name])
      .map((name) => {
        const field = layer.fields[name];
        return el("tr", {}, [el("th", { text: field.label }), el("td", { text: formatValue(field, props[name], cfg.lang) })]);
      });
    if (props.distance_m !== undefined) {
      rows.push(el("tr", {}, [el("th", { text: cfg.text.distance }), el("td", { text: `${props.distance_m} m` })]));
    }
    const link = el("a", { href: `${cfg.featurePage}${layer.id}/${feature.id}`, class: "geoapp-archive-link", text: cfg.text.archive });
    const parts = [
      el("div", { class: "geoapp-popup-layer", text: layer.title }),
      el("h3", { text: titleOf(layer, feature) }),
      el("table", {}, rows),
      link,
    ];
    if (layer.editable) parts.push(popupEditor(apiLayer, feature));
    return el("div", { class: "geoapp-popup" }, parts);
  }

  // -- writing through the API ------------------------------------------------------------------

  /** Send a change; resolve to {ok, status, payload} whatever happens, so that callers only branch. */
  async function sendFeature(cfg, method, url, body, version) {
    const headers = { "Content-Type": "application/json", Accept: "application/geo+json", "X-CSRFToken": cfg.csrf };
    // the version the editor saw: the server refuses the change (409) if someone else saved since
    if (version !== undefined) headers["If-Match"] = `"${version}"`;
    try {
      const response = await fetch(url, { method, headers, body: JSON.stringify(body), credentials: "same-origin" });
      const payload = await response.json().catch(() => null);
      return { ok: response.ok, status: response.status, payload };
    } catch (err) {
      return { ok: false, status: 0, payload: null };
    }
  }

  /** What to tell the editor about a failed write, in the page's language where we can. */
  function failureText(cfg, result) {
    if (result.status === 409) return cfg.text.conflict;
    if (result.status === 401) return cfg.text.signInAgain;
    if (result.status === 403) return cfg.text.notAllowed;
    const error = result.payload && result.payload.error;
    const detail = error ? error.message : result.status ? `HTTP ${result.status}` : cfg.text.unreachable;
    return cfg.text.saveFailed.replace("{message}", detail);
  }

  function featureUrl(cfg, layerId, fid) {
    return `${cfg.api}/layers/${encodeURIComponent(layerId)}/features${fid === undefined ? "" : `/${fid}`}`;
  }

  function say(node, text, kind) {
    node.textContent = text;
    node.dataset.kind = kind;
  }

  function button(text, onClick, attrs) {
    const node = el("button", { type: "button", ...attrs, text });
    node.addEventListener("click", onClick);
    return node;
  }

  function choiceSelect(field, value, attrs) {
    const options = field.values.map((c) => el("option", { value: c.value, text: c.label }));
    const select = el("select", { name: field.name, ...attrs }, options);
    select.value = value === null || value === undefined ? "" : value;
    return select;
  }

  // -- editing in a feature's popup ----------------------------------------------------------------

  /** The popup's edit block: the status as a select with Save, a shape editor button, a message line. */
  function popupEditor(apiLayer, feature) {
    const { layer, cfg } = apiLayer;
    const message = el("p", { class: "geoapp-edit-message", role: "status" });
    const note = apiLayer.takeNote(feature.id);
    if (note) say(message, note.text, note.kind);
    const parts = [];
    const status = layer.statusField && layer.fields[layer.statusField];
    if (status && status.values) parts.push(...statusEditor(apiLayer, feature, status, message));
    // Leaflet.draw reshapes single shapes; a multi-part feature keeps its shape from the API's clients
    if (cfg.editor && !feature.geometry.type.startsWith("Multi")) {
      parts.push(button(cfg.text.editShape, () => cfg.editor.start(apiLayer, feature), { class: "geoapp-edit-shape" }));
    }
    return el("div", { class: "geoapp-edit" }, [...parts, message]);
  }

  function statusEditor(apiLayer, feature, field, message) {
    const select = choiceSelect(field, feature.properties[field.name], { class: "geoapp-status-select" });
    const save = button(
      apiLayer.cfg.text.save,
      async () => {
        save.disabled = true;
        say(message, apiLayer.cfg.text.saving, "busy");
        const failed = await apiLayer.save(feature, { properties: { [field.name]: select.value } });
        if (failed) say(message, failed, "error");
        save.disabled = false;
      },
      { class: "geoapp-save" },
    );
    return [el("label", {}, [el("span", { text: `${field.label} ` }), select]), save];
  }

  function colourOf(layer, feature) {
    const value = layer.styleField ? (feature.properties || {})[layer.styleField] : null;
    return (value !== null && layer.colours[value]) || layer.style.color;
  }

  function pointStyle(layer, feature) {
    return { radius: layer.style.radius, color: "#ffffff", weight: 1.5, fillColor: colourOf(layer, feature), fillOpacity: 0.95 };
  }

  function shapeStyle(layer, feature) {
    const colour = colourOf(layer, feature);
    return { color: colour, weight: layer.style.weight, fillColor: colour, fillOpacity: layer.style.fill_opacity };
  }

  class ApiLayer {
    constructor(map, group, layer, cfg, shift) {
      Object.assign(this, { map, group, layer, cfg, shift });
      this.count = 0;
      this.loading = false;
      this.matched = 0;
      this.requests = 0;
      this.controller = null;
      this.openId = null; // the feature whose popup is open, reopened after a refetch
      this.kept = null; // that popup's content, kept while the feature is unchanged
      this.note = null; // a message for a feature's next popup: saved, or changed by someone else
      this.editingId = null; // the feature being reshaped, drawn by the shape editor instead
      this.target = layer.style.cluster
        ? L.markerClusterGroup({ chunkedLoading: true, disableClusteringAtZoom: 18, showCoverageOnHover: false })
        : L.featureGroup();
      this.target.addTo(group);
    }

    visible() {
      return this.map.hasLayer(this.group);
    }

    bboxParam() {
      const b = this.map.getBounds().pad(0.1);
      const [w, s] = this.shift.toData(Math.max(b.getWest(), -180), Math.max(b.getSouth(), -90));
      const [e, n] = this.shift.toData(Math.min(b.getEast(), 180), Math.min(b.getNorth(), 90));
      return [w, s, e, n].map((v) => Math.min(Math.max(v, -180), 180).toFixed(6)).join(",");
    }

    /** Fetch the layer for the view; ``force`` refetches an unchanged view (after a change was saved). */
    async refresh(force) {
      if (!this.visible()) return;
      const bbox = this.bboxParam();
      if (bbox === this.bbox && !force) return; // this view is already drawn or on its way
      this.bbox = bbox;
      if (this.controller) this.controller.abort();
      this.controller = new AbortController();
      const url = `${this.cfg.api}/layers/${this.layer.id}/features?bbox=${bbox}&limit=${this.cfg.limit}`;
      this.requests += 1;
      this.loading = true;
      let payload;
      try {
        const response = await fetch(url, { signal: this.controller.signal, headers: { Accept: "application/geo+json" } });
        if (!response.ok) throw new Error(`${response.status}`);
        payload = await response.json();
      } catch (err) {
        if (err.name === "AbortError") return;
        this.loading = false;
        this.bbox = null; // try again on the next move
        this.cfg.status(`${this.layer.title}: ${this.cfg.text.loadFailed}`);
        return;
      }
      this.draw(payload);
      this.loading = false;
    }

    draw(payload) {
      const layer = this.layer;
      const geo = L.geoJSON(this.shift.geojson(payload), {
        filter: (feature) => feature.id !== this.editingId,
        pointToLayer: (feature, latlng) => L.circleMarker(latlng, pointStyle(layer, feature)),
        style: (feature) => (feature.geometry.type.endsWith("Point") ? pointStyle(layer, feature) : shapeStyle(layer, feature)),
        onEachFeature: (feature, item) => {
          item.bindPopup(() => this.popupFor(feature), { maxWidth: 360 });
          item.bindTooltip(el("span", { text: titleOf(layer, feature) }), { sticky: true });
          item.on("popupopen", () => (this.openId = feature.id));
          item.on("popupclose", () => {
            if (!this.redrawing) this.forget();
          });
        },
      });
      const reopen = this.note ? this.note.id : this.openId;
      this.redrawing = true; // removing the old items closes their popups: that is not the user closing them
      this.target.clearLayers();
      if (layer.style.cluster) this.target.addLayers(geo.getLayers());
      else geo.getLayers().forEach((item) => this.target.addLayer(item));
      this.redrawing = false;
      this.openId = null;
      this.cfg.restack(layer.id);
      if (reopen !== null && !this.open(reopen)) {
        this.forget(); // it left the view, or was removed: the status line has the news
        this.note = null;
      }
      this.count = payload.numberReturned;
      this.matched = payload.numberMatched;
      if (this.matched > this.count) this.cfg.status(`${layer.title}: ${this.cfg.text.tooMany}`);
      this.map.fire("geoapp:drawn", { layer: layer.id, count: this.count });
    }

    find(id) {
      return this.target.getLayers().find((item) => item.feature && item.feature.id === id);
    }

    /** Open a feature's popup, zooming into its cluster if it is in one; false if it is not drawn. */
    open(id) {
      const item = this.find(id);
      if (!item) return false;
      if (this.map.hasLayer(item) || !this.target.zoomToShowLayer) item.openPopup();
      else this.target.zoomToShowLayer(item, () => item.openPopup());
      return true;
    }

    /**
     * A feature's popup content. A refetch (the view moved, or another feature was saved) redraws
     * every item; the open popup then comes back with the same content, so a half-made choice is
     * kept, unless the feature changed or there is news about it.
     */
    popupFor(feature) {
      const kept = this.kept;
      if (kept && !this.note && kept.id === feature.id && kept.version === feature.version) return kept.node;
      const node = popupContent(this, feature);
      this.kept = { id: feature.id, version: feature.version, node };
      return node;
    }

    forget() {
      this.openId = null;
      this.kept = null;
    }

    takeNote(id) {
      if (!this.note || this.note.id !== id) return null;
      const note = this.note;
      this.note = null;
      return note;
    }

    /** Refetch the layer and reopen the feature's popup with a message (or show it on the status line). */
    reload(id, text, kind) {
      this.note = { id, text, kind };
      this.cfg.status(text);
      if (!this.visible()) this.map.addLayer(this.group);
      this.refresh(true);
    }

    /** PATCH a feature at the version it was read; null on success, else the message to show. */
    async save(feature, body) {
      const result = await sendFeature(this.cfg, "PATCH", featureUrl(this.cfg, this.layer.id, feature.id), body, feature.version);
      if (result.ok) this.reload(feature.id, this.cfg.text.saved, "ok");
      else if (result.status === 409) this.reload(feature.id, this.cfg.text.conflict, "conflict");
      else return failureText(this.cfg, result);
      return null;
    }
  }

  function legendControl(cfg) {
    const control = L.control({ position: "bottomleft" });
    control.onAdd = () => {
      const box = el("div", { class: "geoapp-legend leaflet-bar" }, [el("h4", { text: cfg.text.legend })]);
      cfg.layers.forEach((layer) => {
        const entries = Object.entries(layer.legend);
        const block = el("div", { class: "geoapp-legend-layer", "data-layer": layer.id }, [
          el("div", { class: "geoapp-legend-title", text: layer.title }),
        ]);
        (entries.length ? entries : [[layer.title, layer.style.color]]).forEach(([label, colour]) => {
          const swatch = el("i", { class: `geoapp-swatch geoapp-swatch-${layer.kind}` });
          swatch.style.background = colour;
          block.appendChild(el("div", { class: "geoapp-legend-row" }, [swatch, el("span", { text: label })]));
        });
        box.appendChild(block);
      });
      L.DomEvent.disableScrollPropagation(box);
      return box;
    };
    return control;
  }

  function searchControl(map, cfg, layers, shift) {
    const control = L.control({ position: "topright" });
    control.onAdd = () => {
      const input = el("input", { type: "search", placeholder: cfg.text.searchPlaceholder, "aria-label": cfg.text.search });
      const list = el("ul", { class: "geoapp-search-results" });
      const box = el("div", { class: "geoapp-search leaflet-bar" }, [input, list]);
      let timer = null;
      const run = async () => {
        const q = input.value.trim();
        list.replaceChildren();
        if (!q) return;
        const response = await fetch(`${cfg.api}/search?q=${encodeURIComponent(q)}&limit=20`);
        const payload = await response.json();
        if (!response.ok || !payload.results.length) {
          list.appendChild(el("li", { class: "geoapp-search-empty", text: cfg.text.noResults }));
          return;
        }
        payload.results.forEach((hit) => {
          const layer = layers[hit.layer];
          const item = el("li", { tabindex: "0" }, [
            el("span", { class: "geoapp-search-title", text: hit.title }),
            el("span", { class: "geoapp-search-layer", text: layer ? layer.layer.title : hit.layer }),
          ]);
          const go = () => {
            const [lng, lat] = shift.toMap(hit.lon, hit.lat);
            // the feature is drawn once its layer has been fetched for the new view
            const onDrawn = (e) => {
              if (e.layer !== hit.layer) return;
              map.off("geoapp:drawn", onDrawn);
              if (layer) layer.open(hit.id);
            };
            map.on("geoapp:drawn", onDrawn);
            if (layer && !map.hasLayer(layer.group)) map.addLayer(layer.group);
            map.setView([lat, lng], Math.max(map.getZoom(), 17));
          };
          item.addEventListener("click", go);
          item.addEventListener("keydown", (e) => e.key === "Enter" && go());
          list.appendChild(item);
        });
      };
      input.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(run, 250);
      });
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      return box;
    };
    return control;
  }

  // Geodesic measures on the sphere (metres), good to a few tenths of a percent at district scale.
  function pathLength(map, points) {
    let total = 0;
    for (let i = 1; i < points.length; i += 1) total += map.distance(points[i - 1], points[i]);
    return total;
  }

  function sphericalArea(points) {
    const R = 6371008.8;
    const rad = Math.PI / 180;
    let area = 0;
    for (let i = 0; i < points.length; i += 1) {
      const p1 = points[i];
      const p2 = points[(i + 1) % points.length];
      area += (p2.lng - p1.lng) * rad * (2 + Math.sin(p1.lat * rad) + Math.sin(p2.lat * rad));
    }
    return Math.abs((area * R * R) / 2);
  }

  function measureControl(map, cfg, shift) {
    const control = L.control({ position: "topleft" });
    control.onAdd = () => {
      const button = el("a", { href: "#", role: "button", title: cfg.text.measure, class: "geoapp-measure-button" }, [
        el("i", { class: "fa-solid fa-ruler" }),
      ]);
      const readout = el("div", { class: "geoapp-measure-readout" });
      const box = el("div", { class: "leaflet-bar geoapp-measure" }, [button, readout]);
      let active = false;
      let points = [];
      const drawn = L.featureGroup().addTo(map);
      const show = () => {
        // measure in the data's coordinates (WGS84), whatever the basemap's shift
        const data = points.map((p) => L.latLng(shift.toData(p.lng, p.lat).reverse()));
        const length = pathLength(map, data);
        let text = `${cfg.text.length}: ${length >= 1000 ? (length / 1000).toFixed(3) + " km" : length.toFixed(1) + " m"}`;
        if (data.length > 2) text += ` · ${cfg.text.area}: ${Math.round(sphericalArea(data)).toLocaleString()} m²`;
        readout.textContent = points.length ? text : cfg.text.measureHint;
      };
      const onClick = (e) => {
        points.push(e.latlng);
        drawn.clearLayers();
        L.polyline(points, { color: "#d81b60", weight: 3, dashArray: "6 4" }).addTo(drawn);
        points.forEach((p) => L.circleMarker(p, { radius: 4, color: "#d81b60" }).addTo(drawn));
        show();
      };
      L.DomEvent.on(button, "click", (e) => {
        L.DomEvent.preventDefault(e);
        active = !active;
        box.classList.toggle("active", active);
        // while measuring, clicks go to the map, not to the features under them
        map.getContainer().classList.toggle("geoapp-measuring", active);
        map.closePopup();
        points = [];
        drawn.clearLayers();
        readout.textContent = active ? cfg.text.measureHint : "";
        if (active) map.on("click", onClick);
        else map.off("click", onClick);
      });
      L.DomEvent.disableClickPropagation(box);
      return box;
    };
    return control;
  }

  function statusLine(map) {
    const control = L.control({ position: "bottomleft" });
    let node;
    let timer;
    control.onAdd = () => {
      node = el("div", { class: "geoapp-status" });
      node.hidden = true;
      return node;
    };
    control.show = (text) => {
      if (!node) return;
      node.textContent = text;
      node.hidden = false;
      clearTimeout(timer);
      timer = setTimeout(() => (node.hidden = true), 6000);
    };
    control.addTo(map);
    return control;
  }

  // -- shapes: reshaping a feature and drawing new ones (Leaflet.draw) -------------------------

  // a point's radius leaves it visible around Leaflet.draw's move handle
  const EDIT_STYLE = { color: "#d81b60", weight: 3, dashArray: "6 4", fillColor: "#d81b60", fillOpacity: 0.15, radius: 14 };

  /** The geometry as the layer stores it: a drawn Polygon becomes a MultiPolygon where only that is allowed. */
  function fitType(geometry, allowed) {
    if (allowed.includes(geometry.type) || !allowed.includes(`Multi${geometry.type}`)) return geometry;
    return { type: `Multi${geometry.type}`, coordinates: [geometry.coordinates] };
  }

  /** A map layer's geometry in the data's coordinates (WGS84), ready for the API. */
  function geometryOf(item, layer, shift) {
    return fitType(shift.geojsonToData(item.toGeoJSON().geometry), layer.geometry);
  }

  /** A bar with a hint, a message line and buttons, shown while a shape is being edited. */
  function editBar(map, cfg) {
    const control = L.control({ position: "bottomright" });
    const message = el("p", { class: "geoapp-edit-message", role: "status" });
    const box = el("div", { class: "geoapp-editbar leaflet-bar" });
    control.onAdd = () => {
      L.DomEvent.disableClickPropagation(box);
      return box;
    };
    control.open = (buttons) => {
      box.replaceChildren(el("p", { text: cfg.text.editHint }), el("div", { class: "geoapp-edit" }, buttons), message);
      say(message, "", "");
      control.addTo(map);
    };
    control.message = message;
    return control;
  }

  /**
   * Reshape or move one feature at a time: an editable copy replaces the drawn feature (so that
   * clusters and refetches leave it alone) until the editor saves it with PATCH or cancels.
   */
  function shapeEditor(map, cfg, shift) {
    const group = L.featureGroup().addTo(map);
    const bar = editBar(map, cfg);
    let session = null;

    const end = () => {
      if (!session) return null;
      const { apiLayer, copy } = session;
      copy.editing.disable();
      group.clearLayers();
      bar.remove();
      apiLayer.editingId = null;
      session = null;
      return apiLayer;
    };
    const cancel = () => {
      const apiLayer = end();
      if (apiLayer) apiLayer.refresh(true); // draw the feature as it was
    };
    const save = async (saveButton) => {
      const { apiLayer, feature, copy } = session;
      saveButton.disabled = true;
      say(bar.message, cfg.text.saving, "busy");
      const geometry = geometryOf(copy, apiLayer.layer, shift);
      const result = await sendFeature(cfg, "PATCH", featureUrl(cfg, apiLayer.layer.id, feature.id), { geometry }, feature.version);
      saveButton.disabled = false;
      if (result.ok || result.status === 409) {
        end();
        apiLayer.reload(feature.id, result.ok ? cfg.text.saved : cfg.text.conflict, result.ok ? "ok" : "conflict");
      } else {
        say(bar.message, failureText(cfg, result), "error"); // e.g. outside the district: keep editing
      }
    };
    const start = (apiLayer, feature) => {
      cancel();
      map.closePopup();
      // the drawn feature is in the map's coordinates already
      const copy = L.geoJSON(structuredClone(feature), {
        pointToLayer: (_f, latlng) => L.circleMarker(latlng, EDIT_STYLE),
        style: () => EDIT_STYLE,
      }).getLayers()[0];
      group.addLayer(copy);
      apiLayer.editingId = feature.id;
      const drawn = apiLayer.find(feature.id);
      if (drawn) apiLayer.target.removeLayer(drawn);
      copy.editing.enable();
      session = { apiLayer, feature, copy };
      const saveButton = button(cfg.text.save, () => save(saveButton), { class: "geoapp-save" });
      bar.open([saveButton, button(cfg.text.cancel, cancel, { class: "geoapp-cancel" })]);
    };
    return { start, cancel };
  }

  /** Leaflet.draw puts these strings into its toolbar and tooltips: the page's language, never data. */
  function translateDraw(text) {
    const draw = L.drawLocal.draw;
    draw.toolbar.actions = { title: text.drawCancelTitle, text: text.cancel };
    draw.toolbar.finish = { title: text.drawFinishTitle, text: text.drawFinish };
    draw.toolbar.undo = { title: text.drawUndoTitle, text: text.drawUndo };
    Object.assign(draw.toolbar.buttons, { polyline: text.drawLine, polygon: text.drawArea, circlemarker: text.drawPoint });
    draw.handlers.polyline = { error: text.drawCrossing, tooltip: { start: text.lineStart, cont: text.lineCont, end: text.lineEnd } };
    draw.handlers.polygon.tooltip = { start: text.areaStart, cont: text.areaCont, end: text.areaEnd };
    draw.handlers.circlemarker.tooltip = { start: text.pointStart };
  }

  /** The draw tools a layer's geometry types allow (rectangles and circles are not geometry types). */
  function drawOptions(layer) {
    const types = new Set(layer.geometry.map((t) => t.replace("Multi", "")));
    const shapeOptions = { ...EDIT_STYLE, fill: true };
    return {
      polyline: types.has("LineString") ? { shapeOptions: { ...shapeOptions, fill: false } } : false,
      polygon: types.has("Polygon") ? { allowIntersection: false, shapeOptions } : false,
      circlemarker: types.has("Point") ? EDIT_STYLE : false,
      marker: false,
      rectangle: false,
      circle: false,
    };
  }

  /** An input for one field of a new feature: a select where the values are fixed. */
  function fieldInput(field, cfg) {
    const attrs = { name: field.name, required: "" };
    if (field.values) return choiceSelect(field, field.default, attrs);
    if (field.type === "boolean") {
      const yesNo = { values: [{ value: "true", label: cfg.text.yes }, { value: "false", label: cfg.text.no }], name: field.name };
      return choiceSelect(yesNo, field.default === null ? null : String(field.default), attrs);
    }
    const type = { integer: "number", number: "number", date: "date" }[field.type] || "text";
    const input = el("input", { ...attrs, type });
    if (type === "number") input.step = field.type === "integer" ? "1" : "any";
    if (field.default !== null && field.default !== undefined) input.value = String(field.default);
    return input;
  }

  function formValues(form, fields) {
    const props = {};
    fields.forEach((field) => {
      const raw = form.elements[field.name].value;
      if (raw === "") return; // left out: the server fills a default or names the missing field
      // numbers as numbers; booleans and dates go as text, which the server reads ("true", "2024-05-01")
      props[field.name] = field.type === "number" || field.type === "integer" ? Number(raw) : raw;
    });
    return props;
  }

  /** The form in a drawn shape's popup: the layer's required fields, then POST the new feature. */
  function newFeatureForm(apiLayer, drawn, drafts, shift) {
    const { layer, cfg } = apiLayer;
    const fields = Object.values(layer.fields).filter((f) => f.required && !f.computed);
    const message = el("p", { class: "geoapp-edit-message", role: "status" });
    const rows = fields.map((f) => el("label", {}, [el("span", { text: f.label }), fieldInput(f, cfg)]));
    const submit = el("button", { type: "submit", class: "geoapp-save", text: cfg.text.save });
    const cancel = button(cfg.text.cancel, () => drawn.closePopup(), { class: "geoapp-cancel" });
    const form = el("form", { class: "geoapp-new-feature" }, [
      el("h3", { text: cfg.text.newFeature.replace("{layer}", layer.title) }),
      ...rows,
      el("div", { class: "geoapp-edit" }, [submit, cancel]),
      message,
    ]);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      submit.disabled = true;
      say(message, cfg.text.saving, "busy");
      const body = { type: "Feature", geometry: geometryOf(drawn, layer, shift), properties: formValues(form, fields) };
      const result = await sendFeature(cfg, "POST", featureUrl(cfg, layer.id), body);
      submit.disabled = false;
      if (result.ok) {
        drawn.closePopup();
        apiLayer.reload(result.payload.id, cfg.text.created, "ok");
        return;
      }
      say(message, failureText(cfg, result), "error");
      const wrong = result.payload && result.payload.error && form.elements[result.payload.error.parameter];
      if (wrong) wrong.focus();
    });
    drafts.addLayer(drawn);
    // closing the form (its ✕, Cancel, or after saving) discards the drawing
    drawn.once("popupclose", () => drafts.removeLayer(drawn));
    drawn.bindPopup(form, { maxWidth: 320, minWidth: 240, closeOnClick: false, autoClose: false }).openPopup();
    const first = form.querySelector("input, select");
    if (first) first.focus();
  }

  /** A select of the layers the editor may add to, and Leaflet.draw's toolbar for the chosen one. */
  function drawTools(map, cfg, layers, shift) {
    const editable = cfg.layers.filter((l) => l.editable).reverse(); // top layer first, as the layer control lists them
    if (!editable.length) return null;
    translateDraw(cfg.text);
    const drafts = L.featureGroup().addTo(map);
    const state = { target: editable[0], toolbar: null };
    const mount = () => {
      if (state.toolbar) map.removeControl(state.toolbar);
      state.toolbar = new L.Control.Draw({ position: "topleft", draw: drawOptions(state.target), edit: false });
      map.addControl(state.toolbar);
    };
    const picker = L.control({ position: "topleft" });
    picker.onAdd = () => {
      const options = editable.map((l) => el("option", { value: l.id, text: l.title }));
      const select = el("select", { "aria-label": cfg.text.drawLayer, title: cfg.text.drawLayer }, options);
      select.addEventListener("change", () => {
        state.target = editable.find((l) => l.id === select.value);
        mount(); // the new layer's geometry types decide the tools
      });
      const box = el("div", { class: "geoapp-draw-layer leaflet-bar" }, [select]);
      L.DomEvent.disableClickPropagation(box);
      return box;
    };
    picker.addTo(map);
    mount();
    map.on(L.Draw.Event.CREATED, (e) => newFeatureForm(layers[state.target.id], e.layer, drafts, shift));
    return state;
  }

  function contextLayer(map, context, shift) {
    return L.geoJSON(shift.geojson(context.geojson), {
      interactive: false,
      style: (feature) => {
        const value = context.styleField ? feature.properties[context.styleField] : null;
        const colour = (value && context.colours[value]) || context.style.color;
        const railway = value === "railway";
        return {
          color: colour,
          weight: railway ? 4 : context.style.weight,
          dashArray: railway ? "10 6" : null,
          fillColor: colour,
          fillOpacity: context.style.fill_opacity,
        };
      },
    }).addTo(map);
  }

  /** Bind the configured layers to a folium-built map; returns the state the page and tests read. */
  function onemap(map, groups, cfg) {
    const shift = makeShift(cfg.gcj02);
    L.control.zoom({ position: "topleft", zoomInTitle: cfg.text.zoomIn, zoomOutTitle: cfg.text.zoomOut }).addTo(map);
    L.control.scale({ imperial: false, position: "bottomleft" }).addTo(map);
    const status = statusLine(map);
    cfg.status = (text) => status.show(text);
    cfg.context.forEach((context) => contextLayer(map, context, shift).bringToBack());

    const layers = {};
    cfg.layers.forEach((layer) => {
      layer.fields = Object.fromEntries(layer.fields.map((f) => [f.name, f]));
      layers[layer.id] = new ApiLayer(map, groups[layer.id], layer, cfg, shift);
    });
    // all vectors share one canvas, drawn in the order they arrive: keep the declared order instead
    cfg.restack = (drawnId) => {
      const above = cfg.layers.slice(cfg.layers.findIndex((l) => l.id === drawnId) + 1);
      above.forEach((l) => layers[l.id].target.eachLayer((item) => item.bringToFront && item.bringToFront()));
    };
    const refreshAll = () => Object.values(layers).forEach((l) => l.refresh());
    let timer = null;
    map.on("moveend", () => {
      clearTimeout(timer);
      timer = setTimeout(refreshAll, 150);
    });
    map.on("overlayadd", () => refreshAll());

    legendControl(cfg).addTo(map);
    const search = searchControl(map, cfg, layers, shift).addTo(map);
    const corner = search.getContainer().parentNode;
    corner.insertBefore(search.getContainer(), corner.firstChild); // above the layer control
    measureControl(map, cfg, shift).addTo(map);
    // editors only: the server loads Leaflet.draw just for them
    let drawing = null;
    if (window.L.Draw && cfg.layers.some((l) => l.editable)) {
      cfg.editor = shapeEditor(map, cfg, shift);
      drawing = drawTools(map, cfg, layers, shift);
    }
    if (cfg.focus) {
      const [lng, lat] = shift.toMap(cfg.focus[0], cfg.focus[1]);
      map.setView([lat, lng], cfg.focus[2]);
    } else if (cfg.bounds) {
      const [w, s] = shift.toMap(cfg.bounds[0], cfg.bounds[1]);
      const [e, n] = shift.toMap(cfg.bounds[2], cfg.bounds[3]);
      map.fitBounds([[s, w], [n, e]]);
    }
    refreshAll();
    const state = { map, layers, shift, cfg, drawing };
    window.geoapp = Object.assign(window.geoapp || {}, { state });
    return state;
  }

  /** A feature archive page's small map: the context layers and the one feature, embedded. */
  function featuremap(map, _groups, cfg) {
    const shift = makeShift(cfg.gcj02);
    L.control.zoom({ position: "topleft", zoomInTitle: cfg.text.zoomIn, zoomOutTitle: cfg.text.zoomOut }).addTo(map);
    L.control.scale({ imperial: false, position: "bottomleft" }).addTo(map);
    cfg.context.forEach((context) => contextLayer(map, context, shift).bringToBack());
    const layer = cfg.feature.layer;
    const shape = L.geoJSON(shift.geojson(cfg.feature.geojson), {
      pointToLayer: (feature, latlng) => L.circleMarker(latlng, { ...pointStyle(layer, feature), radius: 10 }),
      style: (feature) => (feature.geometry.type.endsWith("Point") ? pointStyle(layer, feature) : shapeStyle(layer, feature)),
    }).addTo(map);
    const bounds = shape.getBounds();
    if (bounds.getNorthEast().equals(bounds.getSouthWest())) map.setView(bounds.getCenter(), 17);
    else map.fitBounds(bounds.pad(0.5), { maxZoom: 18 });
    window.geoapp = Object.assign(window.geoapp || {}, { state: { map, shape, cfg } });
  }

  window.geoapp = Object.assign(window.geoapp || {}, { onemap, featuremap });
})();
