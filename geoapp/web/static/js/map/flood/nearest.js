/*
 * The nearest emergency resources: from a monitored feature the commander picked (on the map or
 * in the list) or from any point of the map (right click), the three nearest of a kind (or of
 * any), listed in the panel and drawn on the map as lines with their distances.
 */
import { isAbort } from "../../lib/api.js";
import { el } from "../../lib/dom.js";
import { metres } from "../../lib/format.js";
import { symbolSvg } from "../symbols.js";
import { contactOf, failure } from "./look.js";
import { choiceLabel, kindSymbol, resourceDef, stateColour } from "./resources.js";

const LINE = "#0d2b45";

// where each distance label sits by its resource: above, right, left (neighbours' labels do not overlap)
const LABEL_PLACES = [
  ["top", [0, -14]],
  ["right", [14, 0]],
  ["left", [-14, 0]],
];

/** Lines from a point to the nearest resources, each with its distance in metres. */
export class NearestLines {
  constructor(board) {
    this.board = board;
    this.group = L.featureGroup().addTo(board.map);
  }

  clear() {
    this.group.clearLayers();
  }

  draw(from, resources) {
    const { shift } = this.board;
    this.clear();
    const [flng, flat] = shift.toMap(from.lon, from.lat);
    const origin = L.latLng(flat, flng);
    L.circleMarker(origin, { radius: 7, color: LINE, weight: 3, fillColor: "#fff", fillOpacity: 1 }).addTo(this.group);
    resources.forEach((resource, index) => {
      const [lng, lat] = shift.toMap(resource.lon, resource.lat);
      const target = L.latLng(lat, lng);
      L.polyline([origin, target], {
        color: LINE,
        weight: index === 0 ? 4 : 3,
        opacity: 0.85,
        dashArray: index === 0 ? null : "8 6",
        className: "geoapp-nearest-line",
        interactive: false,
      }).addTo(this.group);
      L.circleMarker(target, { radius: 14, color: LINE, weight: 3, fill: false, interactive: false }).addTo(this.group);
      // at the resource's end of its line (three resources often stand close together: labels above each)
      const [direction, offset] = LABEL_PLACES[index % LABEL_PLACES.length];
      L.tooltip({ permanent: true, direction, offset, className: "geoapp-distance", interactive: false })
        .setLatLng(target)
        .setContent(el("span", { text: `${index + 1} · ${metres(resource.distance_m)}` }))
        .addTo(this.group);
    });
  }
}

/**
 * The "Nearest resources" section of the panel (templates/flood.html) and its lines, asked for
 * by a right click on the map or by ``nearestTo(feature)``, a monitored feature the user picked.
 */
export function nearestResources(board) {
  const { api, map, shift, state, text } = board;
  const list = document.querySelector(".geoapp-nearest-list");
  const kind = document.querySelector(".geoapp-nearest-kind");
  const origin = document.querySelector(".geoapp-nearest-origin");
  const lines = new NearestLines(board);
  const layer = resourceDef(board);
  const kindField = layer ? layer.fields[board.rules.resources.kindField] : null;
  const hint = () => list.replaceChildren(el("li", { class: "geoapp-muted", text: text.nearestHint }));

  if (kindField && kindField.values) {
    kind.replaceChildren(
      el("option", { value: "", text: text.anyKind }),
      ...kindField.values.map((c) => el("option", { value: c.value, text: c.label })),
    );
  }
  let lastOrigin = null;
  kind.addEventListener("change", () => lastOrigin && nearestFrom(...lastOrigin));

  function item(r, index) {
    const contact = contactOf(r);
    return el("li", { class: "geoapp-nearest-item", "data-fid": String(r.fid) }, [
      el("span", { class: "geoapp-nearest-rank", text: String(index + 1) }),
      symbolSvg(kindSymbol(r.kind, "truck"), stateColour(layer, r.state), { size: 20 }),
      el("span", { class: "geoapp-row-main" }, [
        el("span", { class: "geoapp-row-first" }, [
          el("span", { class: "geoapp-row-name", text: r.name }),
          el("strong", { class: "geoapp-nearest-distance", text: metres(r.distance_m) }),
        ]),
        el("span", { class: "geoapp-row-second" }, [
          el("span", { text: choiceLabel(kindField, r.kind) }),
          ...(r.capacity !== undefined && r.capacity !== null ? [el("span", { text: `${r.capacity}` })] : []),
          ...(contact ? [el("span", { class: "geoapp-nearest-contact", text: `${text.contact}: ${contact}` })] : []),
        ]),
      ]),
    ]);
  }

  async function nearestFrom(from, feature) {
    lastOrigin = [from, feature];
    const params = { ...from, k: 3 };
    if (kind.value) params.kind = kind.value;
    let payload;
    try {
      payload = await api.get("/flood/nearest", { params, key: "nearest" });
    } catch (err) {
      if (isAbort(err)) return;
      list.replaceChildren(el("li", { class: "geoapp-error-text", text: failure(text, err) }));
      return;
    }
    state.nearest = payload;
    lines.draw(payload.from, payload.resources);
    const { lon, lat } = payload.from;
    origin.textContent = feature ? feature.name : `${text.fromHere} (${lon.toFixed(5)}, ${lat.toFixed(5)})`;
    if (!payload.resources.length) {
      list.replaceChildren(el("li", { class: "geoapp-muted", text: text.noneAvailable }));
      return;
    }
    list.replaceChildren(...payload.resources.map(item));
  }

  map.on("contextmenu", (e) => {
    const [lon, lat] = shift.toData(e.latlng.lng, e.latlng.lat);
    nearestFrom({ lon: lon.toFixed(6), lat: lat.toFixed(6) }, null);
  });
  document.querySelector(".geoapp-nearest-clear").addEventListener("click", () => {
    lastOrigin = null;
    state.nearest = null;
    lines.clear();
    origin.textContent = "";
    hint();
  });
  hint();
  return { nearestTo: (feature) => nearestFrom({ layer: feature.layer, feature_id: feature.fid }, feature) };
}
