/*
 * The one map in the browser: fetch each visible layer from the query API for the current view,
 * draw it styled by status, and add the legend, search box and measuring tool.
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
      return { toMap: (lng, lat) => [lng, lat], toData: (lng, lat) => [lng, lat], geojson: (g) => g };
    }
    const toMap = (lng, lat) => gcoord.transform([lng, lat], gcoord.WGS84, gcoord.GCJ02);
    const toData = (lng, lat) => gcoord.transform([lng, lat], gcoord.GCJ02, gcoord.WGS84);
    return { toMap, toData, geojson: (g) => gcoord.transform(g, gcoord.WGS84, gcoord.GCJ02) };
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

  function popupContent(layer, feature, cfg) {
    const props = feature.properties || {};
    const title = props[layer.titleField];
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
    return el("div", { class: "geoapp-popup" }, [
      el("div", { class: "geoapp-popup-layer", text: layer.title }),
      el("h3", { text: title === null || title === undefined ? `#${feature.id}` : String(title) }),
      el("table", {}, rows),
      link,
    ]);
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

    async refresh() {
      if (!this.visible()) return;
      const bbox = this.bboxParam();
      if (bbox === this.bbox) return; // this view is already drawn or on its way
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
        pointToLayer: (feature, latlng) => L.circleMarker(latlng, pointStyle(layer, feature)),
        style: (feature) => (feature.geometry.type.endsWith("Point") ? pointStyle(layer, feature) : shapeStyle(layer, feature)),
        onEachFeature: (feature, item) => {
          const title = (feature.properties || {})[layer.titleField];
          item.bindPopup(() => popupContent(layer, feature, this.cfg), { maxWidth: 360 });
          item.bindTooltip(el("span", { text: title === null || title === undefined ? `#${feature.id}` : String(title) }), {
            sticky: true,
          });
        },
      });
      this.target.clearLayers();
      if (layer.style.cluster) this.target.addLayers(geo.getLayers());
      else geo.getLayers().forEach((item) => this.target.addLayer(item));
      this.cfg.restack(layer.id);
      this.count = payload.numberReturned;
      this.matched = payload.numberMatched;
      if (this.matched > this.count) this.cfg.status(`${layer.title}: ${this.cfg.text.tooMany}`);
      this.map.fire("geoapp:drawn", { layer: layer.id, count: this.count });
    }

    find(id) {
      return this.target.getLayers().find((item) => item.feature && item.feature.id === id);
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
            const open = () => {
              const found = layer && layer.find(hit.id);
              if (!found) return;
              if (layer.target.zoomToShowLayer) layer.target.zoomToShowLayer(found, () => found.openPopup());
              else found.openPopup();
            };
            // the feature is drawn once its layer has been fetched for the new view
            const onDrawn = (e) => {
              if (e.layer !== hit.layer) return;
              map.off("geoapp:drawn", onDrawn);
              open();
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
    if (cfg.focus) {
      const [lng, lat] = shift.toMap(cfg.focus[0], cfg.focus[1]);
      map.setView([lat, lng], cfg.focus[2]);
    } else if (cfg.bounds) {
      const [w, s] = shift.toMap(cfg.bounds[0], cfg.bounds[1]);
      const [e, n] = shift.toMap(cfg.bounds[2], cfg.bounds[3]);
      map.fitBounds([[s, w], [n, e]]);
    }
    refreshAll();
    const state = { map, layers, shift, cfg };
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
