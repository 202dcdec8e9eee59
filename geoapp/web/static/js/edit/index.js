/*
 * Editing on the one map, for the layers the server marked editable (the script never guesses
 * roles). Loaded by pages/onemap.js only when there is one, with Leaflet-Geoman, which the
 * server adds to editors' pages only: the public never loads either.
 */
import { drawTools } from "./draw.js";
import { setUpGeoman } from "./geoman.js";
import { popupBlock } from "./popup.js";
import { shapeEditor } from "./shape.js";

/** Give ``page`` its editor (the popup edit block) and the drawing tools; return the drawing state. */
export function enableEditing(page) {
  const drafts = L.featureGroup().addTo(page.map);
  setUpGeoman(page.map, { lang: page.cfg.lang, text: page.text, drafts });
  const shapes = shapeEditor(page);
  page.editor = { popupBlock: (apiLayer, feature) => popupBlock(page, shapes, apiLayer, feature), shapes };
  return drawTools(page, drafts);
}
