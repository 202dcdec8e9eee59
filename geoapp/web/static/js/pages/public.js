/*
 * The public progress map (/public), for a phone first: the public layers fetched for the view from
 * /api/public (public fields only, whoever asks), a layer list and a legend of the layers shown, both
 * folding into buttons on a phone, popups placed clear of them. The page is cached, so it has no inline
 * script: its config is a JSON block and this module builds the Leaflet map itself. Nothing here edits,
 * and nothing imports the editing code.
 */
import { Api } from "../lib/api.js";
import { baseControls, contextLayers } from "../map/base.js";
import { apiLayers, layerDef } from "../map/layers.js";
import { legendControl } from "../map/legend.js";
import { foldable } from "../map/panel.js";
import { makeShift } from "../map/shift.js";
import { statusLine } from "../map/status.js";

/** Text for Leaflet's layer list, which sets its labels as HTML: escaped here. */
function escaped(text) {
  const entities = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  return String(text).replace(/[&<>"']/g, (c) => entities[c]);
}

function locateControl(map, text) {
  if (!L.control.locate) return;
  L.control
    .locate({
      position: "topleft",
      flyTo: true,
      icon: "geoapp-icon geoapp-icon-locate",
      iconLoading: "geoapp-icon geoapp-icon-locate geoapp-icon-busy",
      strings: { title: text.locate, popup: text.locatePopup },
    })
    .addTo(map);
}

/**
 * Fit the district in the part of the map the open panels leave (on a desk the legend and the layer list
 * stay open at its sides; on a phone they are buttons, and the district may fill the width).
 */
function fitDistrict(map, bounds, shift, panels) {
  const [w, s] = shift.toMap(bounds[0], bounds[1]);
  const [e, n] = shift.toMap(bounds[2], bounds[3]);
  const width = (node) => (node.querySelector(".geoapp-fold-toggle").offsetParent ? 0 : node.offsetWidth + 10);
  map.fitBounds(
    [
      [s, w],
      [n, e],
    ],
    { paddingTopLeft: [width(panels.left) + 8, 12], paddingBottomRight: [width(panels.right) + 8, 12] },
  );
}

function start() {
  const cfg = JSON.parse(document.getElementById("geoapp-public-config").textContent);
  const { text } = cfg;
  // fractional zooms, so that the district fills a phone's narrow map when it opens
  const map = L.map("geoapp-public-map", { zoomControl: false, preferCanvas: true, maxZoom: 19, zoomSnap: 0.25 });
  cfg.tiles.forEach((tiles) =>
    L.tileLayer(tiles.url, { attribution: tiles.attribution, subdomains: tiles.subdomains, maxZoom: 19 }).addTo(map),
  );
  const shift = makeShift(cfg.gcj02);
  baseControls(map, text);
  locateControl(map, text);
  const status = statusLine(map);
  contextLayers(map, cfg.context, shift);

  const defs = cfg.layers.map(layerDef);
  const groups = {};
  defs.forEach((def) => {
    groups[def.id] = L.featureGroup();
    if (def.shown) groups[def.id].addTo(map);
  });
  const page = {
    map,
    cfg,
    text,
    shift,
    api: new Api({ base: cfg.api }),
    status: (line) => status.show(line),
    editor: null, // never: the public map does not edit
    layers: {},
  };
  const { byId, refreshAll } = apiLayers(page, groups, defs);
  page.layers = byId;

  // the layer list names the top layer first, as the one map's does
  const overlays = Object.fromEntries([...defs].reverse().map((def) => [escaped(def.title), groups[def.id]]));
  const layerList = L.control.layers(null, overlays, { collapsed: false, position: "topright" }).addTo(map);
  const legend = legendControl(defs, text, { groups }).addTo(map);
  foldable(map, layerList.getContainer(), { label: text.layers, iconName: "layers" });
  foldable(map, legend.getContainer(), { label: text.legend, iconName: "legend" });

  fitDistrict(map, cfg.bounds, shift, { left: legend.getContainer(), right: layerList.getContainer() });
  refreshAll();
  const root = (window.geoapp = window.geoapp || {});
  root.state = { map, layers: byId, shift, cfg, page, legend, layerList };
}

start();
