/* Where a layer's features are drawn: clustered (manhole covers and other dense points) or not. */

export function featureTarget(layer) {
  if (!layer.style.cluster) return L.featureGroup();
  return L.markerClusterGroup({ chunkedLoading: true, disableClusteringAtZoom: 18, showCoverageOnHover: false });
}

/**
 * Replace what ``target`` holds with ``items`` (a cluster group takes them in one batch); ``keep``, if given,
 * stays as it is (the item whose popup is open: removing it would close the popup under the user's hand).
 */
export function replaceAll(target, items, keep = null) {
  if (keep) {
    const old = target.getLayers().filter((item) => item !== keep);
    if (target.removeLayers) target.removeLayers(old);
    else old.forEach((item) => target.removeLayer(item));
  } else {
    target.clearLayers();
  }
  if (target.addLayers) target.addLayers(items);
  else items.forEach((item) => target.addLayer(item));
}
