/*
 * A feature archive page's small map: the context layers and the one feature, embedded in the page;
 * for staff on a monitored feature or a rain gauge, the chart of its last readings below.
 */
import { boot } from "../lib/boot.js";
import { baseControls, contextLayers } from "../map/base.js";
import { makeShift } from "../map/shift.js";
import { colourOf, featureStyle, pointStyle } from "../map/styles.js";
import { symbolIcon } from "../map/symbols.js";

async function featuremap(map, _groups, cfg) {
  const shift = makeShift(cfg.gcj02);
  baseControls(map, cfg.text);
  contextLayers(map, cfg.context, shift);
  const layer = cfg.feature.layer;
  const shape = L.geoJSON(shift.geojson(cfg.feature.geojson), {
    pointToLayer: (feature, latlng) =>
      layer.style.icon
        ? L.marker(latlng, { icon: symbolIcon(layer.style.icon, colourOf(layer, feature), { size: 30 }) })
        : L.circleMarker(latlng, { ...pointStyle(layer, feature), radius: 10 }),
    style: featureStyle(layer),
  }).addTo(map);
  const bounds = shape.getBounds();
  if (bounds.getNorthEast().equals(bounds.getSouthWest())) map.setView(bounds.getCenter(), 17);
  else map.fitBounds(bounds.pad(0.5), { maxZoom: 18 });
  const state = { map, shape, cfg, chart: null };
  if (cfg.chart) {
    // staff on a feature with readings only: uPlot is fetched for this page alone
    const { readingsChart } = await import("../map/readings.js");
    state.chart = await readingsChart(document.querySelector(".geoapp-readings-chart"), cfg.chart, cfg);
  }
  return state;
}

boot("featuremap", featuremap);
