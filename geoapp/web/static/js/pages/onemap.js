/*
 * The one map (一张图): every operational layer fetched from the query API for the current
 * view and drawn styled by status, with the legend, search box and measuring tool. Editors
 * (the server marks each layer ``editable`` in the config) also get the editing code, loaded
 * on demand, so the public never downloads it.
 */
import { Api } from "../lib/api.js";
import { boot } from "../lib/boot.js";
import { baseControls, contextLayers, firstView } from "../map/base.js";
import { downloadControl } from "../map/download.js";
import { apiLayers, layerDef } from "../map/layers.js";
import { legendControl } from "../map/legend.js";
import { measureControl } from "../map/measure.js";
import { foldable } from "../map/panel.js";
import { searchControl } from "../map/search.js";
import { makeShift } from "../map/shift.js";
import { statusLine } from "../map/status.js";

async function onemap(map, groups, cfg) {
  const shift = makeShift(cfg.gcj02);
  const text = cfg.text;
  baseControls(map, text);
  const status = statusLine(map);
  contextLayers(map, cfg.context, shift);
  // what the page's parts share; ``editor`` stays null unless the editing code is loaded
  const page = {
    map,
    cfg,
    text,
    shift,
    api: new Api({ base: cfg.api, csrf: cfg.csrf }),
    status: (line) => status.show(line),
    editor: null,
    layers: {},
  };
  const defs = cfg.layers.map(layerDef);
  const { byId, refreshAll } = apiLayers(page, groups, defs);
  page.layers = byId;

  const legend = legendControl(defs, text).addTo(map);
  if (!cfg.data) {
    // a published page (static files, cfg.data) has no search: that asks the app
    const search = searchControl(page).addTo(map);
    const corner = search.getContainer().parentNode;
    corner.insertBefore(search.getContainer(), corner.firstChild); // above the layer control
  }
  measureControl(page).addTo(map);
  const layerControl = map.getContainer().querySelector(".leaflet-control-layers");
  if (layerControl) foldable(map, layerControl, { label: text.layers, iconName: "layers" });
  foldable(map, legend.getContainer(), { label: text.legend, iconName: "legend" });

  firstView(map, cfg, shift);
  downloadControl(page, defs); // under the layer list: a layer as a file (templates/map.html)
  refreshAll();
  let drawing = null;
  if (defs.some((l) => l.editable) && window.L.PM) {
    const { enableEditing } = await import("../edit/index.js");
    drawing = enableEditing(page);
  }
  return { map, layers: byId, shift, cfg, drawing, page };
}

boot("onemap", onemap);
