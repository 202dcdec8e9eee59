/*
 * Drawing new features: a select of the layers the editor may add to, Geoman's tools for the
 * chosen layer's geometry types, then a form of the layer's required fields in the drawn
 * shape's popup, sent with POST. Closing the form discards the drawing.
 */
import { ApiError, featurePath } from "../lib/api.js";
import { button, choiceSelect, el, say } from "../lib/dom.js";
import { fill } from "../lib/format.js";
import { geometryOf } from "./geometry.js";
import { failureText } from "./messages.js";

/** The Geoman tools a layer's geometry types allow (rectangles and circles are not geometry types). */
function tools(layer) {
  const types = new Set(layer.geometry.map((t) => t.replace("Multi", "")));
  return {
    position: "topleft",
    drawCircleMarker: types.has("Point"),
    drawPolyline: types.has("LineString"),
    drawPolygon: types.has("Polygon"),
    drawMarker: false,
    drawRectangle: false,
    drawCircle: false,
    drawText: false,
    editControls: false,
    optionsControls: false,
    customControls: false,
  };
}

/** An input for one field of a new feature: a select where the values are fixed. */
function fieldInput(field, text) {
  const attrs = { name: field.name, required: "" };
  if (field.values) return choiceSelect(field, field.default, attrs);
  if (field.type === "boolean") {
    const values = [
      { value: "true", label: text.yes },
      { value: "false", label: text.no },
    ];
    const yesNo = { name: field.name, values };
    return choiceSelect(yesNo, field.default === null ? null : String(field.default), attrs);
  }
  const type = { integer: "number", number: "number", date: "date" }[field.type] || "text";
  const input = el("input", { ...attrs, type });
  if (type === "number") input.step = field.type === "integer" ? "1" : "any";
  if (field.default !== null && field.default !== undefined) input.value = String(field.default);
  return input;
}

function formValues(form, fields) {
  const props = {};
  fields.forEach((field) => {
    const raw = form.elements[field.name].value;
    if (raw === "") return; // left out: the server fills a default or names the missing field
    // numbers as numbers; booleans and dates go as text, which the server reads ("true", "2024-05-01")
    props[field.name] = field.type === "number" || field.type === "integer" ? Number(raw) : raw;
  });
  return props;
}

/** The form in a drawn shape's popup: the layer's required fields, then POST the new feature. */
function newFeatureForm(page, apiLayer, drawn, drafts) {
  const { api, text, shift } = page;
  const { layer } = apiLayer;
  const fields = Object.values(layer.fields).filter((f) => f.required && !f.computed);
  const message = el("p", { class: "geoapp-edit-message", role: "status" });
  const rows = fields.map((f) => el("label", {}, [el("span", { text: f.label }), fieldInput(f, text)]));
  const submit = el("button", { type: "submit", class: "geoapp-save", text: text.save });
  const cancel = button(text.cancel, () => drawn.closePopup(), { class: "geoapp-cancel" });
  const form = el("form", { class: "geoapp-new-feature" }, [
    el("h3", { text: fill(text.newFeature, { layer: layer.title }) }),
    ...rows,
    el("div", { class: "geoapp-edit" }, [submit, cancel]),
    message,
  ]);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    say(message, text.saving, "busy");
    const body = { type: "Feature", geometry: geometryOf(drawn, layer, shift), properties: formValues(form, fields) };
    let created;
    try {
      created = await api.post(featurePath(layer.id), body, { accept: "application/geo+json" });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      submit.disabled = false;
      say(message, failureText(text, err), "error");
      const wrong = err.parameter && form.elements[err.parameter];
      if (wrong) wrong.focus();
      return;
    }
    drawn.closePopup();
    apiLayer.reload(created.id, text.created, "ok");
  });
  // closing the form (its ✕, Cancel, or after saving) discards the drawing
  drawn.once("popupclose", () => drafts.removeLayer(drawn));
  page.popups.measure();
  const options = { ...page.popups.options(320), minWidth: 240, closeOnClick: false, autoClose: false };
  drawn.bindPopup(form, options).openPopup();
  const first = form.querySelector("input, select");
  if (first) first.focus();
}

/** The layer picker and Geoman's toolbar for the chosen layer; null if the editor may add to none. */
export function drawTools(page, drafts) {
  const { map, text, cfg } = page;
  const editable = cfg.layers.filter((l) => l.editable).reverse(); // top layer first, as the layer control lists them
  if (!editable.length) return null;
  const state = { target: editable[0].id };
  const mount = () => {
    map.pm.disableDraw();
    map.pm.addControls(tools(page.layers[state.target].layer)); // the layer's geometry types decide the tools
  };
  const picker = L.control({ position: "topleft" });
  picker.onAdd = () => {
    const options = editable.map((l) => el("option", { value: l.id, text: l.title }));
    const select = el("select", { "aria-label": text.drawLayer, title: text.drawLayer }, options);
    select.addEventListener("change", () => {
      state.target = select.value;
      mount();
    });
    const box = el("div", { class: "geoapp-draw-layer leaflet-bar" }, [select]);
    L.DomEvent.disableClickPropagation(box);
    return box;
  };
  picker.addTo(map);
  mount();
  // while drawing, a click places a vertex: the features under it must not open their popups
  const quiet = (on) => map.getContainer().classList.toggle("geoapp-drawing", on);
  map.on("pm:drawstart", () => quiet(true));
  map.on("pm:drawend", () => quiet(false));
  map.on("pm:create", (e) => newFeatureForm(page, page.layers[state.target], e.layer, drafts));
  return state;
}
