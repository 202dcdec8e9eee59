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
  const link = el("a", {
    href: `${featurePage}${encodeURIComponent(layer.id)}/${encodeURIComponent(feature.id)}`,
    class: "geoapp-archive-link",
    text: text.archive,
  });
  return el("div", { class: "geoapp-popup" }, [
    el("div", { class: "geoapp-popup-layer", text: layer.title }),
    el("h3", { text: titleOf(layer, feature) }),
    el("table", {}, rows),
    link,
    ...(extra || []),
  ]);
}
