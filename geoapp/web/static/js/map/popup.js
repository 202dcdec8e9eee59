/* A feature's popup: its layer, title, the layer's popup fields, a link to its archive page. */
import { el } from "../lib/dom.js";
import { formatValue, titleOf } from "../lib/format.js";

/** ``extra``: nodes appended below (the edit block, for editors). */
export function popupContent(layer, feature, { text, lang, featurePage }, extra) {
  const props = feature.properties || {};
  const rows = layer.popup
    .filter((name) => layer.fields[name])
    .map((name) => {
      const field = layer.fields[name];
      return el("tr", {}, [el("th", { text: field.label }), el("td", { text: formatValue(field, props[name], lang) })]);
    });
  if (props.distance_m !== undefined) {
    rows.push(el("tr", {}, [el("th", { text: text.distance }), el("td", { text: `${props.distance_m} m` })]));
  }
  // a published page (static files) has no archive pages: featurePage is null there
  const link = featurePage ? [archiveLink(featurePage, layer.id, feature.id, text.archive)] : [];
  return el("div", { class: "geoapp-popup" }, [
    el("div", { class: "geoapp-popup-layer", text: layer.title }),
    el("h3", { text: titleOf(layer, feature) }),
    el("table", {}, rows),
    ...link,
    ...(extra || []),
  ]);
}

/** The link to a feature's archive page (``featurePage``: the pages' root, "/features/"). */
export function archiveLink(featurePage, layerId, fid, label) {
  return el("a", {
    href: `${featurePage}${encodeURIComponent(layerId)}/${encodeURIComponent(fid)}`,
    class: "geoapp-archive-link",
    text: label,
  });
}

// as static/onemap.css: below this width the top-right controls sit over more of the map
const PHONE = "(max-width: 640px)";
const GAP = 6;

/**
 * Where popups may open: Leaflet pans the map until a popup clears the control column on the
 * left (and, on a phone, the search box and the layer button too). The paddings are measured
 * again just before each popup is laid out (its content is built first), so they follow the
 * controls as they are, whoever added them.
 */
export class PopupPlacement {
  constructor(map) {
    this.map = map;
    this.topLeft = L.point(56, 12);
    this.bottomRight = L.point(12, 12);
  }

  /** Options for bindPopup; the padding points are shared, and measure() moves them. */
  options(maxWidth) {
    const room = window.innerWidth - 150; // a phone's width, less the control column and the popup's frame
    return {
      maxWidth: Math.max(200, Math.min(maxWidth, room)),
      autoPanPaddingTopLeft: this.topLeft,
      autoPanPaddingBottomRight: this.bottomRight,
    };
  }

  measure() {
    const container = this.map.getContainer();
    const box = container.getBoundingClientRect();
    const edge = (selector, side) => {
      const corner = container.querySelector(selector);
      // an open folding panel folds when the popup opens (map/panel.js): only its button counts
      const shown = (c) => (c.classList.contains("geoapp-open") ? c.querySelector(".geoapp-fold-toggle") : c);
      const sides = corner ? [...corner.children].map((c) => shown(c).getBoundingClientRect()[side]) : [];
      return sides.length ? Math.max(...sides) : null;
    };
    const right = edge(".leaflet-top.leaflet-left", "right");
    this.topLeft.x = right === null ? 12 : right - box.left + GAP;
    const phone = window.matchMedia(PHONE).matches;
    const bottom = phone ? edge(".leaflet-top.leaflet-right", "bottom") : null;
    this.topLeft.y = bottom === null ? 12 : bottom - box.top + GAP;
    this.bottomRight.y = phone ? 96 : 12; // the legend button and the scale
  }
}
