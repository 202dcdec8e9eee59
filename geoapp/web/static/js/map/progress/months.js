/*
 * How many were done each month (by the layer's ``progress.date_field``: removals, repairs, fixes),
 * as bars of DOM nodes: every month from the first to the last is shown, an empty one too, and each
 * bar carries its number and month as text, so the chart reads without seeing it.
 */
import { el } from "../../lib/dom.js";
import { fill } from "../../lib/format.js";

/** Every month from the first to the last of ``perMonth`` ([{month: "YYYY-MM", count}]), with its count. */
export function monthsBetween(perMonth) {
  const counts = new Map(perMonth.map((m) => [m.month, m.count]));
  const months = [...counts.keys()].sort();
  if (!months.length) return [];
  const out = [];
  let [year, month] = months[0].split("-").map(Number);
  const [lastYear, lastMonth] = months[months.length - 1].split("-").map(Number);
  while (year < lastYear || (year === lastYear && month <= lastMonth)) {
    const key = `${year}-${String(month).padStart(2, "0")}`;
    out.push({ month: key, year, number: month, count: counts.get(key) || 0 });
    month += 1;
    if (month > 12) [year, month] = [year + 1, 1];
  }
  return out;
}

export function monthsChart(view) {
  const { layer, text, cfg } = view;
  const box = document.querySelector(".geoapp-months");
  const dateField = layer.progress.dateField;
  const names = new Intl.DateTimeFormat(cfg.lang === "en" ? "en-GB" : "zh-CN", { month: "short", timeZone: "UTC" });
  const monthName = (m) => names.format(new Date(Date.UTC(m.year, m.number - 1, 15)));

  return function render(summary) {
    if (!dateField) {
      box.hidden = true;
      return;
    }
    const months = monthsBetween(summary.per_month || []);
    const caption = el("figcaption", { text: fill(text.perMonth, { field: layer.fields[dateField].label }) });
    if (!months.length) {
      box.replaceChildren(caption, el("p", { class: "geoapp-muted", text: text.noMonths }));
      return;
    }
    const most = Math.max(1, ...months.map((m) => m.count));
    const bars = months.map((m, i) => {
      const column = el("span", { class: "geoapp-month-bar", "aria-hidden": "true" });
      column.style.height = `${((100 * m.count) / most).toFixed(1)}%`;
      const parts = [
        el("span", { class: "geoapp-month-count", text: String(m.count) }),
        el("span", { class: "geoapp-month-track" }, [column]),
        el("span", { class: "geoapp-month-name", text: monthName(m) }),
      ];
      // the year under the first month and under each January
      if (i === 0 || m.number === 1) parts.push(el("span", { class: "geoapp-month-year", text: String(m.year) }));
      return el("li", { "data-month": m.month, title: `${m.month}: ${m.count}` }, parts);
    });
    box.replaceChildren(caption, el("ol", { class: "geoapp-month-bars" }, bars));
  };
}
