/* The edit block in a feature's popup: the status as a select with Save, a shape button, a message. */
import { ApiError, featurePath } from "../lib/api.js";
import { button, choiceSelect, el, say } from "../lib/dom.js";
import { failureText } from "./messages.js";

/**
 * PATCH a feature at the version it was read, then refetch its layer and reopen its popup with
 * the news. Resolve to null when that happened (saved, or refused because someone else saved
 * first), else to the message to show where the editor is.
 */
export async function saveFeature(page, apiLayer, feature, body) {
  const { api, text } = page;
  try {
    const options = { version: feature.version, accept: "application/geo+json" };
    await api.patch(featurePath(apiLayer.layer.id, feature.id), body, options);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    if (err.status !== 409) return failureText(text, err);
    apiLayer.reload(feature.id, text.conflict, "conflict");
    return null;
  }
  apiLayer.reload(feature.id, text.saved, "ok");
  return null;
}

function statusEditor(page, apiLayer, feature, field, message) {
  const { text } = page;
  const select = choiceSelect(field, feature.properties[field.name], { class: "geoapp-status-select" });
  const save = button(
    text.save,
    async () => {
      save.disabled = true;
      say(message, text.saving, "busy");
      const failed = await saveFeature(page, apiLayer, feature, { properties: { [field.name]: select.value } });
      if (failed) say(message, failed, "error");
      save.disabled = false;
    },
    { class: "geoapp-save" },
  );
  return [el("label", {}, [el("span", { text: `${field.label} ` }), select]), save];
}

export function popupBlock(page, shapes, apiLayer, feature) {
  const { layer } = apiLayer;
  const message = el("p", { class: "geoapp-edit-message", role: "status" });
  const note = apiLayer.takeNote(feature.id);
  if (note) say(message, note.text, note.kind);
  const parts = [];
  const status = layer.statusField && layer.fields[layer.statusField];
  if (status && status.values) parts.push(...statusEditor(page, apiLayer, feature, status, message));
  // Geoman reshapes single and multi-part shapes alike
  parts.push(button(page.text.editShape, () => shapes.start(apiLayer, feature), { class: "geoapp-edit-shape" }));
  return el("div", { class: "geoapp-edit" }, [...parts, message]);
}
