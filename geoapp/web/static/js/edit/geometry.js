/* Shapes drawn or edited on the map, as the layer stores them. */

/** A drawn Polygon becomes a MultiPolygon (and so on) where only the multi-part type is allowed. */
export function fitType(geometry, allowed) {
  if (allowed.includes(geometry.type) || !allowed.includes(`Multi${geometry.type}`)) return geometry;
  return { type: `Multi${geometry.type}`, coordinates: [geometry.coordinates] };
}

/** A map layer's geometry in the data's coordinates (WGS84), ready for the API. */
export function geometryOf(item, layer, shift) {
  return fitType(shift.geojsonToData(item.toGeoJSON().geometry), layer.geometry);
}
