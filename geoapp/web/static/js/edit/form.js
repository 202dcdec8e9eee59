/*
 * A feature's full edit form, from its layer's definition (maps.layer_config): every editable
 * field with the input its type and vocabulary call for, computed fields read-only, required
 * marks, and the bureau's rules shown as the editor chooses (choosing 已整治 marks 整治日期 and
 * 拆后处理 as required; a step back says which fields will be emptied and which kept). Save sends
 * only the changed fields at the version read; Delete asks once more inside the form, then sends
 * DELETE at that version. A refusal is shown beside the field its ``parameter`` names. Used in the
 * one map's popups (edit/popup.js) and on the progress page's table (map/progress/edit.js).
 */
import { ApiError, featurePath } from "../lib/api.js";
import { button, el, say } from "../lib/dom.js";
import { fill } from "../lib/format.js";
import { failureText } from "./messages.js";

const EMPTY = "";

/** A rule applies when each field it names holds one of its values (as the form holds them: text). */
function applies(rule, values) {
  return Object.entries(rule.when).every(([name, allowed]) => allowed.map(String).includes(values[name]));
}

/** A stored value as an input holds it ("" for none; booleans as "true"/"false"). */
function asInput(field, value) {
  if (value === null || value === undefined) return EMPTY;
  if (field.type === "boolean") return value ? "true" : "false";
  return String(value);
}

/** What an input holds as the API takes it; null for empty. */
function asValue(field, input) {
  const raw = input.value;
  if (field.type === "integer" || field.type === "number") {
    if (input.validity && input.validity.badInput) return "?"; // not a number: the server says so, in words
    return raw === EMPTY ? null : Number(raw);
  }
  if (raw === EMPTY) return null;
  if (field.type === "boolean") return raw === "true";
  return raw;
}

function same(field, a, b) {
  if (a === null || a === undefined || a === EMPTY) return b === null || b === undefined || b === EMPTY;
  if (field.type === "integer" || field.type === "number") return Number(a) === Number(b);
  return a === b;
}

function select(name, options, value, attrs) {
  const node = el(
    "select",
    { name, ...attrs },
    options.map((o) => el("option", { value: o.value, text: o.label })),
  );
  node.value = value;
  return node;
}

/** The input for one field: a select for a vocabulary or yes/no, a number, a date, a text area or a line. */
function inputFor(layer, field, value, text, id) {
  const attrs = { id, "aria-describedby": `${id}-note` };
  const empty = field.required ? [] : [{ value: EMPTY, label: "—" }];
  if (field.values) {
    const cls = field.name === layer.statusField ? "geoapp-status-select" : null;
    return select(field.name, [...empty, ...field.values], value, { ...attrs, class: cls });
  }
  if (field.type === "boolean") {
    const yes = field.yes || text.yes;
    const no = field.no || text.no;
    const options = [...empty, { value: "true", label: yes }, { value: "false", label: no }];
    return select(field.name, options, value, attrs);
  }
  if (field.multiline) {
    const area = el("textarea", { ...attrs, name: field.name, rows: "3", maxlength: field.maxLength });
    area.value = value;
    return area;
  }
  const type = { integer: "number", number: "number", date: "date" }[field.type] || "text";
  const input = el("input", { ...attrs, name: field.name, type });
  if (type === "number") {
    input.step = field.type === "integer" ? "1" : "any";
    if (field.min !== null && field.min !== undefined) input.min = String(field.min);
    if (field.max !== null && field.max !== undefined) input.max = String(field.max);
  }
  if (type === "text" && field.maxLength) input.maxLength = field.maxLength;
  input.value = value;
  return input;
}

/**
 * The form for ``feature`` (GeoJSON with id, version, properties) of ``layer`` (map/layers.js
 * layerDef). ``page`` gives ``api`` and the strings (``text``, else ``cfg.text``). Options:
 * ``onSaved(newFeature)`` and ``onDeleted()`` after success; ``onConflict()`` when someone else
 * changed the feature first (without it the form reads the feature again and shows it);
 * ``note`` {text, kind} to show at first; ``actions``: more buttons beside Save and Delete.
 */
