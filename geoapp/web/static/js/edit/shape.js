/*
 * Reshape or move one feature at a time with Geoman: an editable copy replaces the drawn feature
 * (so that clusters and refetches leave it alone) until the editor saves it (PATCH at the
 * version read) or cancels. Multi-part shapes are edited part by part in the one copy; vertices
 * snap to the other features and the roads.
 */
import { ApiError, featurePath } from "../lib/api.js";
import { button, el, say } from "../lib/dom.js";
import { EDIT_STYLE } from "./geoman.js";
import { geometryOf } from "./geometry.js";
import { failureText } from "./messages.js";

/** A bar with a hint, buttons and a message line, shown while a shape is being edited. */
function editBar(map, text) {
  const control = L.control({ position: "bottomright" });
  const message = el("p", { class: "geoapp-edit-message", role: "status" });
  const box = el("div", { class: "geoapp-editbar leaflet-bar" });
  control.onAdd = () => {
    L.DomEvent.disableClickPropagation(box);
    return box;
  };
  control.open = (buttons) => {
    box.replaceChildren(el("p", { text: text.editHint }), el("div", { class: "geoapp-edit" }, buttons), message);
    say(message, "", "");
    control.addTo(map);
  };
  control.message = message;
  return control;
}

export function shapeEditor(page) {
  const { map, api, text, shift } = page;
  // the copy is drawn as SVG: its own elements take the clicks while the canvas below is muted
  const renderer = L.svg();
  const style = { ...EDIT_STYLE, renderer, className: "geoapp-editing" };
  const group = L.featureGroup().addTo(map);
  const bar = editBar(map, text);
  let session = null;

  const end = () => {
    if (!session) return null;
    const { apiLayer, copy } = session;
    copy.pm.disable();
    group.clearLayers();
    bar.remove();
    map.getContainer().classList.remove("geoapp-drawing");
    apiLayer.editingId = null;
    session = null;
    return apiLayer;
  };
  const cancel = () => {
    const apiLayer = end();
    if (apiLayer) apiLayer.refresh(true); // draw the feature as it was
  };
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && session) cancel(); // as the Cancel button does
  });
  const save = async (saveButton) => {
    const { apiLayer, feature, copy } = session;
    saveButton.disabled = true;
    say(bar.message, text.saving, "busy");
    const geometry = geometryOf(copy, apiLayer.layer, shift);
    try {
      const options = { version: feature.version, accept: "application/geo+json" };
      await api.patch(featurePath(apiLayer.layer.id, feature.id), { geometry }, options);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      saveButton.disabled = false;
      if (err.status !== 409) {
        say(bar.message, failureText(text, err), "error"); // e.g. outside the district: keep editing
        return;
      }
      end();
      apiLayer.reload(feature.id, text.conflict, "conflict");
      return;
    }
    end();
    apiLayer.reload(feature.id, text.saved, "ok");
  };
  const start = (apiLayer, feature) => {
    cancel();
    map.closePopup();
    // the drawn feature is in the map's coordinates already
    const copy = L.geoJSON(structuredClone(feature), {
      renderer,
      pointToLayer: (_feature, latlng) => L.circleMarker(latlng, style),
      style: () => style,
    }).getLayers()[0];
    group.addLayer(copy);
    apiLayer.editingId = feature.id;
    const drawn = apiLayer.find(feature.id);
    if (drawn) apiLayer.target.removeLayer(drawn);
    map.getContainer().classList.add("geoapp-drawing"); // the other features stay quiet meanwhile
    copy.pm.enable({ snappable: true, allowSelfIntersection: false, draggable: true });
    session = { apiLayer, feature, copy };
    const saveButton = button(text.save, () => save(saveButton), { class: "geoapp-save" });
    bar.open([saveButton, button(text.cancel, cancel, { class: "geoapp-cancel" })]);
  };
  return { start, cancel };
}
