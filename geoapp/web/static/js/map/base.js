/* What every map page has: zoom buttons and a scale, the context layers, the first view. */
import { contextStyle } from "./styles.js";

export function baseControls(map, text) {
  L.control.zoom({ position: "topleft", zoomInTitle: text.zoomIn, zoomOutTitle: text.zoomOut }).addTo(map);
  L.control.scale({ imperial: false, position: "bottomleft" }).addTo(map);
}

/** The embedded backdrop (district boundary, roads): drawn below everything, never clickable. */
export function contextLayers(map, contexts, shift) {
  return contexts.map((context) =>
    L.geoJSON(shift.geojson(context.geojson), { interactive: false, style: contextStyle(context) })
      .addTo(map)
      .bringToBack(),
  );
}

/** Centre on ``focus`` [lng, lat, zoom] if given, else fit ``bounds`` [w, s, e, n] (WGS84). */
export function firstView(map, { focus, bounds }, shift) {
  if (focus) {
    const [lng, lat] = shift.toMap(focus[0], focus[1]);
    map.setView([lat, lng], focus[2]);
  } else if (bounds) {
    const [w, s] = shift.toMap(bounds[0], bounds[1]);
    const [e, n] = shift.toMap(bounds[2], bounds[3]);
    map.fitBounds([
      [s, w],
      [n, e],
    ]);
  }
}