export function featureForm(page, layer, feature, options = {}) {
  const { onSaved, onDeleted, onConflict, note, actions = [] } = options;
  const { api } = page;
  const text = page.text || page.cfg.text;
  const props = feature.properties || {};
  const fields = Object.values(layer.fields);
  const editable = fields.filter((f) => !f.computed);
  const rules = layer.rules || [];
  const prefix = `geoapp-f-${layer.id}-${feature.id}`;
  const joint = page.cfg && page.cfg.lang === "en" ? ", " : "、";
  const rows = {}; // name -> {row, input, mark, error}

  const list = el("div", { class: "geoapp-form-fields" });
  fields.forEach((field) => {
    const id = `${prefix}-${field.name}`;
    const mark = el("abbr", { class: "geoapp-required", title: text.required, text: "*" });
    const caption = [el("span", { text: field.label }), mark];
    if (field.unit && !field.computed) caption.push(el("span", { class: "geoapp-unit", text: ` (${field.unit})` }));
    const label = el("label", { for: id }, caption);
    const error = el("p", { class: "geoapp-field-error", id: `${id}-error`, role: "alert" });
    let input = null;
    let body;
    if (field.computed) {
      const shown = props[field.name] === null || props[field.name] === undefined ? "—" : String(props[field.name]);
      body = el("output", { id, class: "geoapp-computed" }, [
        document.createTextNode(field.unit && shown !== "—" ? `${shown} ${field.unit}` : shown),
        el("span", { class: "geoapp-muted", text: ` ${text.computed}` }),
      ]);
    } else {
      input = inputFor(layer, field, asInput(field, props[field.name]), text, id);
      body = input;
    }
    const parts = [label, body];
    if (field.hint) parts.push(el("p", { class: "geoapp-hint", id: `${id}-note`, text: field.hint }));
    parts.push(error);
    const row = el("div", { class: "geoapp-form-row", "data-field": field.name }, parts);
    rows[field.name] = { row, input, mark, error };
    list.appendChild(row);
  });

  const notice = el("div", { class: "geoapp-rule-notice", role: "status" });
  const message = el("p", { class: "geoapp-edit-message", role: "status" });
  if (note) say(message, note.text, note.kind);
  const save = el("button", { type: "submit", class: "geoapp-save", text: text.save });
  const remove = button(text.delete, () => confirmStep(), { class: "geoapp-delete" });
  const bar = el("div", { class: "geoapp-edit geoapp-form-actions" }, [save, remove, ...actions]);
  const form = el("form", { class: "geoapp-form", novalidate: "" }, [list, notice, bar, message]);

  /** Tell the popup (or dialog) holding the form that it grew or shrank: Leaflet lays a popup out again. */
  const resized = () => form.dispatchEvent(new CustomEvent("geoapp:resize", { bubbles: true }));
  let shownRules = null;

  const values = () =>
    Object.fromEntries(fields.map((f) => [f.name, rows[f.name].input ? rows[f.name].input.value : EMPTY]));

  /** Marks and notes for the values chosen now: what the rules that apply require, empty and keep. */
  function showRules() {
    const now = values();
    const read = Object.fromEntries(fields.map((f) => [f.name, asInput(f, props[f.name])]));
    const needed = new Set(fields.filter((f) => f.required).map((f) => f.name));
    const cleared = new Set();
    const lines = [];
    rules
      .filter((rule) => applies(rule, now))
      .forEach((rule) => {
        rule.require.forEach((name) => needed.add(name));
        rule.clear.forEach((name) => cleared.add(name));
        const missing = rule.require.filter((name) => rows[name] && now[name].trim() === EMPTY);
        // a step back matters only where it empties something the feature holds
        const emptied = rule.clear.filter((name) => rows[name] && read[name] !== EMPTY);
        if (!missing.length && !emptied.length) return;
        const said = [];
        if (rule.note) said.push(el("p", { text: rule.note }));
        const labels = (names) => names.map((n) => layer.fields[n].label).join(joint);
        if (emptied.length) {
          said.push(el("p", { class: "geoapp-will-clear", text: fill(text.willClear, { fields: labels(emptied) }) }));
        }
        const kept = rule.keep.filter((name) => rows[name]);
        if (emptied.length && kept.length) {
          said.push(el("p", { class: "geoapp-will-keep", text: fill(text.willKeep, { fields: labels(kept) }) }));
        }
        lines.push(el("div", { class: "geoapp-rule" }, said));
      });
    fields.forEach((field) => {
      const { row, input, mark } = rows[field.name];
      const required = needed.has(field.name) && !field.computed;
      mark.hidden = !required;
      row.classList.toggle("geoapp-required-now", required && !field.required);
      if (input) {
        if (required) input.setAttribute("aria-required", "true");
        else input.removeAttribute("aria-required");
        const clearing = cleared.has(field.name);
        input.disabled = clearing;
        row.classList.toggle("geoapp-clearing", clearing);
      }
    });
    notice.replaceChildren(...lines);
    if (notice.textContent !== shownRules) {
      shownRules = notice.textContent;
      resized();
    }
  }

  function clearErrors() {
    Object.values(rows).forEach(({ row, input, error }) => {
      row.classList.remove("geoapp-invalid");
      error.textContent = "";
      if (input) input.removeAttribute("aria-invalid");
    });
  }

  /** The server's refusal beside the field it names (or on the message line when it names none here). */
  function showRefusal(err) {
    const target = err.parameter && rows[err.parameter];
    if (target && target.input && err.status >= 400 && err.status < 500 && ![401, 403, 409].includes(err.status)) {
      target.row.classList.add("geoapp-invalid");
      target.error.textContent = err.message;
      target.input.setAttribute("aria-invalid", "true");
      target.input.setAttribute("aria-describedby", target.error.id);
      say(message, "", "");
      resized();
      target.input.focus({ preventScroll: true });
      return;
    }
    say(message, failureText(text, err), "error");
    resized();
  }

  async function conflict() {
    if (onConflict) {
      onConflict();
      return;
    }
    // read it again and show what the other editor saved, with its version: nothing was overwritten
    try {
      const fresh = await api.get(featurePath(layer.id, feature.id), { accept: "application/geo+json" });
      const news = { text: text.conflict, kind: "conflict" };
      form.replaceWith(featureForm(page, layer, fresh, { ...options, note: news }));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      say(message, text.conflict, "conflict");
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const changed = {};
    editable.forEach((field) => {
      const { input } = rows[field.name];
      if (input.disabled) return; // a rule empties it: the server does that, and the change shows it
      const value = asValue(field, input);
      if (!same(field, value, props[field.name])) changed[field.name] = value;
    });
    if (!Object.keys(changed).length) {
      say(message, text.noChanges, "ok");
      return;
    }
    save.disabled = true;
    say(message, text.saving, "busy");
    let saved;
    try {
      const path = featurePath(layer.id, feature.id);
      const sent = { version: feature.version, accept: "application/geo+json" };
      saved = await api.patch(path, { properties: changed }, sent);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      save.disabled = false;
      if (err.status === 409) await conflict();
      else showRefusal(err);
      return;
    }
    // the holder shows the news (the popup comes back with it); on its own the form says it
    if (onSaved) onSaved(saved);
    else say(message, text.saved, "ok");
  });

  /**
   * Delete, asked once more inside the form (never window.confirm), then DELETE at the version read.
   * The buttons are hidden and shown, never taken out of the page while their click is handled:
   * Leaflet would read a click on a detached node as a click on the map, and close the popup.
   */
  let step = null;
  function confirmStep() {
    if (!step) {
      const yes = button(text.deleteYes, () => sendDelete(yes), { class: "geoapp-delete-confirm" });
      const no = button(
        text.cancel,
        () => {
          step.hidden = true;
          bar.hidden = false;
          resized();
          remove.focus({ preventScroll: true });
        },
        { class: "geoapp-cancel" },
      );
      step = el("div", { class: "geoapp-edit geoapp-delete-step", role: "group" }, [
        el("p", { class: "geoapp-delete-question", text: text.deleteConfirm }),
        yes,
        no,
      ]);
      bar.after(step);
    }
    bar.hidden = true;
    step.hidden = false;
    resized();
    step.querySelector(".geoapp-delete-confirm").focus({ preventScroll: true });
  }

  async function sendDelete(yes) {
    yes.disabled = true;
    say(message, text.deleting, "busy");
    try {
      await api.request(featurePath(layer.id, feature.id), { method: "DELETE", version: feature.version });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      yes.disabled = false;
      if (err.status === 409) await conflict();
      else {
        const why = err.status ? err.message : text.unreachable;
        say(message, fill(text.deleteFailed, { message: why }), "error");
      }
      return;
    }
    if (onDeleted) onDeleted();
    else say(message, text.deleted, "ok");
  }

  editable.forEach((field) => {
    const { input } = rows[field.name];
    input.addEventListener(input.tagName === "SELECT" ? "change" : "input", () => {
      if (message.dataset.kind === "ok") say(message, "", ""); // "saved" is about the values before this change
      showRules();
    });
  });
  showRules();
  return form;
}
