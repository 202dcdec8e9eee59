/*
 * The legend: for each layer shown on the map, a swatch per value of its style field, shaped as the
 * layer is drawn. A layer switched off (in the layer list, or by a script) leaves the legend, and comes
 * back when it is switched on again.
 */
import { el } from "../lib/dom.js";

/** The layer groups the page's boot entry registered for ``map`` (lib/boot.js: window.geoapp.maps). */
function registeredGroups(map) {
  const entries = (window.geoapp && window.geoapp.maps) || [];
  const entry = entries.find((e) => e.map === map);
  return entry ? entry.groups : null;
}

/**
 * ``layers``: layer definitions (map/layers.js layerDef); ``text``: {legend, noLayer}. ``groups``: each
 * layer id's layer group on the map (by default the groups the page's boot entry registered); a layer
 * without one is always listed. The control's ``update()`` redraws which layers are listed.
 */
export function legendControl(layers, text, { groups } = {}) {
  const control = L.control({ position: "bottomleft" });
  const blocks = new Map(); // layer id -> its block
  let map = null;
  let empty = null;
  let watched = [];

  const groupOf = (id) => (groups || registeredGroups(map) || {})[id];
  const shown = (layer) => {
    const group = groupOf(layer.id);
    return !group || map.hasLayer(group);
  };

  const mark = () => {
    let any = false;
    layers.forEach((layer) => {
      const visible = shown(layer);
      blocks.get(layer.id).hidden = !visible;
      any = any || visible;
    });
    empty.hidden = any;
  };
  control.update = () => {
    if (!map) return;
    mark();
    // its height changed: a folding panel holds it to the room it has (map/panel.js)
    map.fire("geoapp:panelchange", { panel: control.getContainer() });
  };

  control.onAdd = (added) => {
    map = added;
    const box = el("div", { class: "geoapp-legend leaflet-bar" }, [el("h4", { text: text.legend })]);
    layers.forEach((layer) => {
      const entries = Object.entries(layer.legend);
      const block = el("div", { class: "geoapp-legend-layer", "data-layer": layer.id }, [
        el("div", { class: "geoapp-legend-title", text: layer.title }),
      ]);
      (entries.length ? entries : [[layer.title, layer.style.color]]).forEach(([label, colour]) => {
        const swatch = el("i", { class: `geoapp-swatch geoapp-swatch-${layer.kind}` });
        swatch.style.background = colour;
        block.appendChild(el("div", { class: "geoapp-legend-row" }, [swatch, el("span", { text: label })]));
      });
      blocks.set(layer.id, block);
      box.appendChild(block);
    });
    empty = el("p", { class: "geoapp-legend-empty", text: text.noLayer || "—" });
    box.appendChild(empty);
    L.DomEvent.disableScrollPropagation(box);
    L.DomEvent.disableClickPropagation(box);
    // a group fires add/remove whoever switches it: the layer list, or a script (a reload shows its layer)
    watched = layers.map((layer) => groupOf(layer.id)).filter(Boolean);
    watched.forEach((group) => group.on("add remove", control.update));
    map.on("overlayadd overlayremove", control.update);
    mark();
    return box;
  };

  control.onRemove = (removed) => {
    watched.forEach((group) => group.off("add remove", control.update));
    removed.off("overlayadd overlayremove", control.update);
    watched = [];
    map = null;
  };
  return control;
}
