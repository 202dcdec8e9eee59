/* Where a layer's features are drawn: clustered (manhole covers and other dense points) or not. */

export function featureTarget(layer) {
  if (!layer.style.cluster) return L.featureGroup();
  return L.markerClusterGroup({ chunkedLoading: true, disableClusteringAtZoom: 18, showCoverageOnHover: false });
}

/** Replace what ``target`` holds with ``items`` (a cluster group takes them in one batch). */
export function replaceAll(target, items) {
  target.clearLayers();
  if (target.addLayers) target.addLayers(items);
  else items.forEach((item) => target.addLayer(item));
}
