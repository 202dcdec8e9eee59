/*
 * How the progress page shows a value wherever it shows it (table, figures, map): a status as a
 * chip in its colour, a share as a percentage, the "as of" time in the district's time zone, the
 * overdue badge. Everything is built as DOM text (lib/dom.js).
 */
import { el } from "../../lib/dom.js";
import { fill, formatValue } from "../../lib/format.js";

const AS_OF_FORMATS = new Map();

/** A time (ISO 8601) as "YYYY-MM-DD HH:MM" in ``timeZone`` (the district's, whatever the browser's own). */
export function asOfText(value, timeZone) {
  const date = new Date(value);
  if (!value || Number.isNaN(date.getTime())) return "—";
  if (!AS_OF_FORMATS.has(timeZone)) {
    const options = { timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" };
    AS_OF_FORMATS.set(timeZone, new Intl.DateTimeFormat("en-GB", { ...options, hourCycle: "h23" }));
  }
  const parts = Object.fromEntries(AS_OF_FORMATS.get(timeZone).formatToParts(date).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
}

/** ``part`` of ``whole`` as "65.1 %" ("—" of nothing). */
export function percent(part, whole, lang) {
  if (!whole) return "—";
  const share = (100 * part) / whole;
  return `${share.toLocaleString(lang === "en" ? "en" : "zh-CN", { maximumFractionDigits: 1 })} %`;
}

/** The label of a value of a field with a vocabulary; ``notSet`` for a missing one. */
export function choiceLabel(field, value, notSet) {
  if (value === null || value === undefined || value === "" || value === "null") return notSet;
  const choice = (field.values || []).find((c) => c.value === value);
  return choice ? choice.label : String(value);
}

/** The colour a layer draws ``value`` of its style field in (its default colour for others). */
export function statusColour(layer, value) {
  return (value !== null && value !== undefined && layer.colours[value]) || layer.style.color;
}

/** A status as a chip: its label on its colour. */
export function statusChip(layer, value, lang) {
  const field = layer.fields[layer.statusField];
  const node = el("span", { class: "geoapp-chip", "data-status": value ?? "", text: formatValue(field, value, lang) });
  node.style.background = statusColour(layer, value);
  return node;
}

/** The badge of a row past its target date. */
export function overdueBadge(view, row) {
  const due = view.layer.progress.dueField;
  const date = due ? row.properties[due] : null;
  return el("span", {
    class: "geoapp-overdue-badge",
    title: date ? fill(view.text.overdueSince, { date }) : view.text.overdue,
    text: view.text.overdue,
  });
}
