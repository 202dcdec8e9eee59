/* A feature archive page's small map: the context layers and the one feature, embedded in the page. */
import { boot } from "../lib/boot.js";
import { baseControls, contextLayers } from "../map/base.js";
import { makeShift } from "../map/shift.js";
import { featureStyle, pointStyle } from "../map/styles.js";

function featuremap(map, _groups, cfg) {
  const shift = makeShift(cfg.gcj02);
  baseControls(map, cfg.text);
  contextLayers(map, cfg.context, shift);
  const layer = cfg.feature.layer;
  const shape = L.geoJSON(shift.geojson(cfg.feature.geojson), {
    pointToLayer: (feature, latlng) => L.circleMarker(latlng, { ...pointStyle(layer, feature), radius: 10 }),
    style: featureStyle(layer),
  }).addTo(map);
  const bounds = shape.getBounds();
  if (bounds.getNorthEast().equals(bounds.getSouthWest())) map.setView(bounds.getCenter(), 17);
  else map.fitBounds(bounds.pad(0.5), { maxZoom: 18 });
  return { map, shape, cfg };
}

boot("featuremap", featuremap);
