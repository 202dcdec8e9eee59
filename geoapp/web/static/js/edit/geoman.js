/*
 * Leaflet-Geoman, which draws and reshapes features for editors (the server loads it for them
 * only): its language follows the page's, with the project's own words for the tools it uses,
 * and snapping to the features and roads on the map.
 */

// a point's radius leaves it easy to grab; the dashes say "not saved yet"
export const EDIT_STYLE = {
  color: "#d81b60",
  weight: 3,
  dashArray: "6 4",
  fillColor: "#d81b60",
  fillOpacity: 0.15,
  radius: 14,
};
const SNAP_DISTANCE_PX = 15;

/** Geoman's strings for the tools geoapp shows, from the page's translations (never from data). */
function translations(text) {
  return {
    tooltips: {
      firstVertex: text.firstVertex,
      continueLine: text.continueLine,
      finishLine: text.finishLine,
      finishPoly: text.finishArea,
      placeCircleMarker: text.placePoint,
    },
    actions: { finish: text.drawFinish, cancel: text.cancel, removeLastVertex: text.drawUndo },
    buttonTitles: {
      drawLineButton: text.drawLine,
      drawPolyButton: text.drawArea,
      drawCircleMarkerButton: text.drawPoint,
    },
  };
}

/** Set Geoman up on ``map``: the page's language (zh unless the page is English), snapping, styles. */
export function setUpGeoman(map, { lang, text, drafts }) {
  const language = lang === "en" ? "en" : "zh";
  // the language's own strings stay for anything not overridden (the fallback is the language itself)
  map.pm.setLang(language, translations(text), language);
  map.pm.setGlobalOptions({
    snappable: true,
    snapDistance: SNAP_DISTANCE_PX,
    allowSelfIntersection: false,
    exitModeOnEscape: true, // Escape stops drawing, as Cancel does
    pathOptions: EDIT_STYLE,
    templineStyle: EDIT_STYLE,
    hintlineStyle: { ...EDIT_STYLE, dashArray: "2 6" },
    layerGroup: drafts, // drawn shapes wait there until they are saved or discarded
  });
  // a cluster's icon stands for many features at no one place: nothing snaps to it
  const unsnappable = (layer) => {
    if (layer instanceof L.MarkerCluster) layer.options.snapIgnore = true;
  };
  map.eachLayer(unsnappable);
  map.on("layeradd", (e) => unsnappable(e.layer));
}
