/*
 * Downloads from the one map's layer list: a folded "Download data" section under the layers, where a layer,
 * a format and a coordinate system are chosen, optionally only what the map shows; its link is
 * GET /api/layers/<id>/export.<format>?crs=…&bbox=… (the server gives the public the public fields only).
 * The form's markup and words are the page's (templates/map.html, translated there; the formats and the
 * district's metric CRS come from geoapp.io.exporter and the store); the layer titles are set as text.
 * KML is WGS84 by its specification: choosing it sets the coordinates to WGS84.
 */
import { el } from "../lib/dom.js";

export function downloadControl(page, defs) {
  const template = document.getElementById("geoapp-download");
  const list = page.map.getContainer().querySelector(".leaflet-control-layers");
  if (!template || !list || !page.cfg.api) return null; // a published page has no app to ask
  const section = template.content.firstElementChild.cloneNode(true);
  const [layerSelect, formatSelect, crsSelect] = ["layer", "format", "crs"].map((name) =>
    section.querySelector(`select[name=${name}]`),
  );
  const inView = section.querySelector("input[name=in_view]");
  const link = section.querySelector("a.geoapp-download-link");
  // in the layer list's order (its groups, the top layer first); a layer it does not list goes last
  const listed = [...list.querySelectorAll("label span")].map((span) => span.textContent.trim());
  const rank = (def) => (listed.includes(def.title) ? listed.indexOf(def.title) : listed.length);
  [...defs]
    .sort((a, b) => rank(a) - rank(b))
    .forEach((def) => layerSelect.appendChild(el("option", { value: def.id, text: def.title })));

  function bbox() {
    const b = page.map.getBounds();
    const [w, s] = page.shift.toData(Math.max(b.getWest(), -180), Math.max(b.getSouth(), -90));
    const [e, n] = page.shift.toData(Math.min(b.getEast(), 180), Math.min(b.getNorth(), 90));
    return [w, s, e, n].map((v) => Math.min(Math.max(v, -180), 180).toFixed(6)).join(",");
  }

  function update() {
    const kml = formatSelect.value === "kml";
    if (kml) crsSelect.value = "EPSG:4326";
    crsSelect.disabled = kml;
    const params = {};
    if (crsSelect.value !== "EPSG:4326") params.crs = crsSelect.value;
    if (inView.checked) params.bbox = bbox();
    const id = encodeURIComponent(layerSelect.value);
    link.href = page.api.url(`/layers/${id}/export.${formatSelect.value}`, params);
  }

  [layerSelect, formatSelect, crsSelect, inView].forEach((input) => input.addEventListener("change", update));
  page.map.on("moveend", () => inView.checked && update());
  // opening or closing the section changes the list's height: the folding panel measures it again
  section.addEventListener("toggle", () => page.map.fire("geoapp:panelchange", { panel: list }));
  list.appendChild(section);
  L.DomEvent.disableClickPropagation(section);
  L.DomEvent.disableScrollPropagation(section);
  update();
  return { section, update };
}
