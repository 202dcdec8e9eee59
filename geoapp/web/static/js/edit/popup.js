/* The edit block in a feature's popup: the layer's full form (edit/form.js), then "Edit shape". */
import { button } from "../lib/dom.js";
import { featureForm } from "./form.js";

/**
 * After a save, a conflict or a delete the popup's layer is fetched again and the popup reopened
 * with the news (a deleted feature's popup stays closed; the status line says it).
 */
export function popupBlock(page, shapes, apiLayer, feature) {
  const { layer } = apiLayer;
  const { text } = page;
  // Geoman reshapes single and multi-part shapes alike
  const shape = button(text.editShape, () => shapes.start(apiLayer, feature), { class: "geoapp-edit-shape" });
  const form = featureForm(page, layer, feature, {
    note: apiLayer.takeNote(feature.id),
    actions: [shape],
    onSaved: () => apiLayer.reload(feature.id, text.saved, "ok"),
    onConflict: () => apiLayer.reload(feature.id, text.conflict, "conflict"),
    onDeleted: () => {
      page.map.closePopup();
      apiLayer.reload(feature.id, text.deleted, "ok");
    },
  });
  // a message or a rule's note made the form taller: lay the open popup out again, keeping the focus
  form.addEventListener("geoapp:resize", () => {
    const item = apiLayer.find(feature.id);
    const popup = item && item.getPopup();
    if (!popup || !popup.isOpen()) return;
    const focused = document.activeElement;
    // where Leaflet's auto-pan places popups, 1.9 skips the next one after the pan that opened the
    // popup (a guard meant for keepInView, left set without it): clear it, or a grown popup stays cut off
    popup._autopanning = false;
    popup.update();
    // where the page places popups itself (map/popup.js PopupPlacement), place it again
    if (page.popups && typeof page.popups.clear === "function") requestAnimationFrame(() => page.popups.clear(popup));
    if (focused && form.contains(focused)) focused.focus({ preventScroll: true });
  });
  return form;
}
