/*
 * Coordinates: the API speaks WGS84; a GCJ-02 basemap (Amap) needs the overlays shifted onto
 * it, and what the map reports (views, clicks, drawn shapes) shifted back before it is sent.
 */
import gcoord from "../../vendor/gcoord/dist/gcoord.esm-browser.prod.js";

const same = (lng, lat) => [lng, lat];
const unchanged = (geojson) => geojson;

/** {toMap(lng, lat), toData(lng, lat), geojson(g), geojsonToData(g)} for the configured basemap. */
export function makeShift(gcj02) {
  if (!gcj02) return { toMap: same, toData: same, geojson: unchanged, geojsonToData: unchanged };
  return {
    toMap: (lng, lat) => gcoord.transform([lng, lat], gcoord.WGS84, gcoord.GCJ02),
    toData: (lng, lat) => gcoord.transform([lng, lat], gcoord.GCJ02, gcoord.WGS84),
    // gcoord changes a GeoJSON object in place: shift a copy, the caller's data stays WGS84
    geojson: (g) => gcoord.transform(structuredClone(g), gcoord.WGS84, gcoord.GCJ02),
    geojsonToData: (g) => gcoord.transform(structuredClone(g), gcoord.GCJ02, gcoord.WGS84),
  };
}
