/*
 * The emergency resources (pump trucks, pump stations, depots, duty posts, squads) on the board's
 * map, by kind (symbol) and state (colour), fetched whole from their layer's own API; fetched
 * again whenever the live data changes (a resource sent out or back).
 */
import { featurePath, isAbort } from "../../lib/api.js";
import { el } from "../../lib/dom.js";
import { popupContent } from "../popup.js";
import { symbolIcon } from "../symbols.js";
import { RESOURCE_PANE, TOOLTIP } from "./markers.js";

const RESOURCE_LIMIT = 1000;

/** The resource kinds' symbols (the layer declares one icon; the board tells the kinds apart). */
const KIND_SYMBOLS = { pump_truck: "truck", pump_station: "pump", depot: "box", duty_post: "flag", squad: "people" };

/** The resources' layer definition, or undefined when the config has none. */
export function resourceDef(board) {
  return board.layers[board.rules.resources.layer];
}

/** The symbol of a resource kind, or ``fallback``. */
export function kindSymbol(kind, fallback) {
  return KIND_SYMBOLS[kind] || fallback;
}

/** The colour of a resource in ``state`` (available, sent …), or the layer's own. */
export function stateColour(layer, state) {
  return layer.colours[state] || layer.style.color;
}

/** The label of a field's fixed value, or the value itself. */
export function choiceLabel(field, value) {
  const choice = field && field.values ? field.values.find((c) => c.value === value) : null;
  return choice ? choice.label : value;
}

/** One resource's marker: its kind's symbol in its state's colour, a tooltip, the layer's popup. */
function resourceItem(board, layer, feature, latlng, popup) {
  const props = feature.properties || {};
  const res = board.rules.resources;
  const kind = props[res.kindField];
  const state = props[res.stateField];
  const icon = symbolIcon(kindSymbol(kind, layer.style.icon), stateColour(layer, state), {
    size: 22,
    classes: `geoapp-resource geoapp-resource-${state}`,
    data: { layer: layer.id, fid: feature.id, kind, state },
  });
  const marker = L.marker(latlng, { icon, pane: RESOURCE_PANE });
  const kindLabel = choiceLabel(layer.fields[res.kindField], kind);
  const stateLabel = choiceLabel(layer.fields[res.stateField], state);
  marker.bindTooltip(
    el("div", {}, [
      el("strong", { text: props.name ?? `#${feature.id}` }),
      el("span", { text: ` · ${kindLabel} · ${stateLabel}` }),
    ]),
    TOOLTIP,
  );
  marker.bindPopup(() => popup(), board.popupOptions);
  return marker;
}

/** The resources' group on the map; ``load()`` fetches them and draws them again. */
export function resourceLayer(board, group) {
  const { api, cfg, shift, state, text } = board;
  const layer = resourceDef(board);
  const drawn = L.featureGroup().addTo(group);

  async function load() {
    if (!layer) return;
    let payload;
    try {
      payload = await api.get(featurePath(layer.id), {
        params: { limit: RESOURCE_LIMIT },
        accept: "application/geo+json",
        key: "resources",
      });
    } catch (err) {
      if (!isAbort(err)) board.status(`${layer.title}: ${text.loadFailed}`);
      return;
    }
    drawn.clearLayers();
    L.geoJSON(shift.geojson(payload), {
      pointToLayer: (feature, latlng) =>
        resourceItem(board, layer, feature, latlng, () =>
          popupContent(layer, feature, { text, lang: cfg.lang, featurePage: cfg.featurePage }),
        ),
    })
      .getLayers()
      .forEach((item) => drawn.addLayer(item));
    state.resources = payload.numberReturned;
  }

  return { layer, load };
}
