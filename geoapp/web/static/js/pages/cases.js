/*
 * The cases page (/cases): the unit grid cells coloured by the indicator chosen (the cases at low zoom, as
 * the command centre reads them: never thousands of markers), the week's hot spots outlined, and a heat map
 * of where the period's cases were reported, which the layer list turns on. Values reach the map as DOM
 * text only (lib/dom.js); nothing here edits.
 */
import { boot } from "../lib/boot.js";
import { el } from "../lib/dom.js";
import { baseControls, contextLayers, firstView } from "../map/base.js";
import { makeShift } from "../map/shift.js";
import { statusLine } from "../map/status.js";

const RAMP = ["#fff5eb", "#fdd0a2", "#fdae6b", "#fd8d3c", "#e6550d", "#a63603"];
/** Figures where a higher value is better: their ramp runs the other way. */
const BETTER_HIGH = new Set(["close_rate", "on_time_rate", "disposal_rate"]);

function breaks(values, n) {
  const sorted = values.filter((v) => v !== null && v !== undefined).sort((a, b) => a - b);
  if (!sorted.length) return [];
  return Array.from({ length: n - 1 }, (_, i) => sorted[Math.floor(((i + 1) * sorted.length) / n)]);
}

function colour(value, cuts, reverse) {
  if (value === null || value === undefined) return "#eeeeee";
  let i = cuts.findIndex((c) => value < c);
  if (i < 0) i = cuts.length;
  return RAMP[reverse ? RAMP.length - 1 - i : i];
}

function legend(map, cfg, cuts, reverse) {
  const control = L.control({ position: "bottomright" });
  control.onAdd = () => {
    const rows = [el("div", { class: "geoapp-legend-title", text: cfg.shadeLabel })];
    const edges = [null, ...cuts, null];
    for (let i = 0; i < edges.length - 1; i += 1) {
      const low = edges[i] === null ? "" : edges[i].toLocaleString();
      const high = edges[i + 1] === null ? "" : edges[i + 1].toLocaleString();
      const swatch = el("span", { class: "geoapp-swatch" });
      swatch.style.background = RAMP[reverse ? RAMP.length - 1 - i : i];
      rows.push(el("div", { class: "geoapp-legend-row" }, [swatch, el("span", { text: `${low} – ${high}` })]));
    }
    const hot = el("span", { class: "geoapp-swatch geoapp-swatch-hot" });
    rows.push(el("div", { class: "geoapp-legend-row" }, [hot, el("span", { text: cfg.text.hotSpot || "hot spot" })]));
    return el("div", { class: "geoapp-legend geoapp-cases-legend" }, rows);
  };
  control.addTo(map);
}

function popup(props, cfg) {
  const rows = Object.entries(cfg.labels).map(([name, label]) =>
    el("tr", {}, [el("th", { text: label }), el("td", { text: props[name] ?? "—" })]),
  );
  const title = el("div", { class: "geoapp-popup-title", text: `${props.code} · ${props.squad || ""}` });
  return el("div", { class: "geoapp-popup" }, [title, el("table", {}, rows)]);
}

async function cases(map, groups, cfg) {
  const shift = makeShift(cfg.gcj02);
  baseControls(map, cfg.text);
  const status = statusLine(map);
  contextLayers(map, cfg.context, shift);
  firstView(map, cfg, shift);
  const state = { map, cfg, cells: 0, heatPoints: 0, ready: false };
  const hot = new Set(cfg.hot);
  const [grid, heat] = await Promise.all([
    fetch(cfg.grid, { credentials: "same-origin" }).then((r) => r.json()),
    fetch(cfg.heat, { credentials: "same-origin" }).then((r) => r.json()),
  ]);
  // cells without a case are drawn pale apart: the classes are cut among the cells that had some
  const values = grid.features.filter((f) => f.properties.due).map((f) => f.properties[cfg.shade]);
  const cuts = [...new Set(breaks(values, RAMP.length))];
  const reverse = BETTER_HIGH.has(cfg.shade);
  const cells = L.geoJSON(shift.geojson(grid), {
    style: (f) => ({
      color: hot.has(f.properties.code) ? "#b71c1c" : "#78909c",
      weight: hot.has(f.properties.code) ? 3 : 0.4,
      fillColor: colour(f.properties[cfg.shade], cuts, reverse),
      fillOpacity: f.properties.due ? 0.75 : 0.15,
    }),
    onEachFeature: (f, layer) => layer.bindPopup(() => popup(f.properties, cfg)),
  }).addTo(map);
  state.cells = grid.features.length;
  const overlays = { [cfg.text.gridLayer || "grid"]: cells };
  if (L.heatLayer) {
    const points = heat.points.map(([lat, lon]) => {
      const [x, y] = shift.toMap(lon, lat);
      return [y, x, 0.5];
    });
    overlays[cfg.text.heatLayer || "heat"] = L.heatLayer(points, { radius: 14, blur: 18, maxZoom: 17 });
    state.heatPoints = points.length;
  }
  L.control.layers(null, overlays, { collapsed: false, position: "topright" }).addTo(map);
  legend(map, cfg, cuts, reverse);
  status.show("");
  state.ready = true;
  return state;
}

boot("cases", cases);
