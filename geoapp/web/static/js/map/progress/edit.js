/*
 * Editing from the progress page, for the layers the server marked editable (never guessed from
 * roles here): a row's edit button, or the one in a feature's popup, opens the layer's full form
 * (edit/form.js featureForm, handed in by the page's entry, which loads both only for editors) in a
 * dialog over the page, on the feature as it is now. The form saves and deletes through the API
 * (the use-case layer checks the rules and writes the audit row); ``onChanged`` then refreshes the
 * table, the figures and the map.
 */
import { ApiError, featurePath } from "../../lib/api.js";
import { button, el } from "../../lib/dom.js";
import { fill, titleOf } from "../../lib/format.js";

export function progressEditor(view, featureForm, { onChanged }) {
  const { layer, text, api } = view;
  const heading = el("h2", { id: "geoapp-edit-heading" });
  const body = el("div", { class: "geoapp-dialog-body" });
  const close = button(text.closeForm, () => dialog.close(), { class: "geoapp-dialog-close" });
  const dialog = el("dialog", { class: "geoapp-progress-dialog", "aria-labelledby": "geoapp-edit-heading" }, [
    el("header", {}, [heading, close]),
    body,
  ]);
  document.body.appendChild(dialog);
  // a click on the backdrop (outside the dialog's box) closes it, as Esc does
  dialog.addEventListener("click", (e) => e.target === dialog && dialog.close());

  /** Open the form on feature ``fid``, read again now: the form saves at the version it shows. */
  async function open(fid) {
    let feature;
    try {
      feature = await api.get(featurePath(layer.id, fid), { accept: "application/geo+json", key: "progress:edit" });
    } catch (err) {
      if (err instanceof ApiError) view.status(fill(text.loadFailed, { message: err.message }));
      return;
    }
    view.map.closePopup();
    heading.textContent = fill(text.editTitle, { title: titleOf(layer, feature) });
    const form = featureForm(view, layer, feature, {
      onSaved: (saved) => {
        dialog.close();
        onChanged((saved && saved.id) ?? fid, text.savedRow);
      },
      onDeleted: () => {
        dialog.close();
        onChanged(null, text.deletedRow);
      },
    });
    body.replaceChildren(form);
    if (!dialog.open) dialog.showModal();
  }

  return {
    open,
    dialog,
    /** The edit button under a feature's popup (map/layers.js asks the page's editor for it). */
    popupBlock: (apiLayer, feature) =>
      el("div", { class: "geoapp-edit" }, [button(text.edit, () => open(feature.id), { class: "geoapp-popup-edit" })]),
  };
}
